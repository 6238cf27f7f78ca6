"""Run Django's runtests.py with crossdb in its installed apps.

Invoked as ``python wrapper.py <runtests.py> <runtests arguments>`` from the
suite's tests/ directory. runtests.py is imported as a module (its
definitions only), "crossdb" is appended to ALWAYS_INSTALLED_APPS unless
CROSSDB_SUITE_MODE is "baseline", and then its ``__main__`` block is run in
that module's namespace, so Django's own argument handling is unchanged.

CROSSDB_SUITE_MODE "swapped" also declares every ``ForeignKey`` and
``OneToOneField`` of the suite's test apps as crossdb's fields (one database):
``django.db.models.ForeignKey`` becomes a stand-in that builds crossdb's class
when called from a module outside ``django.`` and Django's class otherwise, and
that answers ``isinstance``/``issubclass`` as Django's class does.
"""

import atexit
import importlib
import importlib.util
import os
import sys

MAIN_BLOCK = '\nif __name__ == "__main__":\n'

# Callers that keep Django's classes: Django itself, and crossdb (whose fields
# subclass Django's).
KEEP_DJANGO = ("django.", "crossdb.")


# The fields left Django's in swapped mode, printed once the run is set up.
KEPT: list[str] = []


def _database_level(on_delete) -> bool:
    from django.db import models

    return on_delete is not None and any(
        on_delete is getattr(models, name, object())
        for name in ("DB_CASCADE", "DB_SET_NULL", "DB_SET_DEFAULT")
    )


class _SwappedRelation:
    """Stands for ``models.ForeignKey``/``models.OneToOneField`` in swapped mode."""

    def __init__(self, django_class, crossdb_name):
        self.django_class = django_class
        self.crossdb_name = crossdb_name
        self._named = None

    @property
    def crossdb_class(self):
        # Imported on first use: crossdb's modules need configured settings.
        if self._named is None:
            crossdb_class = getattr(importlib.import_module("crossdb.fields"), self.crossdb_name)
            # crossdb's class under Django's name: Django's messages that name
            # the field's class ("Unsupported lookup 'x' for ForeignKey")
            # read as the suite expects.  Nothing else differs: crossdb
            # recognises its fields by their base, and they deconstruct to
            # crossdb's path.
            self._named = type(
                self.django_class.__name__,
                (crossdb_class,),
                {"__module__": crossdb_class.__module__},
            )
        return self._named

    def __call__(self, *args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith(KEEP_DJANGO) or caller in ("django", "crossdb"):
            return self.django_class(*args, **kwargs)
        on_delete = kwargs.get("on_delete", args[1] if len(args) > 1 else None)
        if _database_level(on_delete):
            # Django 6.1's DB_CASCADE/DB_SET_NULL/DB_SET_DEFAULT are the
            # database's own constraint: crossdb's check refuses them on its
            # fields (crossdb.E004), so these stay Django's (docs/django_suite.rst).
            KEPT.append(f"{caller}: {self.django_class.__name__}(on_delete={on_delete.__name__})")
            return self.django_class(*args, **kwargs)
        return self.crossdb_class(*args, **kwargs)

    def __instancecheck__(self, instance):
        return isinstance(instance, self.django_class)

    def __subclasscheck__(self, subclass):
        return issubclass(subclass, self.django_class)

    def __mro_entries__(self, bases):
        # A test app's own subclass of ForeignKey is a field of its own
        # (custom lookups, descriptors): it keeps Django's class as its base.
        return (self.django_class,)

    def __eq__(self, other):
        # assertEqual(type(field), models.ForeignKey): crossdb's class stands
        # for Django's, as the stand-in does.
        return other is self or other in (self.django_class, self.crossdb_class)

    def __hash__(self):
        return hash(self.django_class)

    def __getattr__(self, name):
        # ForeignKey.register_lookup, ForeignKey.get_lookups, ...
        return getattr(self.django_class, name)

    def __repr__(self):
        return f"<swapped {self.django_class.__name__}>"


def _report_kept(pid) -> None:
    if os.getpid() == pid and KEPT:
        print(f"swapped mode kept {len(KEPT)} fields Django's:", *sorted(set(KEPT)), sep="\n  ")


def swap_relation_fields() -> None:
    """Make the test apps' ForeignKey/OneToOneField crossdb's."""
    from django.db import models

    for name, crossdb_name in (
        ("ForeignKey", "CrossDatabaseForeignKey"),
        ("OneToOneField", "CrossDatabaseOneToOneField"),
    ):
        setattr(models, name, _SwappedRelation(getattr(models, name), crossdb_name))


def main() -> None:
    path = os.path.abspath(sys.argv[1])
    sys.argv = [path, *sys.argv[2:]]
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("runtests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["runtests"] = module
    spec.loader.exec_module(module)
    mode = os.environ.get("CROSSDB_SUITE_MODE", "installed")
    if mode != "baseline":
        module.ALWAYS_INSTALLED_APPS.append("crossdb")
    if mode == "swapped":
        swap_relation_fields()
        atexit.register(_report_kept, os.getpid())
    with open(path) as source:
        text = source.read()
    start = text.index(MAIN_BLOCK)
    # Keep the line numbers of tracebacks those of runtests.py.
    block = "\n" * text[:start].count("\n") + text[start:]
    module.__dict__["__name__"] = "__main__"
    exec(compile(block, path, "exec"), module.__dict__)


if __name__ == "__main__":
    main()
