"""A project whose ``AUTH_USER_MODEL`` has a UUID primary key, on the suite's profiles.

Run on its own: ``pytest --ds=tests.uuidproject.settings --confcutdir=tests/uuidproject
tests/uuidproject`` (``make test`` does, on every profile).  Users live in
``default``, notes in ``blog_db``.
"""

from tests.settings import DATABASES, PASSWORD_HASHERS, SECRET_KEY, USE_TZ  # noqa: F401

DATABASES = {alias: DATABASES[alias] for alias in ("default", "blog_db")}
for _config in DATABASES.values():
    if "TEST" in _config:
        _config["TEST"] = {**_config["TEST"], "NAME": _config["TEST"]["NAME"] + "_uuid"}
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "crossdb",
    "tests.uuidproject.people",
    "tests.uuidproject.notes",
]
AUTH_USER_MODEL = "people.Person"
DATABASE_ROUTERS = ["crossdb.routers.AppLabelRouter"]
DATABASE_ROUTING_RULES = {"notes": "blog_db"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
