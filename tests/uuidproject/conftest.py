"""Collect this project's tests only under its own settings (a separate pytest run)."""

from django.conf import settings

if settings.SETTINGS_MODULE != "tests.uuidproject.settings":
    collect_ignore_glob = ["test_*.py"]
