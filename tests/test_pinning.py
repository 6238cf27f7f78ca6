"""``crossdb.pinning``: read-your-writes by pinning reads to the primaries.

What pins and what does not, per thread and per asyncio task, and the
middleware's write detection and cookie.  On every profile: the writes go to
the test databases, the pin is read back from ``is_pinned()`` and the routers.
"""

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from crossdb.pinning import (
    PinningMiddleware,
    _note_writes,
    is_pinned,
    is_write,
    pin_after_write,
    pin_to_primaries,
)
from crossdb.routers import AppLabelRouter
from tests.blog.models import Post

REPLICAS = {"default": ["replica"], "blog_db": ["blog_replica"]}
# Not the replica aliases of the replica profiles: a TEST MIRROR cannot read
# what a test's open transaction has written.
PRIMARIES = ["default", "blog_db", "shop_db"]


def test_nothing_is_pinned_by_default():
    assert is_pinned() is False


def test_the_context_manager_pins_inside_only_and_nests():
    with pin_to_primaries():
        assert is_pinned()
        with pin_to_primaries():
            assert is_pinned()
        assert is_pinned()
    assert not is_pinned()


def test_an_exception_unpins():
    with pytest.raises(ZeroDivisionError):
        with pin_to_primaries():
            1 / 0
    assert not is_pinned()


def test_the_decorator_pins_each_call():
    @pin_to_primaries()
    def read():
        return is_pinned()

    assert read.__name__ == "read"
    assert read() is True
    assert not is_pinned()


def test_the_decorator_pins_coroutines():
    @pin_to_primaries()
    async def read():
        await asyncio.sleep(0)
        return is_pinned()

    assert asyncio.run(read()) is True
    assert not is_pinned()


def test_a_pin_belongs_to_its_thread():
    seen = {}
    inside, checked = threading.Event(), threading.Event()

    def other():
        inside.wait()
        seen["other"] = is_pinned()
        checked.set()

    thread = threading.Thread(target=other)
    thread.start()
    with pin_to_primaries():
        inside.set()
        checked.wait()
        seen["self"] = is_pinned()
    thread.join()
    assert seen == {"self": True, "other": False}


def test_one_pin_shared_by_threads_pins_each_while_inside():
    pin = pin_to_primaries()
    barrier = threading.Barrier(4)
    seen = []

    def worker():
        with pin:
            barrier.wait()
            seen.append(is_pinned())
        seen.append(is_pinned())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [False] * 4 + [True] * 4


def test_a_pin_belongs_to_its_task_and_reaches_sync_to_async():
    async def task(pin, gate):
        if pin:
            with pin_to_primaries():
                await gate.wait()
                return is_pinned(), await sync_to_async(is_pinned)()
        await gate.wait()
        return is_pinned(), await sync_to_async(is_pinned)()

    async def main():
        gate = asyncio.Event()
        tasks = [asyncio.create_task(task(pin, gate)) for pin in (True, False)]
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [(True, True), (False, False)]


def test_the_shipped_router_honours_the_pin():
    with override_settings(DATABASE_REPLICAS=REPLICAS):
        assert AppLabelRouter().db_for_read(Post) == "blog_replica"
        with pin_to_primaries():
            assert AppLabelRouter().db_for_read(Post) == "blog_db"


@pytest.mark.parametrize(
    ("sql", "write"),
    [
        ('INSERT INTO "auth_user" ...', True),
        ("  update auth_user SET ...", True),
        ("DELETE FROM blog_post WHERE ...", True),
        ("REPLACE INTO t VALUES (1)", True),
        ('SELECT "auth_user"."id" FROM auth_user', False),
        ("SAVEPOINT s1", False),
        ("SELECT 1 FROM t WHERE name = 'INSERT'", False),
        ("", False),
    ],
)
def test_write_statements(sql, write):
    assert is_write(sql) is write


@pytest.mark.django_db(databases=PRIMARIES)
def test_reads_do_not_pin_a_write_scope():
    with pin_after_write() as scope:
        list(User.objects.using("default").all())
        Post.objects.using("blog_db").count()
        assert not is_pinned()
    assert scope.wrote is False


@pytest.mark.django_db(databases=PRIMARIES)
@pytest.mark.parametrize("write", ["create", "update", "delete", "raw"])
def test_any_write_through_django_pins_the_rest_of_the_scope(write):
    user = User.objects.using("default").create(username="ann")
    writes = {
        "create": lambda: Post.objects.using("blog_db").create(title="t", author_id=user.pk),
        "update": lambda: User.objects.using("default").filter(pk=user.pk).update(email="e"),
        "delete": lambda: User.objects.using("default").filter(pk=user.pk).delete(),
        "raw": lambda: (
            connections["default"]
            .cursor()
            .execute("UPDATE auth_user SET email = %s WHERE id = %s", ["x", user.pk])
        ),
    }
    with pin_after_write() as scope:
        assert not is_pinned()
        writes[write]()
        assert is_pinned()
        list(User.objects.using("default").all())
        assert is_pinned()
    assert scope.wrote is True
    assert not is_pinned()


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_write_in_sync_to_async_pins_its_caller():
    async def main():
        with pin_after_write() as scope:
            await sync_to_async(User.objects.using("default").create)(username="ann")
            await sync_to_async(connections.close_all)()  # the worker thread's own
            return is_pinned(), scope.wrote

    assert asyncio.run(main()) == (True, True)


