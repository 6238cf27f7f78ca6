"""Concurrent writers: creates racing deletes leave no orphan, as a foreign key constraint.

The write's check share-locks the target row on its write alias until the
referencing row has committed; a delete locks the rows it deletes (FOR UPDATE)
before collecting their dependents.  One waits for the other, whichever
comes first.  Only where the target's database takes row locks (PostgreSQL,
MySQL/MariaDB): SQLite's behaviour is documented in docs/limitations.rst.
"""

import random
import threading
import time

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, IntegrityError, OperationalError, connections, transaction

from crossdb import integrity
from tests.blog.models import Post

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

USER_ALIAS = "default"
LOCKING = connections[USER_ALIAS].vendor in integrity.LOCK_CLAUSES
# Where the target's database locks rows the race tests run; on SQLite the
# documented behaviour (no lock taken) is tested instead.
locking_only = pytest.mark.parametrize("vendor", [connections[USER_ALIAS].vendor])


def _in_thread(target, *args):
    errors = []

    def run():
        try:
            target(*args)
        except BaseException as error:  # reported to the test thread
            errors.append(error)
        finally:
            for connection in connections.all():
                connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_the_check_locks_its_target_only_where_the_database_has_row_locks(queries):
    ann = User.objects.create(username="ann")
    with queries(USER_ALIAS) as q:
        Post.objects.create(title="p", author=ann)
    (check,) = [sql for sql in q.sql(USER_ALIAS) if sql.lstrip().startswith("SELECT")]
    assert ("FOR " in check or "LOCK IN" in check) is LOCKING


if LOCKING:

    @locking_only
    def test_the_check_share_locks_the_target_until_the_write_has_committed(vendor):
        ann = User.objects.create(username="ann")
        locked, release = threading.Event(), threading.Event()

        def creator():
            # The caller's transaction on default keeps the check's lock open.
            with transaction.atomic(using=USER_ALIAS):
                Post.objects.create(title="p", author=ann)  # blog_db commits at once
                locked.set()
                release.wait(30)

        def try_to_lock():
            with transaction.atomic(using=USER_ALIAS):
                list(User.objects.select_for_update(nowait=True).filter(pk=ann.pk))

        thread, errors = _in_thread(creator)
        assert locked.wait(30)
        thread_b, blocked = _in_thread(try_to_lock)
        thread_b.join(30)
        assert len(blocked) == 1 and isinstance(blocked[0], DatabaseError), blocked
        release.set()
        thread.join(30)
        assert errors == []
        thread_c, free = _in_thread(try_to_lock)
        thread_c.join(30)
        assert free == []
        assert Post.objects.get().author_id == ann.pk

    @locking_only
    def test_creates_racing_deletes_leave_no_orphan(vendor):
        """4 creators, 2 deleters, a few seconds (bounded well under a minute)."""
        users = [User.objects.create(username=f"u{n}") for n in range(60)]
        ids = [user.pk for user in users]
        deadline = time.monotonic() + 8
        refused, created, deleted = [], [], []
        lock = threading.Lock()

        def create(seed):
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                user_id = rng.choice(ids)
                try:
                    user = User.objects.get(pk=user_id)
                except User.DoesNotExist:
                    continue
                try:
                    user.blog_posts.create(title="racing")
                except IntegrityError as error:
                    with lock:
                        refused.append(str(error))
                else:
                    with lock:
                        created.append(user_id)

        def delete(seed):
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                user = User.objects.filter(pk=rng.choice(ids)).first()
                if user is None:
                    continue
                try:
                    user.delete()
                except OperationalError:
                    # An in-memory SQLite alias (shop_db in the mixed profile) is
                    # locked by the other deleter: this delete deleted nothing.
                    continue
                with lock:
                    deleted.append(user.pk)
                time.sleep(0.01)

        threads = [_in_thread(create, n) for n in range(4)] + [
            _in_thread(delete, 100 + n) for n in range(2)
        ]
        for thread, _errors in threads:
            thread.join(50)
            assert not thread.is_alive()
        assert [error for _thread, errors in threads for error in errors] == []
        existing = set(User.objects.values_list("pk", flat=True))
        orphans = Post.objects.exclude(author_id__in=list(existing) or [0]).count()
        assert orphans == 0
        assert deleted and created
        assert all("blog.Post.author points at" in message for message in refused)
