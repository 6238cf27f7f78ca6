"""Run Django's own test suite with crossdb installed and compare it with a baseline.

Django's single-database behaviour is crossdb's specification, and the strongest
test of "installing crossdb changes no answer" is the suite nobody here wrote.
``python -m tests.djangosuite`` fetches the sdist of the installed Django version
from the package index (cached in ``~/.cache/crossdb/django-suite/<version>/``),
runs its ``tests/runtests.py`` on SQLite for the modules in ``MODULES`` with
``"crossdb"`` appended to the suite's installed apps, and fails when a test that
passes without crossdb fails with it. The tests that fail without crossdb are
recorded once per Django version with ``--record-baseline`` into
``expectations/django-<major.minor>.json``. See docs/django_suite.rst.

Not collected by pytest: no module here is named ``test_*.py``.
"""
