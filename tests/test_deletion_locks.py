"""A delete locks the rows it deletes before it collects their crossdb dependents.

With the write check's share lock on the target row (held until the
referencing write commits), this leaves no orphan: either the delete sees the
new dependent, or the writer finds its target gone.
"""

import threading
from contextlib import ExitStack, contextmanager

import pytest
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.db.models.deletion import Collector

from crossdb.deletion import lock_rows_for_delete, locks
from crossdb.testing import capture_queries
from tests.blog.models import Post

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _locking(alias):
    return locks.takes_row_locks(alias)


@contextmanager
def statements_in_order():
    """Yield the list of ``(alias, sql)`` sent to any alias, in the order sent."""
    sent = []

    def recorder(alias):
        def record(execute, sql, params, many, context):
            sent.append((alias, sql))
            return execute(sql, params, many, context)

        return record

    with ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(recorder(alias)))
        yield sent


def test_the_lock_comes_before_the_dependents_are_read():
    ann = User.objects.create(username="ann")
    Post.objects.create(title="a1", author=ann)
    with statements_in_order() as sent:
        ann.delete()
    assert not Post.objects.exists()
    locked = [i for i, (alias, sql) in enumerate(sent) if "FOR UPDATE" in sql]
    if not _locking("default"):
        # SQLite: no row locks; the first write locks the whole database.
        assert locked == []
        return
    first_on_blog = next(i for i, (alias, _sql) in enumerate(sent) if alias == "blog_db")
    assert locked and locked[0] < first_on_blog
    assert sent[locked[0]][0] == "default" and "auth_user" in sent[locked[0]][1]


def test_a_collector_that_only_lists_rows_takes_no_lock():
    from django.contrib.admin.utils import NestedObjects

    ann = User.objects.create(username="ann")
    Post.objects.create(title="a1", author=ann)
    with capture_queries(*connections) as queries:
        NestedObjects(using="default").collect([ann])
    assert not any("FOR UPDATE" in sql for a in connections for sql in queries.sql(a))
    assert not any(connections[a].in_atomic_block for a in connections)


def test_a_collection_dropped_without_delete_leaves_no_transaction_open():
    ann = User.objects.create(username="ann")
    Post.objects.create(title="a1", author=ann)
    collector = Collector(using="default")
    collector.collect([ann])
    del collector
    assert not any(connections[a].in_atomic_block for a in connections)
    assert User.objects.filter(username="ann").exists()


def test_lock_rows_for_delete_blocks_a_share_lock_until_commit():
    ann = User.objects.create(username="ann")
    if not _locking("default"):
        assert lock_rows_for_delete(User, [ann.pk], "default") == 0
        return
    vendor = connections["default"].vendor
    share = "FOR KEY SHARE" if vendor == "postgresql" else "LOCK IN SHARE MODE"
    waited = {}

    def writer():
        try:
            with transaction.atomic(using="default"):
                with connections["default"].cursor() as cursor:
                    if vendor == "postgresql":
                        cursor.execute("SET LOCAL lock_timeout = '300ms'")
                    else:
                        cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
                    cursor.execute(f"SELECT id FROM auth_user WHERE id = %s {share}", [ann.pk])
            waited["blocked"] = False
        except Exception:
            waited["blocked"] = True
        finally:
            connections.close_all()

    with transaction.atomic(using="default"):
        assert lock_rows_for_delete(User, [ann.pk], "default") == 1
        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(10)
    assert waited == {"blocked": True}
