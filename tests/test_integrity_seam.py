"""The ``integrity`` seam: still resting on what Django does.

If a Django upgrade moves anything below, these tests fail first and say what moved.
"""

import inspect

import pytest
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLInsertCompiler, SQLUpdateCompiler
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery

from crossdb import integrity, seams


def test_the_seam_is_installed_once():
    assert seams.installed()["integrity"]
    before = SQLInsertCompiler.execute_sql
    integrity.install()
    assert SQLInsertCompiler.execute_sql is before


@pytest.mark.parametrize(
    ("owner", "name", "parameters"),
    [
        (SQLInsertCompiler, "execute_sql", ["self", "returning_fields"]),
        (SQLUpdateCompiler, "execute_sql", ["self", "result_type"]),
        (BaseDatabaseWrapper, "commit", ["self"]),
        (BaseDatabaseWrapper, "rollback", ["self"]),
        (BaseDatabaseWrapper, "close", ["self"]),
        (BaseDatabaseWrapper, "savepoint_rollback", ["self", "sid"]),
    ],
)
def test_wrapped_methods_keep_their_signature(owner, name, parameters):
    original = owner.__dict__[name].crossdb_original
    assert list(inspect.signature(original).parameters) == parameters


def test_no_backend_overrides_the_wrapped_connection_methods():
    """A backend's own commit() or rollback() would bypass the deferred checks."""
    for alias in connections:
        cls = type(connections[alias])
        for name in ("commit", "rollback", "savepoint_rollback"):
            owner = next(klass for klass in cls.__mro__ if name in klass.__dict__)
            assert owner is BaseDatabaseWrapper, (alias, name, owner)


def test_queries_still_carry_what_the_checks_read():
    insert = InsertQuery(object)
    insert.insert_values(["f"], ["obj"], raw=False)
    assert (insert.fields, insert.objs, insert.raw) == (["f"], ["obj"], False)
    from tests.blog.models import Post

    update = UpdateQuery(Post)
    update.add_update_values({"title": "t"})
    assert [(field.name, value) for field, _model, value in update.values] == [("title", "t")]


def test_atomic_still_rolls_back_when_commit_raises_a_database_error():
    """Deferred checks raise from commit(); atomic() must roll the transaction back."""
    source = inspect.getsource(transaction.Atomic.__exit__)
    assert "connection.commit()" in source
    assert "except DatabaseError:" in source and "connection.rollback()" in source
    assert issubclass(integrity.MissingTargetError, DatabaseError)


def test_savepoint_ids_are_still_tracked_as_on_commit_uses_them():
    source = inspect.getsource(BaseDatabaseWrapper.on_commit)
    assert "set(self.savepoint_ids)" in source
