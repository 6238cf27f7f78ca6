#!/usr/bin/env python
"""Run the sandbox's management commands: ``python sandbox/manage.py demo``."""

import os
import sys
from pathlib import Path

# The crossdb of this checkout, whether or not it is installed in the venv.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
