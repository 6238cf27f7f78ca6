"""The ``deletion`` seam: installed, and still resting on Django 5.2's Collector.

``crossdb.deletion`` mirrors ``Collector.collect()`` and ``Collector.delete()``
step for step.  If a Django upgrade changes either, or anything the mirror
calls, these tests fail first and say what to re-read.
"""

import hashlib
import inspect

import pytest
from django.contrib.admin.utils import NestedObjects
from django.db.models import QuerySet, sql
from django.db.models.deletion import Collector

from crossdb import deletion, seams
from tests.ondelete.worlds import CROSS, build, home_alias

# sha256 (first 16 hex digits) of the source of what crossdb mirrors or relies
# on, as in Django 5.2.19.  A mismatch means: re-read the new source, carry the
# change into crossdb/deletion.py, then update the digest.
MIRRORED = {
    "Collector.collect": (deletion._original_collect, "2d0885bb209f7848"),
    "Collector.delete": (deletion._original_delete, "6fc1aeb89d3dc298"),
    "Collector.related_objects": (Collector.related_objects, "58f4920e45abc302"),
    "NestedObjects.related_objects": (NestedObjects.related_objects, "f1a3141d5de971f3"),
    "NestedObjects.collect": (NestedObjects.collect, "7323682fbf1ec56e"),
}


def test_the_seam_is_installed():
    assert seams.installed()["deletion"] is True
    assert Collector.collect is deletion.collect
    assert Collector.delete is deletion.delete
    # NestedObjects (the admin's confirmation page) inherits both.
    assert "delete" not in vars(NestedObjects)
    assert NestedObjects.collect.__code__.co_names.count("super") == 1


def test_installing_twice_changes_nothing():
    seams.install_all()
    assert Collector.collect is deletion.collect
    assert deletion._original_collect is not deletion.collect
    assert deletion.collect.crossdb_original is deletion._original_collect


@pytest.mark.parametrize("name", MIRRORED)
def test_mirrored_django_source_is_unchanged(name):
    function, digest = MIRRORED[name]
    source = inspect.getsource(function)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, (
        f"Django's {name} changed: re-read it and carry the change into crossdb.deletion"
    )


@pytest.mark.parametrize(
    "owner, name, parameters",
    [
        (Collector, "add", ["self", "objs", "source", "nullable", "reverse_dependency"]),
        (Collector, "can_fast_delete", ["self", "objs", "from_field"]),
        (Collector, "related_objects", ["self", "related_model", "related_fields", "objs"]),
        (Collector, "add_field_update", ["self", "field", "value", "objs"]),
        (Collector, "clear_restricted_objects_from_set", ["self", "model", "objs"]),
        (Collector, "clear_restricted_objects_from_queryset", ["self", "model", "qs"]),
        (Collector, "_has_signal_listeners", ["self", "model"]),
        (Collector, "instances_with_model", ["self"]),
        (Collector, "sort", ["self"]),
        (sql.DeleteQuery, "delete_batch", ["self", "pk_list", "using"]),
        (sql.UpdateQuery, "update_batch", ["self", "pk_list", "values", "using"]),
        (QuerySet, "_raw_delete", ["self", "using"]),
    ],
)
def test_what_the_mirror_calls_keeps_its_signature(owner, name, parameters):
    assert list(inspect.signature(getattr(owner, name)).parameters) == parameters


def test_collect_keeps_its_signature():
    assert list(inspect.signature(deletion._original_collect).parameters) == list(
        inspect.signature(deletion.collect).parameters
    )


@pytest.mark.django_db(databases="__all__")
def test_without_the_seam_django_asks_the_wrong_database():
    """Django's own Collector looks for a user's posts in the user's database."""
    asked = []

    class DjangoCollector(Collector):
        collect = deletion._original_collect

        def related_objects(self, related_model, related_fields, objs):
            queryset = super().related_objects(related_model, related_fields, objs)
            asked.append((related_model, queryset.db))
            # Not run: on default it would read a stale copy of blog_post.
            return queryset.none()

    users = build(CROSS)
    DjangoCollector(using="default").collect([users["ann"]])
    assert (CROSS.Post, "default") in asked
    collector = Collector(using="default")
    collector.collect([users["ann"]])
    assert deletion.alias_of(collector, CROSS.Post) == home_alias(CROSS.Post)
    assert len(collector.data[CROSS.Post]) == 2
