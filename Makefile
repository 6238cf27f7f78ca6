# crossdb's two contract commands: `make demo` and `make test`.
# Both bootstrap .venv on first use; nothing else needs installing by hand
# (mysqlclient needs Debian's pkg-config and libmariadb-dev: see README).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv test test-profile lint docs demo serve bench e2e django-suite clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev,docs,demo]"
	touch $(STAMP)

venv: $(STAMP)

# The SQLite profile always; PostgreSQL when CROSSDB_POSTGRES_URL is set,
# MariaDB when CROSSDB_MYSQL_URL is set, mixed when both are.
# CROSSDB_REQUIRE_ALL=1 (CI) fails unless all four profiles run.
test: $(STAMP)
	@profiles="sqlite"; \
	if [ -n "$$CROSSDB_POSTGRES_URL" ]; then profiles="$$profiles postgresql"; fi; \
	if [ -n "$$CROSSDB_MYSQL_URL" ]; then profiles="$$profiles mysql"; fi; \
	if [ -n "$$CROSSDB_POSTGRES_URL" ] && [ -n "$$CROSSDB_MYSQL_URL" ]; then profiles="$$profiles mixed"; fi; \
	if [ -n "$$CROSSDB_REQUIRE_ALL" ] && [ "$$profiles" != "sqlite postgresql mysql mixed" ]; then \
		echo "CROSSDB_REQUIRE_ALL is set but only these profiles can run: $$profiles"; exit 1; fi; \
	failed=""; \
	for profile in $$profiles; do \
		echo "=== profile: $$profile ==="; \
		CROSSDB_TEST_PROFILE=$$profile $(BIN)/python -m pytest $(PYTEST_ARGS) || failed="$$failed $$profile"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED profiles:$$failed"; exit 1; fi; \
	echo "all profiles passed: $$profiles"

# One profile: make test-profile PROFILE=postgresql
test-profile: $(STAMP)
	CROSSDB_TEST_PROFILE=$(PROFILE) $(BIN)/python -m pytest $(PYTEST_ARGS)

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

# The documentation; any warning fails the build (-E: every page re-read, so
# warnings of unchanged pages are not hidden by the saved environment).
docs: $(STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

# The sandbox admin driven in headless Chromium (Debian's chromium package).
e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

# Django's own test suite as the judge (tests/djangosuite/run.py): the sdist of the
# installed Django, SQLite; installed = crossdb in INSTALLED_APPS, swapped = every
# ForeignKey/OneToOneField of the test apps declared as crossdb's.
DJANGO_SUITE_MODE ?= installed
django-suite: $(STAMP)
	$(BIN)/python tests/djangosuite/run.py --mode $(DJANGO_SUITE_MODE)

clean:
	rm -rf $(VENV) docs/_build sandbox/var
