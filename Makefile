# crossdb's two contract commands: `make demo` and `make test`.
# Both bootstrap .venv on first use; nothing else needs installing by hand
# (mysqlclient needs Debian's pkg-config and libmariadb-dev: see README).

PYTHON ?= python3
# DJANGO=6.1 pins that release series (in its own venv, .venv-dj61); empty: the
# newest release pyproject.toml allows on $(PYTHON).
DJANGO ?=
VENV ?= $(if $(DJANGO),.venv-dj$(subst .,,$(DJANGO)),.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Which profiles `make test` runs; empty: every profile the URLs allow (below).
PROFILES ?=
# The interpreters of the matrix (pyenv's builds); a missing one fails, never skips.
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null)
PYTHON312 ?= $(PYENV_ROOT)/versions/3.12.1/bin/python3
PYTHON313 ?= $(PYENV_ROOT)/versions/3.13.0/bin/python3

.PHONY: venv test test-matrix test-profile lint docs demo serve bench e2e django-suite django-suite-swapped clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || command -v $(PYTHON) >/dev/null || \
		{ echo "no Python interpreter $(PYTHON) for $(VENV)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev,docs,demo]" $(if $(DJANGO),"Django==$(DJANGO).*")
	touch $(STAMP)

venv: $(STAMP)

# The SQLite profile always; PostgreSQL when CROSSDB_POSTGRES_URL is set,
# MariaDB when CROSSDB_MYSQL_URL is set, mixed when both are; the replica
# suite on TEST MIRRORs always, and on a PostgreSQL primary and streaming
# standby of its own (tests/pg_standby.py) when the server binaries are
# installed (pg_config --bindir, or CROSSDB_PG_BINDIR).
# CROSSDB_REQUIRE_ALL=1 (CI) fails unless all six profiles run.
# PROFILES="sqlite mixed" runs those (a server they need missing fails them).
REPLICA_SUITE := tests/test_replica_routing.py tests/test_pinning.py
SUITE_replica := $(REPLICA_SUITE) tests/test_replica_standby.py
SUITE_replica_mirror := $(REPLICA_SUITE) tests/test_replica_mirror.py
PG_BINDIR_FOUND = $(BIN)/python -c "import sys; from tests import pg_standby; sys.exit(not pg_standby.available())"
test: $(STAMP)
	@profiles="$(PROFILES)"; \
	if [ -z "$$profiles" ]; then \
	profiles="sqlite"; \
	if [ -n "$$CROSSDB_POSTGRES_URL" ]; then profiles="$$profiles postgresql"; fi; \
	if [ -n "$$CROSSDB_MYSQL_URL" ]; then profiles="$$profiles mysql"; fi; \
	if [ -n "$$CROSSDB_POSTGRES_URL" ] && [ -n "$$CROSSDB_MYSQL_URL" ]; then profiles="$$profiles mixed"; fi; \
	profiles="$$profiles replica_mirror"; \
	if $(PG_BINDIR_FOUND); then profiles="$$profiles replica"; fi; \
	if [ -n "$$CROSSDB_REQUIRE_ALL" ] && [ "$$profiles" != "sqlite postgresql mysql mixed replica_mirror replica" ]; then \
		echo "CROSSDB_REQUIRE_ALL is set but only these profiles can run: $$profiles"; exit 1; fi; \
	fi; \
	$(BIN)/python -c "import django, sys; print('=== Django', django.get_version(), 'on Python', sys.version.split()[0], '===')"; \
	failed=""; \
	for profile in $$profiles; do \
		echo "=== profile: $$profile ==="; \
		case $$profile in replica) paths="$(SUITE_replica)";; \
			replica_mirror) paths="$(SUITE_replica_mirror)";; *) paths="";; esac; \
		CROSSDB_TEST_PROFILE=$$profile $(BIN)/python -m pytest $(PYTEST_ARGS) $$paths || failed="$$failed $$profile"; \
		case $$profile in replica*) ;; *) CROSSDB_TEST_PROFILE=$$profile $(BIN)/python -m pytest $(UUID_PROJECT) \
			|| failed="$$failed $$profile(uuid)";; esac; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED profiles:$$failed"; exit 1; fi; \
	echo "all profiles passed: $$profiles"

# The project whose AUTH_USER_MODEL has a UUID key runs under its own settings.
UUID_PROJECT := --ds=tests.uuidproject.settings --confcutdir=tests/uuidproject tests/uuidproject

# The supported-versions matrix (docs/versions.rst), each in its own venv:
# Django 5.2 on Python 3.11 and 6.1 on 3.13 on every profile, 6.0 on 3.12 on
# sqlite and mixed.  Stops at the first combination that fails.
test-matrix:
	$(MAKE) test DJANGO=5.2 PYTHON=python3
	$(MAKE) test DJANGO=6.0 PYTHON=$(PYTHON312) PROFILES="sqlite mixed"
	$(MAKE) test DJANGO=6.1 PYTHON=$(PYTHON313)

# One profile: make test-profile PROFILE=postgresql (replica profiles: the replica suite)
test-profile: $(STAMP)
	CROSSDB_TEST_PROFILE=$(PROFILE) $(BIN)/python -m pytest $(PYTEST_ARGS) \
		$(SUITE_$(PROFILE))

lint: $(STAMP)
	$(BIN)/ruff check crossdb tests sandbox
	$(BIN)/ruff format --check crossdb tests sandbox

# The sandbox: three databases (SQLite files in sandbox/var/ unless
# DATABASE_URL, DATABASE_URL_BLOG, DATABASE_URL_SHOP say otherwise).
SANDBOX := $(BIN)/python sandbox/manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

# Migrate, seed (idempotent) and walk through crossdb across the databases.
demo: $(STAMP)
	$(SANDBOX) demo

# The admin on $(HOST):$(PORT) with the demo data; the login is printed.
serve: $(STAMP)
	$(SANDBOX) demo --seed-only
	$(SANDBOX) runserver $(HOST):$(PORT)

# crossdb against a plain ForeignKey, same rows: make bench BENCH_ARGS="--rounds 9"
BENCH_ARGS ?=
bench: $(STAMP)
	$(SANDBOX) bench $(BENCH_ARGS)

# Django's own test suite (the sdist of the installed Django, cached in
# ~/.cache/crossdb/django-suite) with crossdb installed: every test that passes
# without crossdb passes with it (docs/django_suite.rst).
django-suite: $(STAMP)
	$(BIN)/python -m tests.djangosuite $(DJANGO_SUITE_ARGS)

# Mode 2: every ForeignKey/OneToOneField of the suite's test apps declared as
# crossdb's, one database; every failure listed with its checked category in
# tests/djangosuite/expectations/django-X.Y-swapped.json (docs/django_suite.rst).
django-suite-swapped: $(STAMP)
	$(BIN)/python -m tests.djangosuite --mode swapped $(DJANGO_SUITE_ARGS)

# The documentation; any warning fails the build (-E: every page re-read, so
# warnings of unchanged pages are not hidden by the saved environment).
docs: $(STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

# The sandbox admin driven in headless Chromium (Debian's chromium package).
e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

clean:
	rm -rf $(VENV) .venv-dj* docs/_build sandbox/var
