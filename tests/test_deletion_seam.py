"""The ``deletion`` seam: what crossdb relies on in Django's Collector and transactions.

crossdb extends ``Collector`` through its overridable methods and calls
Django's own for the work (``crossdb.deletion.collector``).  These tests pin
the contract those methods keep on every supported Django version: their
signatures, that ``collect()`` goes through them and through ``self.using``,
that ``delete()`` writes only on ``self.using``, and how ``on_commit``
callbacks are kept (``crossdb.deletion.commit``).  A failure names what to
re-read.
"""

import gc
import inspect
import weakref

import pytest
from django.contrib.admin.utils import NestedObjects
from django.db import connections, transaction
from django.db.models.deletion import Collector

from crossdb import deletion, seams
from crossdb.deletion.collector import DJANGO
from crossdb.testing import capture_queries
from tests.ondelete.worlds import CROSS, TWIN, build, home_alias

OVERRIDDEN = {
    "collect": [
        "self",
        "objs",
        "source",
        "nullable",
        "collect_related",
        "source_attr",
        "reverse_dependency",
        "keep_parents",
        "fail_on_restricted",
    ],
    "related_objects": ["self", "related_model", "related_fields", "objs"],
    "get_del_batches": ["self", "objs", "fields"],
    "add": ["self", "objs", "source", "nullable", "reverse_dependency"],
    "add_field_update": ["self", "field", "value", "objs"],
    "delete": ["self"],
}


def test_the_seam_is_installed():
    assert seams.installed()["deletion"] is True
    assert Collector.delete is deletion.delete
    for name in OVERRIDDEN:
        assert getattr(Collector, name).crossdb_original is DJANGO[name]
    # NestedObjects (the admin's confirmation page) inherits them and calls
    # collect() through super().
    assert "delete" not in vars(NestedObjects)
    assert "super" in NestedObjects.collect.__code__.co_names


def test_installing_twice_changes_nothing():
    methods = {name: getattr(Collector, name) for name in OVERRIDDEN}
    seams.install_all()
    assert {name: getattr(Collector, name) for name in OVERRIDDEN} == methods
    assert all(DJANGO[name] is not methods[name] for name in OVERRIDDEN)


@pytest.mark.parametrize("name", OVERRIDDEN)
def test_django_methods_keep_their_signature(name):
    assert list(inspect.signature(DJANGO[name]).parameters) == OVERRIDDEN[name]
    assert list(inspect.signature(getattr(Collector, name)).parameters) == OVERRIDDEN[name]


class DjangoCollector(Collector):
    """Django's own methods, recording what collect() asks of the overridable ones."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = []

    collect = DJANGO["collect"]
    add = DJANGO["add"]
    add_field_update = DJANGO["add_field_update"]
    delete = DJANGO["delete"]

    def get_del_batches(self, objs, fields):
        self.asked.append(("get_del_batches", self.using, [f.name for f in fields]))
        return DJANGO["get_del_batches"](self, objs, fields)

    def related_objects(self, related_model, related_fields, objs):
        queryset = DJANGO["related_objects"](self, related_model, related_fields, objs)
        self.asked.append(("related_objects", queryset.db, related_model))
        return queryset


@pytest.mark.django_db(databases="__all__")
def test_django_collect_asks_the_overridable_methods_on_self_using():
    """Every relation's dependents come from related_objects(), on self.using."""
    build(TWIN)
    collector = DjangoCollector(using="default")
    collector.collect(list(TWIN.Post.objects.filter(title="b1")))
    looked_up = {model for verb, _alias, model in collector.asked if verb == "related_objects"}
    assert TWIN.Comment in looked_up
    assert {alias for _verb, alias, _what in collector.asked} == {"default"}
    assert any(verb == "get_del_batches" for verb, _a, _w in collector.asked)


@pytest.mark.django_db(databases="__all__")
def test_without_the_seam_django_asks_the_wrong_database():
    """Django's own Collector looks for a user's posts in the user's database."""
    users = build(CROSS)

    class Refusing(DjangoCollector):
        def related_objects(self, related_model, related_fields, objs):
            # Not run: on default it would read a stale copy of blog_post.
            return super().related_objects(related_model, related_fields, objs).none()

    django_collector = Refusing(using="default")
    django_collector.collect([users["ann"]])
    assert ("related_objects", "default", CROSS.Post) in django_collector.asked
    collector = Collector(using="default")
    collector.collect([users["ann"]])
    assert deletion.alias_of(collector, CROSS.Post) == home_alias(CROSS.Post)
    assert len(collector.data[CROSS.Post]) == 2


@pytest.mark.django_db(databases="__all__")
def test_django_delete_writes_only_on_self_using():
    """Each alias's share can be handed to Django's delete() as its own Collector."""
    build(TWIN)
    collector = DjangoCollector(using="default")
    collector.collect(list(TWIN.Post.objects.filter(title="b1")))
    with capture_queries(*connections) as queries:
        collector.delete()
    assert queries.count("default") > 0
    assert all(queries.count(alias) == 0 for alias in connections if alias != "default")


@pytest.mark.django_db(transaction=True)
def test_on_commit_callbacks_are_a_list_dropped_on_rollback():
    """The joined-transaction hand-off moves its callback first and watches it dropped."""

    def callback():
        pass

    class Callback:
        def __call__(self):
            pass

    connection = connections["default"]
    with transaction.atomic():
        transaction.on_commit(callback)
        transaction.on_commit(Callback())
        hooks = connection.run_on_commit
        assert isinstance(hooks, list) and len(hooks) == 2
        hooks.insert(0, hooks.pop())
        assert callable(hooks[0][1]) and hooks[1][1] is callback
    # Dropped by a savepoint rollback and by a rollback: nothing else keeps it.
    for outer in (True, False):
        try:
            with transaction.atomic():
                with transaction.atomic():
                    item = Callback()
                    ref = weakref.ref(item)
                    transaction.on_commit(item)
                    del item
                    if outer:
                        raise KeyError
                raise KeyError
        except KeyError:
            pass
        gc.collect()
        assert ref() is None
