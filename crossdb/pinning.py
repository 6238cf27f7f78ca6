"""Read-your-writes on read replicas: send reads to the primaries for a while.

A replica lags: a row written to a primary is not on its replicas for a
moment.  Code that reads back what it has just written pins its reads:

- ``pin_to_primaries()``: a context manager and decorator (sync and async)
  inside which ``is_pinned()`` is True;
- ``pin_after_write()``: a scope that pins the rest of itself once any
  INSERT, UPDATE or DELETE has gone through one of Django's connections
  (detected by a connection ``execute_wrapper``, whatever the HTTP method);
- ``PinningMiddleware``: ``pin_after_write()`` around each request, plus a
  cookie that pins the same client's next requests for
  ``CROSSDB_PINNING_SECONDS`` (default 15) after a request that wrote;
- ``PinnedReadsRouter``: put first in ``DATABASE_ROUTERS`` to make routers
  written by hand honour the pin (``AppLabelRouter`` does by itself).

The state lives in context variables, so it belongs to one thread or one
asyncio task, and ``sync_to_async`` code sees the pin of its caller.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import connections, router
from django.db.backends.signals import connection_created

DEFAULT_PINNING_SECONDS = 15
DEFAULT_PINNING_COOKIE = "crossdb_pinned"

# The SQL keywords that change rows: what Django sends for save(), create(),
# update(), delete() and bulk operations on every backend.
WRITE_KEYWORDS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE"})


@dataclass
class WriteScope:
    """What a ``pin_after_write()`` scope has seen: pinned from the start, or a write."""

    pinned: bool = False
    wrote: bool = False


_pin_depth: ContextVar[int] = ContextVar("crossdb_pin_depth", default=0)
# A mutable holder: a write seen in a sync_to_async thread (a copied context)
# must pin its caller's scope too.
_scope: ContextVar[WriteScope | None] = ContextVar("crossdb_write_scope", default=None)


def is_pinned() -> bool:
    """Return True when reads must go to the primaries in this context."""
    if _pin_depth.get():
        return True
    scope = _scope.get()
    return scope is not None and (scope.pinned or scope.wrote)


class pin_to_primaries:
    """Send every read to the primaries inside: ``with pin_to_primaries():`` or a decorator."""

    # A depth, not a token: one instance may be entered by several threads
    # or tasks at once, each in its own context.
    def __enter__(self):
        _pin_depth.set(_pin_depth.get() + 1)
        return self

    def __exit__(self, *exc_info):
        _pin_depth.set(_pin_depth.get() - 1)

    def __call__(self, function):
        # A fresh pin per call: one decorated function may run in several
        # threads or tasks at once.
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def pinned_coroutine(*args, **kwargs):
                with pin_to_primaries():
                    return await function(*args, **kwargs)

            return pinned_coroutine

        @functools.wraps(function)
        def pinned(*args, **kwargs):
            with pin_to_primaries():
                return function(*args, **kwargs)

        return pinned


def is_write(sql) -> bool:
    """Return True when ``sql`` changes rows (INSERT, UPDATE, DELETE, ...)."""
    words = str(sql).lstrip(" \t\r\n(").split(None, 1)
    return bool(words) and words[0].upper() in WRITE_KEYWORDS


def _note_writes(execute, sql, params, many, context):
    """Mark the current scope as written to once a write statement succeeds."""
    result = execute(sql, params, many, context)
    scope = _scope.get()
    if scope is not None and not scope.wrote and is_write(sql):
        scope.wrote = True
    return result


def watch_writes(connection, **kwargs):
    """Put the write detector on ``connection`` (once; a ``connection_created`` receiver)."""
    if _note_writes not in connection.execute_wrappers:
        # First in the list, so that execute_wrapper() blocks of others,
        # which pop the last wrapper, still pop their own.
        connection.execute_wrappers.insert(0, _note_writes)


def start_watching_writes() -> None:
    """Give every connection the write detector from now on (idempotent).

    Connections are per thread: each one gets the detector when it connects,
    including those of sync_to_async's threads; this thread's open ones get it
    now.  Projects that never detect writes pay nothing; the others pay one
    context variable lookup per statement outside a scope.
    """
    connection_created.connect(watch_writes, dispatch_uid="crossdb.pinning.watch_writes")
    for connection in connections.all(initialized_only=True):
        watch_writes(connection)


@contextmanager
def pin_after_write(pinned: bool = False) -> Iterator[WriteScope]:
    """Pin the rest of the block once it writes through any connection (or from the start)."""
    start_watching_writes()
    scope = WriteScope(pinned=pinned)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def pinning_seconds() -> int:
    """Return ``CROSSDB_PINNING_SECONDS``: how long a client stays pinned after a write."""
    return int(getattr(settings, "CROSSDB_PINNING_SECONDS", DEFAULT_PINNING_SECONDS))


def pinning_cookie() -> str:
    """Return ``CROSSDB_PINNING_COOKIE``: the name of the cookie that pins a client."""
    return getattr(settings, "CROSSDB_PINNING_COOKIE", DEFAULT_PINNING_COOKIE)


class PinningMiddleware:
    """Pin a request's reads after its first write, and its client's for a few seconds more."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        # At start-up, before any request thread connects.
        start_watching_writes()
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        with pin_after_write(pinned=self.client_is_pinned(request)) as scope:
            response = self.get_response(request)
        return self.remember(request, response, scope)

    async def __acall__(self, request):
        with pin_after_write(pinned=self.client_is_pinned(request)) as scope:
            response = await self.get_response(request)
        return self.remember(request, response, scope)

    def client_is_pinned(self, request) -> bool:
        """Return True when the client wrote within the last pinning seconds."""
        return pinning_cookie() in request.COOKIES

    def remember(self, request, response, scope: WriteScope):
        """Set the pinning cookie on the response of a request that wrote."""
        seconds = pinning_seconds()
        if scope.wrote and seconds > 0:
            response.set_cookie(
                pinning_cookie(),
                "1",
                max_age=seconds,
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        return response


class PinnedReadsRouter:
    """While pinned, answer ``db_for_read`` with the routers' ``db_for_write``.

    Put it first in ``DATABASE_ROUTERS`` in front of routers written by hand
    (a primary/replica router knows nothing of the pin); unpinned, it abstains.
    """

    def db_for_read(self, model, **hints):
        if is_pinned():
            return router.db_for_write(model, **hints)
        return None
