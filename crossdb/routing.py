"""Choose the alias for each end of a cross-database relation.

Django's ``ConnectionRouter`` asks every router and, when none answers, falls
back to the alias of the ``instance`` hint.  Inside one database that is the
right guess; across a crossdb relation it is the wrong one: ``post.author``
would read ``auth_user`` from the post's database.  crossdb keeps Django's
behaviour for every other pair of models and, for the two ends of a crossdb
field only, replaces that fallback with ``home_alias()``: the instance's alias
when the target's table lives there according to the routers' ``allow_migrate``
(with no router at all, Django creates every table on every alias), else
``default``.  See docs/routing.rst.

The replacement is one of crossdb's seams into Django (see ``crossdb.seams``):
``install()`` wraps ``ConnectionRouter.db_for_read``, ``db_for_write`` and
``allow_relation`` once, from ``CrossdbConfig.ready()``.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.utils import ConnectionRouter

# Both orders of (source, target) for every crossdb field, by concrete model
# label: the historical models that migrations render share the labels.
_cross_pairs: set[tuple[str, str]] = set()


def _label(model) -> str:
    return model._meta.concrete_model._meta.label_lower


def register_pair(source, target) -> None:
    """Record that a crossdb field links ``source`` and ``target``."""
    source, target = _label(source), _label(target)
    if source != target:
        _cross_pairs.add((source, target))
        _cross_pairs.add((target, source))


def is_cross_pair(model, other) -> bool:
    """Return True when a crossdb field links the two models."""
    if not _cross_pairs or not hasattr(other, "_meta"):
        return False
    return (_label(model), _label(other)) in _cross_pairs


def _first_answer(routers, action: str, *args, **hints):
    """Return the first answer (not None, not empty) of ``routers`` to ``action``."""
    for candidate in routers:
        method = getattr(candidate, action, None)
        if method is not None:
            answer = method(*args, **hints)
            if answer is not None and answer != "":
                return answer
    return None


def ask_routers(action: str, model, **hints) -> str | None:
    """Return the first router's answer for ``action``, or None if all abstain."""
    return _first_answer(router.routers, action, model, **hints)


def _route(action: str, model, hints) -> str:
    answer = ask_routers(action, model, **hints)
    if answer:
        return answer
    instance = hints.get("instance")
    alias = getattr(getattr(instance, "_state", None), "db", None)
    return home_alias(model, alias, action, **hints) if alias else DEFAULT_DB_ALIAS


def db_for_read(model, **hints) -> str:
    """Return the alias to read ``model`` from: the routers' answer, else ``home_alias()``."""
    return _route("db_for_read", model, hints)


def db_for_write(model, **hints) -> str:
    """Return the alias to write ``model`` to: the routers' answer, else ``home_alias()``."""
    return _route("db_for_write", model, hints)


def lives_on(model, alias: str) -> bool:
    """Return True when the routers' ``allow_migrate`` puts ``model``'s table on ``alias``."""
    if alias not in connections.settings:
        return False
    routers = router.routers
    if not routers:
        # Without routers Django migrates every model on every alias.
        return True
    opts = model._meta
    answer = _first_answer(
        routers, "allow_migrate", alias, opts.app_label, model_name=opts.model_name, model=model
    )
    # A chain that abstains does not say the table is there: an abstaining
    # router usually means "the default database".
    return answer is True


def home_alias(model, alias: str | None, action: str = "db_for_write", **hints) -> str:
    """Return the alias of ``model``'s rows related to a row on ``alias``.

    The routers' answer; when they abstain, ``alias`` itself if ``model``'s
    table lives there (``lives_on()``); otherwise ``default``.
    """
    answer = ask_routers(action, model, **hints)
    if answer:
        return answer
    if alias and alias != DEFAULT_DB_ALIAS and lives_on(model, alias):
        return alias
    return DEFAULT_DB_ALIAS


def relation_answer(obj1, obj2, **hints) -> bool | None:
    """Return the first router's ``allow_relation`` answer, or None."""
    return _first_answer(router.routers, "allow_relation", obj1, obj2, **hints)


def _crossdb_route(action: str, original):
    def route(self, model, **hints):
        instance = hints.get("instance")
        if instance is not None and is_cross_pair(model, type(instance)):
            # The instance is the *other* end of a crossdb relation: its alias
            # says nothing about where ``model`` lives.
            answer = _first_answer(self.routers, action, model, **hints)
            return answer or home_alias(model, instance._state.db, action, **hints)
        return original(self, model, **hints)

    route.crossdb_original = original
    return route


def same_rows(alias: str, other: str) -> bool:
    """Return True when the two aliases hold the same rows (one, a replica or a mirror)."""
    from crossdb.routers import primary_of

    def primary(name):
        mirror = connections.settings.get(name, {}).get("TEST", {}).get("MIRROR")
        return primary_of(mirror or name)

    return alias == other or primary(alias) == primary(other)


def reads_agree(obj1, obj2) -> bool:
    """Return True when each end is on the alias the other end's relation reads it from.

    What the routers' fallback (``home_alias()``) would read for ``obj1``'s
    side of the relation from ``obj2``, and the other way round: a relation
    whose ends disagree would have ``pet.owner`` read a *different row* with
    the same id (the alias the target's table lives on, not the instance's).
    An unsaved end agrees with anything.
    """
    db1, db2 = obj1._state.db, obj2._state.db
    if db1 is None or db2 is None:
        return True
    return same_rows(db1, home_alias(type(obj1), db2, "db_for_read", instance=obj2)) and (
        same_rows(db2, home_alias(type(obj2), db1, "db_for_read", instance=obj1))
    )


def _crossdb_allow_relation(original):
    def allow_relation(self, obj1, obj2, **hints):
        if is_cross_pair(type(obj1), type(obj2)):
            allow = _first_answer(self.routers, "allow_relation", obj1, obj2, **hints)
            if allow is not None:
                return allow
            # Declaring a crossdb field is the project's statement that the two
            # ends may live on different aliases, so Django's "same alias"
            # default would refuse every such relation; crossdb allows one
            # whose ends are where each side reads the other (docs/routing.rst).
            return reads_agree(obj1, obj2)
        return original(self, obj1, obj2, **hints)

    allow_relation.crossdb_original = original
    return allow_relation


def install() -> None:
    """Install the crossdb fallback on ``ConnectionRouter`` (idempotent)."""
    for name, wrap in (
        ("db_for_read", lambda original: _crossdb_route("db_for_read", original)),
        ("db_for_write", lambda original: _crossdb_route("db_for_write", original)),
        ("allow_relation", _crossdb_allow_relation),
    ):
        current = getattr(ConnectionRouter, name)
        if not hasattr(current, "crossdb_original"):
            setattr(ConnectionRouter, name, wrap(current))


def installed() -> bool:
    """Return True when ``install()`` has wrapped ``ConnectionRouter``."""
    return all(
        hasattr(getattr(ConnectionRouter, name), "crossdb_original")
        for name in ("db_for_read", "db_for_write", "allow_relation")
    )
