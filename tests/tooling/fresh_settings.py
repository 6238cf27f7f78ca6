"""The test project's settings on other databases: ``DATABASES`` from a JSON variable.

``tests/test_migrate_all.py`` runs ``manage.py`` commands with these settings
on freshly created, empty databases.
"""

import json
import os

from tests.settings import *  # noqa: F403

DATABASES = json.loads(os.environ["CROSSDB_FRESH_DATABASES"])
