"""Deletes under replica routers, and under no router at all, against Django's answer.

Reads routed to a replica never decide what a delete reads, writes or
cascades: every row is collected and deleted on its write alias.  The
replica is a TEST MIRROR of ``default`` (the same database under another
alias), so any statement sent to it is visible in the per-alias capture.
"""

import random

import pytest
from django.contrib.auth.models import User
from django.db import connections, models
from django.test import TransactionTestCase, override_settings
from django.test.utils import isolate_apps

from crossdb import CrossDatabaseForeignKey
from crossdb.testing import capture_queries
from tests.ondelete.twins.models import Employee, StaffPost
from tests.ondelete.worlds import CROSS, TWIN, build, snapshot

RULED = {"blog", "shop", "tooling", "ondelete"}


class PrimaryReplicaRouter:
    """The multi-database guides' router: default's reads to ``replica``."""

    def reads_replica(self):
        return True

    def db_for_read(self, model, **hints):
        if model._meta.app_label in RULED or not self.reads_replica():
            return None
        return "replica"

    def db_for_write(self, model, **hints):
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == "replica" else None


class RandomReplicaRouter(PrimaryReplicaRouter):
    """80% of default's reads to ``replica``, at random (seeded)."""

    chance = random.Random(10)

    def reads_replica(self):
        return self.chance.random() < 0.8


ROUTERS = {
    "all reads to the replica": [
        f"{__name__}.PrimaryReplicaRouter",
        "crossdb.routers.AppLabelRouter",
    ],
    "80% of reads to the replica": [
        f"{__name__}.RandomReplicaRouter",
        "crossdb.routers.AppLabelRouter",
    ],
}


def _employee(world):
    employee = Employee.objects.create(username=f"{world.prefix}emp", desk="d1")
    world.Post.objects.create(title="by emp", author=employee)
    StaffPost.objects.create(title=f"{world.prefix}staff", author=employee, desk="d2")
    return employee.pk


def _on_replica(model, pk):
    """Return the row as the router reads it: loaded under the replica's alias."""
    instance = model.objects.using("default").get(pk=pk)
    instance._state.db = "replica"
    return instance


OPERATIONS = {
    "employee (multi-table child of the user)": lambda w, u, emp: _on_replica(
        Employee, emp
    ).delete(),
    "user whose cascade reaches a plain multi-table child": lambda w, u, emp: _on_replica(
        User, emp
    ).delete(),
    "queryset of users": lambda w, u, emp: User.objects.filter(pk__in=[emp, u["ann"].pk]).delete(),
    "instance": lambda w, u, emp: u["ann"].delete(),
}


class ReplicaRouterTests(TransactionTestCase):
    """``replica``, a TEST MIRROR of ``default``, added for these tests only."""

    databases = {"default", "blog_db", "shop_db", "replica"}

    @classmethod
    def setUpClass(cls):
        connections.settings["replica"] = {
            **connections["default"].settings_dict,
            "TEST": {"MIRROR": "default"},
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        connections["replica"].close()
        del connections["replica"]
        del connections.settings["replica"]

    def _compare(self, routers, operation):
        outcomes = []
        self._run(routers, operation, outcomes)
        assert outcomes[0][1:] == outcomes[1][1:]
        # Model labels differ between the worlds; totals do not.
        assert outcomes[0][0][0] == outcomes[1][0][0]

    def _run(self, routers, operation, outcomes):
        for world in (CROSS, TWIN):
            users = build(world)
            emp = _employee(world)
            # SET_DEFAULT's default (a get_or_create of the user model) is
            # project code the replica router would route to the replica.
            world.Ref.objects.all().delete()
            for user in users.values():
                # As the router would have read them.
                user._state.db = "replica"
            # Only the delete runs under the replica router: the detector of
            # the test suite would refuse any statement sent to the replica.
            with override_settings(DATABASE_ROUTERS=routers):
                with capture_queries(*connections) as queries:
                    result = operation(world, users, emp)
            assert queries.count("replica") == 0, queries.sql("replica")
            state = snapshot(world)
            # StaffPost rows are TwinPost rows: the twin world lists them.
            state["Post"] = [row for row in state["Post"] if not row[0].endswith("staff")]
            outcomes.append(
                (
                    result,
                    state,
                    Employee.objects.filter(username=f"{world.prefix}emp").count(),
                    StaffPost.objects.filter(title=f"{world.prefix}staff").count(),
                )
            )


def _test(routers, operation):
    def test(self):
        self._compare(routers, operation)

    return test


for _r, (_router_name, _routers) in enumerate(ROUTERS.items()):
    for _o, _operation in enumerate(OPERATIONS.values()):
        setattr(
            ReplicaRouterTests,
            f"test_deletes_and_cascades_only_on_write_aliases_{_r}_{_o}",
            _test(_routers, _operation),
        )


@pytest.mark.django_db(transaction=True, databases="__all__")
@isolate_apps("tests.ondelete")
def test_using_another_alias_without_routers_cascades_there():
    """Django's ``test_foreign_key_deletion`` with the field declared as crossdb's."""

    class Person(models.Model):
        name = models.CharField(max_length=50)

        class Meta:
            app_label = "ondelete"

    class Pet(models.Model):
        name = models.CharField(max_length=50)
        owner = CrossDatabaseForeignKey(Person, models.CASCADE, related_name="pets")

        class Meta:
            app_label = "ondelete"

    # Both tables on one alias that is not default, as Django's "other".
    alias = "shop_db"
    with connections[alias].schema_editor() as editor:
        editor.create_model(Person)
        editor.create_model(Pet)
    try:
        with override_settings(DATABASE_ROUTERS=[]):
            marty = Person.objects.using(alias).create(name="Marty Alchin")
            Pet.objects.using(alias).create(name="Fido", owner=marty)
            assert Pet.objects.using(alias).get().owner.name == "Marty Alchin"
            with capture_queries(*connections) as queries:
                Person.objects.using(alias).get(name="Marty Alchin").delete()
            assert {a for a, n in queries.counts().items() if n} == {alias}
            assert not Pet.objects.using(alias).exists()
            assert not Person.objects.using(alias).exists()
    finally:
        with connections[alias].schema_editor() as editor:
            editor.delete_model(Pet)
            editor.delete_model(Person)
