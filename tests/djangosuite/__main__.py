"""Entry point of ``python -m tests.djangosuite``."""

import sys

from tests.djangosuite.runner import main

sys.exit(main())
