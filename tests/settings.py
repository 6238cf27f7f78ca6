"""Settings of crossdb's test project.

The backend profile comes from ``CROSSDB_TEST_PROFILE``:

- ``sqlite`` (default): every alias is SQLite; needs no server;
- ``postgresql``: every alias on ``CROSSDB_POSTGRES_URL``'s server;
- ``mysql``: every alias on ``CROSSDB_MYSQL_URL``'s server (MariaDB);
- ``mixed``: default on PostgreSQL, blog_db on MariaDB, shop_db on SQLite;
- ``replica``: default, blog_db and shop_db on a PostgreSQL primary of the run's
  own, ``replica`` (of default) and ``blog_replica`` (of blog_db) on its
  streaming hot standby (``tests/pg_standby.py``; needs the server binaries);
- ``replica_mirror``: the same aliases on SQLite, the replicas as TEST MIRRORs.

The two replica profiles route reads to the replicas (``DATABASE_REPLICAS``):
they run the replica suite (see the Makefile), not the whole one.

Each alias gets its own database, named after the URL's database name and the
alias; ``CROSSDB_TEST_DB_SUFFIX`` keeps concurrent runs apart.
"""

import os
import tempfile
import warnings

import dj_database_url

# A deprecation raised from crossdb's own code (Django's RemovedInDjango*
# warnings among them) is an error on every supported Django.  pytest re-applies
# its own filters per test: pyproject.toml's filterwarnings say the same there.
for _category in (DeprecationWarning, PendingDeprecationWarning):
    warnings.filterwarnings("error", category=_category, module=r"crossdb(\.|$)")

PROFILE = os.environ.get("CROSSDB_TEST_PROFILE", "sqlite")
PROFILES = ("sqlite", "postgresql", "mysql", "mixed", "replica", "replica_mirror")
if PROFILE not in PROFILES:
    raise RuntimeError(f"CROSSDB_TEST_PROFILE must be one of {PROFILES}, not {PROFILE!r}")

SUFFIX = os.environ.get("CROSSDB_TEST_DB_SUFFIX", "")
ALIASES = ("default", "blog_db", "shop_db")


def _server(env_var: str, alias: str) -> dict:
    url = os.environ.get(env_var)
    if not url:
        raise RuntimeError(f"the {PROFILE!r} profile needs {env_var} (see README)")
    config = dj_database_url.parse(url)
    name = f"{config['NAME'] or 'crossdb'}_{alias}{SUFFIX}"
    config["NAME"] = name
    config["TEST"] = {"NAME": f"test_{name}"}
    if config["ENGINE"] == "django.db.backends.mysql":
        config["OPTIONS"] = {"charset": "utf8mb4"}
        config["TEST"].update(CHARSET="utf8mb4", COLLATION="utf8mb4_unicode_ci")
    return config


def _sqlite(alias: str) -> dict:
    # Tests run on in-memory databases; NAME is used by makemigrations only.
    name = os.path.join(tempfile.gettempdir(), f"crossdb_tests_{alias}{SUFFIX}.sqlite3")
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}


def _database(alias: str) -> dict:
    if PROFILE == "replica":
        return _on_primary(alias)
    engine = {
        "sqlite": "sqlite",
        "postgresql": "postgresql",
        "mysql": "mysql",
        "mixed": {"default": "postgresql", "blog_db": "mysql", "shop_db": "sqlite"}[alias],
        "replica_mirror": "sqlite",
    }[PROFILE]
    if engine == "postgresql":
        return _server("CROSSDB_POSTGRES_URL", alias)
    if engine == "mysql":
        return _server("CROSSDB_MYSQL_URL", alias)
    return _sqlite(alias)


def _on_primary(alias: str) -> dict:
    from tests import pg_standby

    name = f"crossdb_{alias}{SUFFIX}"
    config = pg_standby.settings_for(STANDBY, STANDBY.primary_port, name)
    return {**config, "TEST": {"NAME": f"test_{name}"}}


# {primary: replica} of the replica profiles.
REPLICA_OF = {"default": "replica", "blog_db": "blog_replica"}
if PROFILE == "replica":
    from tests import pg_standby

    STANDBY = pg_standby.start()

DATABASES = {alias: _database(alias) for alias in ALIASES}
if PROFILE in ("replica", "replica_mirror"):
    # TEST MIRROR: the test run creates no database for a replica; on the
    # real standby the conftest points it back at the standby's copy.
    for _primary, _replica in REPLICA_OF.items():
        DATABASES[_replica] = {**DATABASES[_primary], "TEST": {"MIRROR": _primary}}
        if PROFILE == "replica":
            DATABASES[_replica]["PORT"] = str(STANDBY.standby_port)
    DATABASE_REPLICAS = {primary: [replica] for primary, replica in REPLICA_OF.items()}

# CROSSDB_TEST_ROUTER picks the router chain the whole suite runs under; the
# core tests also switch between them with the ``any_router`` fixture.
ROUTER_CHAINS = {
    "applabel": ["crossdb.routers.AppLabelRouter"],
    "docs": ["tests.routers.BlogRouter", "tests.routers.ShopRouter"],
    "abstaining": ["tests.routers.RulesOrNoneRouter"],
}
DATABASE_ROUTERS = ROUTER_CHAINS[os.environ.get("CROSSDB_TEST_ROUTER", "applabel")]
DATABASE_ROUTING_RULES = {"blog": "blog_db", "shop": "shop_db", "tooling": "shop_db"}
DATABASE_ROUTING_RULES.update(m2m="blog_db", m2mtags="shop_db")  # m2mtwin stays in default
DATABASE_ROUTING_RULES["ondelete"] = "shop_db"  # its twins (ondelete_twins) stay in default

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "crossdb",
    "tests.blog",
    "tests.shop",
    "tests.twin",
    "tests.tooling",
    "tests.keys",
    *("tests.m2m", "tests.m2mtags", "tests.m2mtwin"),
    *("tests.ondelete", "tests.ondelete.twins"),
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
SECRET_KEY = "crossdb-tests-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