@pytest.mark.django_db(databases=PRIMARIES)
def test_the_write_detector_keeps_other_execute_wrappers_working():
    seen = []

    def other(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    connection = connections["default"]
    before = list(connection.execute_wrappers)
    with connection.execute_wrapper(other):
        with pin_after_write() as scope:
            User.objects.using("default").create(username="ann")
    assert scope.wrote and seen and seen[-1].startswith("INSERT")
    assert other not in connection.execute_wrappers
    assert [w for w in connection.execute_wrappers if w not in before] in ([], [_note_writes])
    assert connection.execute_wrappers.count(_note_writes) == 1


# The middleware


def view_that(action):
    """Return a view that runs ``action`` and records the pin before and after."""
    seen = {}

    def view(request):
        seen["before"] = is_pinned()
        action()
        seen["after"] = is_pinned()
        return HttpResponse("ok")

    return view, seen


def create_user():
    User.objects.using("default").create(username="ann")


def read_users():
    list(User.objects.using("default").all())


@pytest.mark.django_db(databases=PRIMARIES)
def test_a_request_that_writes_pins_its_rest_and_sets_the_cookie():
    view, seen = view_that(create_user)
    response = PinningMiddleware(view)(RequestFactory().get("/"))
    assert seen == {"before": False, "after": True}
    cookie = response.cookies["crossdb_pinned"]
    assert cookie["max-age"] == 15 and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert not is_pinned()


@pytest.mark.django_db(databases=PRIMARIES)
def test_a_post_that_only_reads_does_not_pin():
    view, seen = view_that(read_users)
    response = PinningMiddleware(view)(RequestFactory().post("/", {"a": "b"}))
    assert seen == {"before": False, "after": False}
    assert "crossdb_pinned" not in response.cookies


@pytest.mark.django_db(databases=PRIMARIES)
def test_the_cookie_pins_the_clients_next_request_without_renewing_itself():
    view, seen = view_that(read_users)
    request = RequestFactory().get("/")
    request.COOKIES["crossdb_pinned"] = "1"
    response = PinningMiddleware(view)(request)
    assert seen == {"before": True, "after": True}
    assert "crossdb_pinned" not in response.cookies


@pytest.mark.django_db(databases=PRIMARIES)
@override_settings(CROSSDB_PINNING_SECONDS=40, CROSSDB_PINNING_COOKIE="rw")
def test_the_cookie_name_and_seconds_are_settings():
    view, _ = view_that(create_user)
    response = PinningMiddleware(view)(RequestFactory().get("/"))
    assert response.cookies["rw"]["max-age"] == 40


@pytest.mark.django_db(databases=PRIMARIES)
@override_settings(CROSSDB_PINNING_SECONDS=0)
def test_zero_seconds_pins_the_request_only():
    view, seen = view_that(create_user)
    response = PinningMiddleware(view)(RequestFactory().get("/"))
    assert seen["after"] is True
    assert not response.cookies


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_the_middleware_in_async_mode():
    seen = {}

    async def view(request):
        seen["before"] = is_pinned()
        await sync_to_async(create_user)()
        seen["after"] = is_pinned()
        await sync_to_async(connections.close_all)()  # the worker thread's own
        return HttpResponse("ok")

    middleware = PinningMiddleware(view)
    response = asyncio.run(middleware(RequestFactory().get("/")))
    assert seen == {"before": False, "after": True}
    assert "crossdb_pinned" in response.cookies


WITHOUT_DETECTION = """
import django
django.setup()
from django.db import connections
from crossdb import pinning, routers
with pinning.pin_to_primaries():
    connections["default"].cursor().execute("SELECT 1")
print(pinning._note_writes in connections["default"].execute_wrappers)
with pinning.pin_after_write():
    print(pinning._note_writes in connections["default"].execute_wrappers)
"""


def test_only_projects_that_detect_writes_get_the_detector():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env["CROSSDB_TEST_PROFILE"] = "sqlite"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_DETECTION],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.django_db(databases=PRIMARIES)
def test_first_in_middleware_a_login_pins_the_client(client, settings):
    settings.MIDDLEWARE = ["crossdb.pinning.PinningMiddleware", *settings.MIDDLEWARE]
    settings.DATABASE_REPLICAS = {}  # the replica profiles' mirrors cannot see this test's rows
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    page = client.get("/admin/login/")
    assert "crossdb_pinned" not in page.cookies
    response = client.post("/admin/login/", {"username": "admin", "password": "pw"})
    assert response.status_code == 302
    assert response.cookies["crossdb_pinned"]["max-age"] == 15
