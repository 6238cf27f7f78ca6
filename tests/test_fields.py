"""The fields themselves: arguments, migrations, and the column on every backend."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections, models
from django.db.migrations.writer import MigrationWriter
from django.test.utils import isolate_apps

from crossdb import CrossDatabaseForeignKey, CrossDatabaseOneToOneField
from tests.blog.models import Post
from tests.shop.models import Badge, Profile


def test_every_foreign_key_argument_is_accepted_and_deconstructed():
    field = CrossDatabaseForeignKey(
        "auth.User",
        on_delete=models.SET_NULL,
        related_name="things",
        related_query_name="thing",
        null=True,
        blank=True,
        to_field="username",
        limit_choices_to={"is_active": True},
        db_index=False,
        default=None,
        verbose_name="owner",
        help_text="who owns it",
        db_column="owner_name",
    )
    name, path, args, kwargs = field.deconstruct()
    assert path == "crossdb.CrossDatabaseForeignKey"
    assert kwargs == {
        "to": "auth.user",
        "on_delete": models.SET_NULL,
        "related_name": "things",
        "related_query_name": "thing",
        "null": True,
        "blank": True,
        "to_field": "username",
        "limit_choices_to": {"is_active": True},
        "db_index": False,
        "default": None,
        "verbose_name": "owner",
        "help_text": "who owns it",
        "db_column": "owner_name",
    }
    assert field.db_constraint is False


def test_db_constraint_is_forced_off_and_a_request_for_it_is_remembered():
    assert CrossDatabaseForeignKey(User, models.CASCADE).db_constraint is False
    asked = CrossDatabaseForeignKey(User, models.CASCADE, db_constraint=True)
    assert asked.db_constraint is False
    assert asked.crossdb_db_constraint_requested is True
    # Kept in migrations so that the system check keeps reporting it.
    assert asked.deconstruct()[3]["db_constraint"] is True


def test_one_to_one_deconstructs_with_its_public_path():
    field = CrossDatabaseOneToOneField(User, on_delete=models.CASCADE, related_name="p")
    _, path, _, kwargs = field.deconstruct()
    assert path == "crossdb.CrossDatabaseOneToOneField"
    assert "db_constraint" not in kwargs


def test_migration_writer_imports_crossdb():
    field = Post._meta.get_field("author")
    string, imports = MigrationWriter.serialize(field)
    assert string.startswith("crossdb.CrossDatabaseForeignKey(")
    assert "import crossdb" in imports


@isolate_apps("tests.blog")
def test_target_given_as_class_or_string_resolves_the_same():
    class Owner(models.Model):
        class Meta:
            app_label = "blog"

    class ByClass(models.Model):
        owner = CrossDatabaseForeignKey(Owner, on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "blog"

    class ByString(models.Model):
        owner = CrossDatabaseForeignKey("blog.Owner", on_delete=models.CASCADE, related_name="+")

        class Meta:
            app_label = "blog"

    for model in (ByClass, ByString):
        assert model._meta.get_field("owner").remote_field.model is Owner
    # The installed apps' string references resolved too.
    from tests.shop.models import Mention

    assert Mention._meta.get_field("post").remote_field.model is Post
    assert Post._meta.get_field("author").remote_field.model is User


@pytest.mark.django_db(databases="__all__")
def test_makemigrations_finds_nothing_to_do():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=StringIO())
    assert "No changes detected" in out.getvalue()


# (model, column, target column type source, unique)
COLUMNS = [
    (Post, "author_id", User._meta.pk, False),
    (Post, "editor_id", User._meta.pk, False),
    (Profile, "user_id", User._meta.pk, True),
    (Badge, "user_id", User._meta.get_field("username"), False),
]


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(("model", "column", "target", "unique"), COLUMNS)
def test_column_has_the_target_type_an_index_and_no_foreign_key(model, column, target, unique):
    alias = {"blog": "blog_db", "shop": "shop_db"}[model._meta.app_label]
    connection = connections[alias]
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
        description = {
            row.name: row for row in connection.introspection.get_table_description(cursor, table)
        }
    on_column = [c for c in constraints.values() if c["columns"] == [column]]
    assert not [c for c in constraints.values() if c["foreign_key"]], constraints
    assert any(c["index"] or c["unique"] for c in on_column), constraints
    assert any(c["unique"] for c in on_column) is unique
    # The column's type is the one Django gives a foreign key to the target.
    field = model._meta.get_field(column[: -len("_id")])
    expected = target.rel_db_type(connection)
    assert field.db_type(connection) == expected
    assert column in description


@pytest.mark.django_db(databases="__all__")
def test_tables_exist_only_on_their_routed_alias():
    from tests.conftest import STALE_TABLES

    stale = {(alias, m._meta.db_table) for alias, ms in STALE_TABLES.items() for m in ms}
    tables = {alias: set(connections[alias].introspection.table_names()) for alias in connections}
    for model, alias in ((Post, "blog_db"), (Profile, "shop_db"), (User, "default")):
        table = model._meta.db_table
        assert table in tables[alias]
        others = {a for a in tables if a != alias and table in tables[a]}
        assert others == {a for a, t in stale if t == table}
