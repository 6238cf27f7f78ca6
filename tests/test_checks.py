"""System checks: ``crossdb.E###`` / ``crossdb.W###`` (``crossdb.checks``)."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from crossdb import CrossDatabaseForeignKey, CrossDatabaseOneToOneField
from crossdb import checks as crossdb_checks
from crossdb.routers import AppLabelRouter
from tests.blog.models import Post
from tests.settings import ROUTER_CHAINS

APPLABEL = ["crossdb.routers.AppLabelRouter"]
ROOT = Path(__file__).resolve().parent.parent


def crossdb_messages(messages):
    return [(m.id, str(m.obj)) for m in messages if m.id and m.id.startswith("crossdb.")]


# The test project -------------------------------------------------------------


@pytest.mark.parametrize("chain", sorted(ROUTER_CHAINS))
def test_the_test_project_passes_manage_py_check_under_every_router_chain(chain):
    with override_settings(DATABASE_ROUTERS=ROUTER_CHAINS[chain]):
        # Raises SystemCheckError on any error.
        call_command("check", stdout=StringIO(), stderr=StringIO())
        found = crossdb_messages(checks.run_checks())
    expected = {"applabel": []}.get(chain, [("crossdb.W101", "None")])
    if chain == "docs":
        # BlogRouter and ShopRouter know blog and shop only: both ends of a
        # field between two other apps fall back to default.
        expected += [
            ("crossdb.W002", f"{field.model._meta.label}.{field.name}")
            for field in crossdb_checks.crossdb_fields()
            if {field.model._meta.app_label, field.related_model._meta.app_label}.isdisjoint(
                {"blog", "shop"}
            )
        ]
        assert ("crossdb.W002", "tooling.Ticket.owner") in expected
    assert sorted(found) == sorted(expected)


def test_the_sandbox_passes_manage_py_check(tmp_path):
    env = {**os.environ, "SANDBOX_VAR": str(tmp_path)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for name in ("DATABASE_URL", "DATABASE_URL_BLOG", "DATABASE_URL_SHOP"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "sandbox" / "manage.py"), "check", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_checks_are_registered_with_django():
    registered = checks.registry.registry.get_checks()
    assert crossdb_checks.check_crossdb_fields in registered
    assert crossdb_checks.check_routing_rules in registered
    assert checks.Tags.models in crossdb_checks.check_crossdb_fields.tags


# The broken app: the exact list -----------------------------------------------


@override_settings(
    INSTALLED_APPS=[*settings.INSTALLED_APPS, "tests.broken"],
    DATABASE_ROUTERS=["tests.broken.routers.BrokenRouter", *APPLABEL],
    DATABASE_ROUTING_RULES={**settings.DATABASE_ROUTING_RULES, "broken": "blog_db"},
)
def test_the_broken_app_gets_exactly_these_messages():
    broken = apps.get_app_config("broken")
    messages = checks.run_checks(app_configs=[broken], tags=[checks.Tags.models])
    model = broken.get_model

    def field(name, attr):
        return model(name)._meta.get_field(attr)

    assert sorted((m.id, str(m.obj)) for m in messages) == sorted(
        [
            ("crossdb.E001", "broken.ConstrainedNote.author"),
            ("crossdb.E002", "broken.RefusedNote.author"),
            ("crossdb.E003", "broken.LostNote.author"),
            ("crossdb.E004", "broken.ArchivedNote.author"),
            ("crossdb.W001", "broken.LocalNote.post"),
            # Django's own, for the target that does not exist: not repeated by crossdb.
            ("fields.E300", "broken.MissingTargetNote.target"),
            ("fields.E307", "broken.MissingTargetNote.target"),
        ]
    )
    by_id = {m.id: m for m in messages}
    assert by_id["crossdb.E001"].obj is field("ConstrainedNote", "author")
    assert by_id["crossdb.E002"].msg == (
        "The database routers refuse the relation broken.RefusedNote.author between "
        "broken.RefusedNote on 'blog_db' and auth.User on 'default'."
    )
    assert by_id["crossdb.E003"].msg == (
        "The routers send broken.LostNote (the source of broken.LostNote.author) to the "
        "database 'missing_db', which is not in DATABASES."
    )
    assert by_id["crossdb.E004"].msg == (
        "broken.ArchivedNote.author has on_delete=archive, which crossdb cannot carry out "
        "across databases."
    )
    assert (
        by_id["crossdb.W001"].msg == "Both ends of broken.LocalNote.post always route to 'blog_db'."
    )
    assert all(m.hint for m in messages if m.id.startswith("crossdb."))
    # manage.py check fails on the errors, naming each field.
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "broken", stderr=StringIO())
    assert "broken.ArchivedNote.author: (crossdb.E004)" in str(raised.value)


# One problem at a time, in isolated apps --------------------------------------


@pytest.fixture
def isolated():
    """An isolated app registry: models declared in the test are checked alone."""
    with isolate_apps("tests.tooling"):
        yield


def make_pair(field_class=CrossDatabaseForeignKey, source_app="right", target_app="left", **kw):
    class Target(models.Model):
        class Meta:
            app_label = target_app

    kw.setdefault("on_delete", models.CASCADE)

    class Source(models.Model):
        target = field_class(Target, related_name="+", **kw)

        class Meta:
            app_label = source_app

    return Source._meta.get_field("target")


def ids(field):
    return [m.id for m in crossdb_checks.check_field(field)]


RIGHT_ON_BLOG = override_settings(
    DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES={"right": "blog_db"}
)


@RIGHT_ON_BLOG
@pytest.mark.parametrize("field_class", [CrossDatabaseForeignKey, CrossDatabaseOneToOneField])
def test_a_well_routed_field_has_no_message(isolated, field_class):
    assert ids(make_pair(field_class)) == []


@RIGHT_ON_BLOG
def test_e001_db_constraint_true(isolated):
    field = make_pair(db_constraint=True)
    [message] = crossdb_checks.check_field(field)
    assert message.id == "crossdb.E001" and isinstance(message, checks.Error)
    assert message.msg.startswith("right.Source.target passes db_constraint=True")
    assert field.db_constraint is False  # what the field does regardless


class RefuseAll:
    def allow_relation(self, obj1, obj2, **hints):
        return False


class RefuseOneWay:
    """Refuses only when the source comes first: asymmetric routers exist."""

    def allow_relation(self, obj1, obj2, **hints):
        return False if obj1._meta.app_label == "right" else None


class Recorder:
    seen: list = []

    def allow_relation(self, obj1, obj2, **hints):
        Recorder.seen.append(
            (type(obj1).__name__, obj1._state.db, type(obj2).__name__, obj2._state.db)
        )
        return None


@pytest.mark.parametrize("refuser", [RefuseAll, RefuseOneWay])
def test_e002_routers_refuse_the_relation(isolated, refuser):
    with override_settings(
        DATABASE_ROUTERS=[refuser(), *APPLABEL], DATABASE_ROUTING_RULES={"right": "blog_db"}
    ):
        [message] = crossdb_checks.check_field(make_pair())
    assert message.id == "crossdb.E002"
    assert "right.Source on 'blog_db' and left.Target on 'default'" in message.msg


def test_e002_asks_allow_relation_with_instances_on_the_routed_aliases(isolated):
    Recorder.seen = []
    with override_settings(
        DATABASE_ROUTERS=[Recorder(), *APPLABEL],
        DATABASE_ROUTING_RULES={"right": "shop_db", "left": "blog_db"},
    ):
        assert ids(make_pair()) == []
    assert Recorder.seen == [
        ("Target", "blog_db", "Source", "shop_db"),
        ("Source", "shop_db", "Target", "blog_db"),
    ]


def test_e002_places_instances_of_models_whose_init_needs_arguments(isolated):
    class Target(models.Model):
        class Meta:
            app_label = "left"

        def __init__(self, required, *args, **kwargs):
            super().__init__(*args, **kwargs)

    class Source(models.Model):
        target = CrossDatabaseForeignKey(Target, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "right"

    with override_settings(
        DATABASE_ROUTERS=[RefuseAll(), *APPLABEL], DATABASE_ROUTING_RULES={"right": "blog_db"}
    ):
        assert ids(Source._meta.get_field("target")) == ["crossdb.E002"]


def test_checks_run_no_default_callable_of_the_models(isolated):
    calls = []

    def default_label():
        calls.append("called")  # a default may query or write: checks must not run it
        return "x"

    class Target(models.Model):
        label = models.CharField(max_length=10, default=default_label)

        class Meta:
            app_label = "left"

    class Source(models.Model):
        label = models.CharField(max_length=10, default=default_label)
        target = CrossDatabaseForeignKey(Target, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "right"

    with override_settings(
        DATABASE_ROUTERS=[Recorder(), *APPLABEL], DATABASE_ROUTING_RULES={"right": "blog_db"}
    ):
        assert ids(Source._meta.get_field("target")) == []
    assert calls == []


@pytest.mark.parametrize(
    ("rules", "end", "alias"),
    [
        ({"right": "nowhere_db"}, "source", "nowhere_db"),
        ({"right": "blog_db", "left": "gone_db"}, "target", "gone_db"),
    ],
)
def test_e003_an_end_routes_to_an_alias_not_in_databases(isolated, rules, end, alias):
    with override_settings(DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES=rules):
        messages = crossdb_checks.check_field(make_pair())
    # The alias error alone: allow_relation is not asked about a missing alias.
    assert [m.id for m in messages] == ["crossdb.E003"]
    assert f"(the {end} of right.Source.target) to the database {alias!r}" in messages[0].msg


@RIGHT_ON_BLOG
@pytest.mark.parametrize(
    "on_delete",
    [
        models.CASCADE,
        models.PROTECT,
        models.RESTRICT,
        models.SET_NULL,
        models.SET_DEFAULT,
        models.SET(0),
        models.SET(lambda: 0),
        models.DO_NOTHING,
    ],
)
def test_e004_accepts_every_django_rule(isolated, on_delete):
    assert ids(make_pair(on_delete=on_delete, null=True, default=None)) == []


@RIGHT_ON_BLOG
def test_e004_refuses_a_home_made_rule(isolated):
    def soft_delete(collector, field, sub_objs, using):
        pass

    [message] = crossdb_checks.check_field(make_pair(on_delete=soft_delete))
    assert message.id == "crossdb.E004"
    assert "on_delete=soft_delete" in message.msg
    assert "crossdb_supported = True" in message.hint


@RIGHT_ON_BLOG
def test_e004_accepts_a_home_made_rule_marked_as_collecting_only(isolated):
    def archive(collector, field, sub_objs, using):
        collector.add_field_update(field, None, sub_objs)

    archive.crossdb_supported = True
    assert ids(make_pair(on_delete=archive, null=True)) == []


def test_w001_both_ends_routed_to_the_same_alias(isolated):
    rules = {"right": "blog_db", "left": "blog_db"}
    with override_settings(DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES=rules):
        [message] = crossdb_checks.check_field(make_pair())
    assert (message.id, type(message)) == ("crossdb.W001", checks.Warning)
    assert message.msg == "Both ends of right.Source.target always route to 'blog_db'."


@pytest.mark.parametrize(
    "routers",
    [
        [],  # no router at all
        APPLABEL,  # the rules name neither app
        ["tests.routers.BlogRouter", "tests.routers.ShopRouter"],  # routers abstain
    ],
)
def test_w002_both_ends_fall_back_to_default(isolated, routers):
    with override_settings(DATABASE_ROUTERS=routers, DATABASE_ROUTING_RULES={"blog": "blog_db"}):
        [message] = crossdb_checks.check_field(make_pair())
    assert message.id == "crossdb.W002"
    assert message.msg == (
        "No database router places either end of right.Source.target (right.Source or "
        "left.Target): both fall back to 'default'."
    )


def test_w001_not_w002_when_a_router_sends_an_end_to_default_on_purpose(isolated):
    with override_settings(DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES={"left": "default"}):
        assert ids(make_pair()) == ["crossdb.W001"]


def test_one_end_falling_back_to_default_is_the_normal_case(isolated):
    with override_settings(
        DATABASE_ROUTERS=["tests.routers.BlogRouter"], DATABASE_ROUTING_RULES={}
    ):
        field = make_pair(source_app="blog")
        assert ids(field) == []


def test_a_replica_router_is_not_the_same_alias(isolated):
    class ReadReplica:
        def db_for_read(self, model, **hints):
            return "shop_db" if model._meta.app_label == "right" else None

    with override_settings(DATABASE_ROUTERS=[ReadReplica(), *APPLABEL], DATABASE_ROUTING_RULES={}):
        assert ids(make_pair()) == []


def test_unresolved_targets_are_left_to_django(isolated):
    class Source(models.Model):
        target = CrossDatabaseForeignKey("left.Nowhere", on_delete=models.CASCADE)

        class Meta:
            app_label = "right"

    field = Source._meta.get_field("target")
    assert crossdb_checks.check_field(field) == []
    assert [m.id for m in field.check()] == ["fields.E300"]


def test_check_models_only_checks_local_crossdb_fields(isolated):
    class Target(models.Model):
        class Meta:
            app_label = "left"

    class Base(models.Model):
        target = CrossDatabaseForeignKey(
            Target, on_delete=models.CASCADE, db_constraint=True, related_name="+"
        )
        plain = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "right"

    class Child(Base):
        class Meta:
            app_label = "right"

    with override_settings(DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES={"right": "blog_db"}):
        assert [m.id for m in crossdb_checks.check_models([Base, Child])] == ["crossdb.E001"]


# DATABASE_ROUTING_RULES ---------------------------------------------------------


def rules_messages(**overrides):
    with override_settings(**overrides):
        return [(m.id, m.msg) for m in crossdb_checks.check_routing_rules()]


@pytest.mark.parametrize(
    "rules", [["blog", "blog_db"], {"blog": 1}, {("blog",): "blog_db"}, "blog_db"]
)
def test_e101_rules_must_map_labels_to_aliases(rules):
    [(message_id, message)] = rules_messages(DATABASE_ROUTING_RULES=rules)
    assert message_id == "crossdb.E101"
    assert repr(rules) in message


def test_e102_rule_names_a_missing_alias():
    assert rules_messages(
        DATABASE_ROUTING_RULES={"blog": "blog_db", "shop": "shopdb"}, DATABASE_ROUTERS=APPLABEL
    ) == [
        (
            "crossdb.E102",
            "DATABASE_ROUTING_RULES sends 'shop' to the database 'shopdb', which is not in "
            "DATABASES.",
        )
    ]


def test_e103_rule_names_an_app_that_is_not_installed():
    assert rules_messages(
        DATABASE_ROUTING_RULES={"tests.blog": "blog_db"}, DATABASE_ROUTERS=APPLABEL
    ) == [
        (
            "crossdb.E103",
            "DATABASE_ROUTING_RULES names the app label 'tests.blog', which is not an "
            "installed app.",
        )
    ]


class MyRouter(AppLabelRouter):
    pass


@pytest.mark.parametrize(
    ("routers", "warned"),
    [
        ([], True),
        (["tests.routers.BlogRouter"], True),
        (["tests.routers.BlogRouter", "crossdb.routers.AppLabelRouter"], False),
        ([MyRouter()], False),  # an instance of a subclass
        ([MyRouter], False),  # a class
        (["tests.test_checks.MyRouter"], False),
    ],
)
def test_w101_rules_without_app_label_router(routers, warned):
    messages = rules_messages(DATABASE_ROUTERS=routers)
    assert messages == ([("crossdb.W101", messages[0][1])] if warned else [])


def test_no_rules_setting_no_messages():
    assert rules_messages(DATABASE_ROUTING_RULES=None, DATABASE_ROUTERS=[]) == []
    assert rules_messages(DATABASE_ROUTING_RULES={}, DATABASE_ROUTERS=[]) == []


def test_on_delete_name():
    assert crossdb_checks.on_delete_name(models.CASCADE) == "CASCADE"
    assert crossdb_checks.on_delete_name(models.SET(1)) == "SET(...)"
    assert crossdb_checks.on_delete_name(Post._meta.get_field("editor").remote_field.on_delete) == (
        "SET_NULL"
    )


@override_settings(DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES={"right": "blog_db"})
def test_e201_a_plain_many_to_many_across_databases(isolated):
    class Target(models.Model):
        class Meta:
            app_label = "left"

    class Source(models.Model):
        targets = models.ManyToManyField(Target, related_name="+")

        class Meta:
            app_label = "right"

    class Near(models.Model):
        sources = models.ManyToManyField(Source, related_name="+")

        class Meta:
            app_label = "right"

    messages = crossdb_checks.check_relations([Target, Source, Near])
    assert [m.obj for m in messages] == [Source._meta.get_field("targets")]
    assert "CrossDatabaseForeignKey" in messages[0].hint


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"right": "blog_db"}, ["crossdb.E202"]),
        ({"right": "blog_db", "contenttypes": "blog_db"}, []),
    ],
)
def test_e202_a_generic_foreign_key_away_from_content_types(isolated, rules, expected):
    from django.contrib.contenttypes.fields import GenericForeignKey
    from django.contrib.contenttypes.models import ContentType

    class Tagged(models.Model):
        content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
        object_id = models.PositiveIntegerField()
        item = GenericForeignKey("content_type", "object_id")

        class Meta:
            app_label = "right"

    with override_settings(DATABASE_ROUTERS=APPLABEL, DATABASE_ROUTING_RULES=rules):
        messages = crossdb_checks.check_relations([Tagged])
    assert [m.id for m in messages] == expected
