"""Settings of the sandbox: users in default, the blog in blog_db, the shop in shop_db.

Each alias is a SQLite file under ``sandbox/var/`` unless an environment
variable names another database (parsed by dj-database-url; engines may mix):

- ``DATABASE_URL``: default (auth, admin, sessions, the twin app);
- ``DATABASE_URL_BLOG``: blog_db;
- ``DATABASE_URL_SHOP``: shop_db;
- ``DATABASE_URL_REPLICA`` (optional): ``replica``, a read replica of default:
  reads of default's models go there, unless pinned (``crossdb.pinning``,
  whose middleware is then installed); ``make demo`` has none.

``SANDBOX_VAR`` moves the SQLite files elsewhere (the end-to-end test uses it).
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SANDBOX_VAR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _database(env_var: str, filename: str) -> dict:
    default = f"sqlite:///{VAR_DIR / filename}"
    return dj_database_url.parse(os.environ.get(env_var) or default)


DATABASES = {
    "default": _database("DATABASE_URL", "default.sqlite3"),
    "blog_db": _database("DATABASE_URL_BLOG", "blog.sqlite3"),
    "shop_db": _database("DATABASE_URL_SHOP", "shop.sqlite3"),
}
for _config in DATABASES.values():
    if _config["ENGINE"] == "django.db.backends.mysql":
        _config.setdefault("OPTIONS", {})["charset"] = "utf8mb4"

DATABASE_ROUTERS = ["crossdb.routers.AppLabelRouter"]
DATABASE_ROUTING_RULES = {"blog": "blog_db", "shop": "shop_db"}
DATABASE_REPLICAS = {}
if os.environ.get("DATABASE_URL_REPLICA"):
    DATABASES["replica"] = dj_database_url.parse(os.environ["DATABASE_URL_REPLICA"])
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_REPLICAS["default"] = ["replica"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crossdb",
    "blog",
    "shop",
    "twin",
    "showcase",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if DATABASE_REPLICAS:
    # Each request reads its own writes, and the client's next ones for a while.
    MIDDLEWARE.insert(0, "crossdb.pinning.PinningMiddleware")
ROOT_URLCONF = "config.urls"
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

# A local demo: never deploy these settings.
SECRET_KEY = "crossdb-sandbox-not-secret"
DEBUG = os.environ.get("SANDBOX_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STATIC_URL = "static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
