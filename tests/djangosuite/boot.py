"""Run Django's ``tests/runtests.py`` with crossdb installed, optionally with the fields swapped.

Invoked by ``run.py`` as ``python boot.py <django tests dir> <mode> <runtests arguments>``:

- ``baseline``: Django's suite untouched;
- ``installed``: ``"crossdb"`` added to every INSTALLED_APPS the suite sets, so its
  ``ready()`` installs the seams for every model;
- ``swapped``: as ``installed``, and every ``ForeignKey``/``OneToOneField`` declared by a
  test app (a module outside ``django.``) is crossdb's, all in one database.
"""

from __future__ import annotations

import runpy
import sys


def add_crossdb_to_installed_apps() -> None:
    """Make every app registry population include crossdb (runtests resets the list)."""
    from django.apps.registry import Apps

    populate = Apps.populate

    def populate_with_crossdb(self, installed_apps=None):
        if installed_apps is not None and not self.ready:
            names = [getattr(app, "name", app) for app in installed_apps]
            if "crossdb" not in names and "django.contrib.contenttypes" in names:
                installed_apps = [*installed_apps, "crossdb"]
        return populate(self, installed_apps)

    Apps.populate = populate_with_crossdb


class _Swapping(type):
    """A stand-in for a relation class: test apps get crossdb's, Django's own modules Django's."""

    def __call__(cls, *args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        target = cls.django_class if caller.startswith("django.") else cls.crossdb_class
        return target(*args, **kwargs)

    def __instancecheck__(cls, instance):
        return isinstance(instance, cls.django_class)

    def __subclasscheck__(cls, subclass):
        return issubclass(subclass, cls.django_class)


def swap_relation_fields() -> None:
    """Declare every ForeignKey/OneToOneField of the test apps as crossdb's."""
    from django.db import models

    from crossdb.fields import CrossDatabaseForeignKey, CrossDatabaseOneToOneField

    for name, crossdb_class in (
        ("ForeignKey", CrossDatabaseForeignKey),
        ("OneToOneField", CrossDatabaseOneToOneField),
    ):
        django_class = getattr(models, name)
        stand_in = _Swapping(
            name, (), {"django_class": django_class, "crossdb_class": crossdb_class}
        )
        setattr(models, name, stand_in)


# Wall-clock assertions: they fail on a loaded machine whatever is installed, and their
# failure cannot be sent back from a parallel worker (the runner stops).
TIMING_TESTS = {
    "serializers.test_deserialization.TestDeserializer.test_crafted_xml_performance",
}


def leave_out_timing_tests() -> None:
    """Drop the wall-clock tests from every suite the runner builds."""
    from django.test.runner import DiscoverRunner
    from django.test.utils import iter_test_cases

    build_suite = DiscoverRunner.build_suite

    def build_suite_without_timing(self, *args, **kwargs):
        suite = build_suite(self, *args, **kwargs)
        kept = [test for test in iter_test_cases(suite) if test.id() not in TIMING_TESTS]
        return self.test_suite(kept)

    DiscoverRunner.build_suite = build_suite_without_timing


def main() -> None:
    tests_dir, mode, *arguments = sys.argv[1:]
    leave_out_timing_tests()
    if mode in ("installed", "swapped"):
        add_crossdb_to_installed_apps()
    if mode == "swapped":
        swap_relation_fields()
    sys.path.insert(0, tests_dir)
    sys.argv = [f"{tests_dir}/runtests.py", *arguments]
    runpy.run_path(f"{tests_dir}/runtests.py", run_name="__main__")


if __name__ == "__main__":
    main()
