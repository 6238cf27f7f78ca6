"""Collect across databases through the Collector's own overridable methods.

Django's ``Collector.collect()`` asks ``self.related_objects()`` for the
dependents of each relation, ``self.get_del_batches()`` how to batch, and
``self.add()`` / ``self.add_field_update()`` to record what it found; every
other query it sends names ``self.using``.  crossdb wraps those methods, each
calling Django's own:

- ``collect()`` runs Django's ``collect()`` with ``self.using`` set, for the
  duration of the call, to the alias of the rows being collected (a
  queryset's own alias; the root rows on the collector's alias; parents of a
  multi-table child with the child), so every plain relation is followed on
  that alias, exactly as Django does inside one database.  Parents that the
  routers would read from elsewhere (a replica) are read on the write alias.
- ``related_objects()``: a crossdb relation's dependents are looked up on
  their own alias (``dependents_alias``), ids sent as one parameter, after the
  rows they depend on are locked (``locks.lock_rows_for_delete``).
- ``get_del_batches()``: a crossdb relation is batched by ``ID_BATCH_SIZE``.
- ``add()`` / ``add_field_update()`` remember the alias of what they record,
  which ``crossdb.deletion.split`` uses to hand each alias its share.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db import models, router
from django.db.models import Q
from django.db.models.deletion import Collector

from crossdb import routing
from crossdb.deletion import commit, locks
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.fields import is_crossdb_field
from crossdb.lookups import ids_in

# Parent ids per query on the dependents' alias.  Each batch is one parameter
# (an array, a JSON text or a client-side list), so the limit is memory and
# statement size, not the backend's placeholder limit.
ID_BATCH_SIZE = 2000

# Django's own methods, also when this module is imported again after install().
DJANGO = {
    name: getattr(getattr(Collector, name), "crossdb_original", getattr(Collector, name))
    for name in (
        "collect",
        "delete",
        "related_objects",
        "get_del_batches",
        "add",
        "add_field_update",
        "_has_signal_listeners",
    )
}


class State:
    """crossdb's bookkeeping on one collector."""

    def __init__(self, using):
        # {model: alias} of every model with collected rows.
        self.aliases = {}
        # {id(objs): (alias, objs)} of every field update.
        self.update_aliases = {}
        # [(referenced alias, dependents' alias)] of every crossdb relation
        # followed: the order commits follow.
        self.edges = []
        # The alias of the rows each nested collect() call works on.
        self.stack = []
        # {(model, alias): pks} already locked.
        self.locked = {}
        self.root_alias = using
        # The transactions this delete opened (crossdb.deletion.commit).
        self.transactions = None


def state_of(collector) -> State:
    """Return crossdb's bookkeeping on ``collector`` (created on first use)."""
    state = collector.__dict__.get("_crossdb")
    if state is None:
        state = collector.__dict__["_crossdb"] = State(collector.using)
    return state


def alias_of(collector, model) -> str:
    """Return the alias ``collector`` deletes ``model``'s collected rows on."""
    return state_of(collector).aliases.get(model, state_of(collector).root_alias)


def deletes(collector) -> bool:
    """Return True unless ``collector`` only lists rows (the admin's confirmation page)."""
    try:
        from django.contrib.admin.utils import NestedObjects
    except ImportError:  # pragma: no cover - admin not importable
        return True
    return not isinstance(collector, NestedObjects)


def dependents_alias(model, related_model, alias: str) -> str | None:
    """Return where ``related_model``'s rows pointing at ``model``'s rows on ``alias`` are.

    ``None`` when the rows on ``alias`` are a copy (their model's rows live
    elsewhere): crossdb fields point at the rows on the target's own alias.
    """
    home = routing.home_alias(model, alias)
    if alias == home:
        return routing.home_alias(related_model, alias)
    # The caller named another alias with using(): follow the relation there
    # when the dependents' table lives there too.
    if routing.lives_on(related_model, alias):
        return alias
    return None


def _alias_of_objs(collector, objs, source, reverse_dependency) -> str:
    if isinstance(objs, models.QuerySet):
        return objs.db
    stack = state_of(collector).stack
    if not stack:
        # The root rows: deleted on the collector's alias, as in Django.
        return collector.using
    if source is not None and reverse_dependency:
        # The parents of a multi-table child live with the child.
        return stack[-1]
    # Rows an on_delete function loaded: where they were read, else with the
    # rows that led to them.
    first = next(iter(objs), None)
    return getattr(getattr(first, "_state", None), "db", None) or stack[-1]


def _prime_parents_on(alias, objs) -> None:
    """Load the multi-table parents of ``objs`` from ``alias`` where the routers read elsewhere."""
    objs = list(objs)
    if not objs:
        return
    model = type(objs[0])
    for ptr in model._meta.concrete_model._meta.parents.values():
        if not ptr:
            continue
        missing = [obj for obj in objs if not ptr.is_cached(obj)]
        if not missing:
            continue
        parent = ptr.remote_field.model
        deferred = missing[0].get_deferred_fields()
        if not any(f.attname in deferred for f in parent._meta.concrete_fields):
            # Django builds the parent from the child's own columns: no read.
            continue
        if router.db_for_read(parent, instance=missing[0]) == alias:
            continue
        found = parent._base_manager.using(alias).in_bulk(
            [getattr(obj, ptr.attname) for obj in missing]
        )
        for obj in missing:
            row = found.get(getattr(obj, ptr.attname))
            if row is not None:
                ptr.set_cached_value(obj, row)


def collect(
    self,
    objs,
    source=None,
    nullable=False,
    collect_related=True,
    source_attr=None,
    reverse_dependency=False,
    keep_parents=False,
    fail_on_restricted=True,
):
    """Collect ``objs`` and their dependents, each on its own alias."""
    state = state_of(self)
    alias = _alias_of_objs(self, objs, source, reverse_dependency)
    root = not state.stack
    if root:
        objs = _keyed_by_pk(objs)
    previous, self.using = self.using, alias
    state.stack.append(alias)
    try:
        return DJANGO["collect"](
            self,
            objs,
            source=source,
            nullable=nullable,
            collect_related=collect_related,
            source_attr=source_attr,
            reverse_dependency=reverse_dependency,
            keep_parents=keep_parents,
            fail_on_restricted=fail_on_restricted,
        )
    except BaseException:
        if root:
            # Nothing is deleted: the transactions the locks opened end here.
            commit.rollback_opened(state)
        raise
    finally:
        state.stack.pop()
        self.using = previous


def _keyed_by_pk(objs):
    """Return ``objs`` as ``pk__in=<objs>`` when a crossing made it a grouped one-table query.

    A lookup across is a condition on the local key, so a query that joined
    inside one database (``filter(orgunit__name__isnull=False)``) has one
    table: Django then deletes it with one ``DELETE ... WHERE`` that cannot
    hold an aggregate (``annotate(n=Count(...)).filter(n=1)``) and fails where
    its JOIN took the ``pk IN (subquery)`` form.  Give it that form.
    """
    if not isinstance(objs, models.QuerySet):
        return objs
    where = objs.query.where
    if not (where.contains_aggregate and _has_crossing(where)):
        return objs
    return objs.model._base_manager.db_manager(objs.db).filter(pk__in=objs.values("pk"))


def _has_crossing(node) -> bool:
    from crossdb.query_ids import CrossDatabaseIdsLookup

    if isinstance(node, CrossDatabaseIdsLookup):
        return True
    return any(_has_crossing(child) for child in getattr(node, "children", ()))


def add(self, objs, source=None, nullable=False, reverse_dependency=False):
    """Record ``objs`` for deletion on the current alias; refuse a model on two aliases."""
    new_objs = DJANGO["add"](self, objs, source, nullable, reverse_dependency=reverse_dependency)
    if new_objs:
        # Before Django's collect() reads their parents through the descriptor.
        _prime_parents_on(self.using, new_objs)
        state = state_of(self)
        model = type(new_objs[0])
        current = state.aliases.setdefault(model, self.using)
        if current != self.using:
            raise CrossDatabaseQueryError(
                f"Deleting would collect {model._meta.label} rows on two databases "
                f"({current!r} and {self.using!r}) in one operation; crossdb deletes each "
                f"model on one alias.  Delete the rows of each alias separately "
                f"(QuerySet.using(alias).delete())."
            )
    return new_objs


def add_field_update(self, field, value, objs):
    """Schedule a field update, remembering the alias of ``objs``."""
    alias = objs.db if isinstance(objs, models.QuerySet) else self.using
    state_of(self).update_aliases[id(objs)] = (alias, objs)
    return DJANGO["add_field_update"](self, field, value, objs)


def get_del_batches(self, objs, fields):
    """Batch a crossdb relation's parents by ``ID_BATCH_SIZE``; others as Django does."""
    if any(is_crossdb_field(field) for field in fields):
        return [objs[i : i + ID_BATCH_SIZE] for i in range(0, len(objs), ID_BATCH_SIZE)] or [objs]
    return DJANGO["get_del_batches"](self, objs, fields)


def crossdb_related_objects(related_model, related_fields, objs, alias):
    """Return the rows of ``related_model`` on ``alias`` pointing at ``objs``."""
    predicate = reduce(
        or_,
        (
            Q(ids_in(field.attname, {getattr(obj, field.target_field.attname) for obj in objs}))
            for field in related_fields
        ),
    )
    return related_model._base_manager.using(alias).filter(predicate)


def lock_before_following(collector, objs) -> None:
    """Lock ``objs`` (rows the collector deletes) on the current alias, once each."""
    if not objs or not deletes(collector):
        return
    alias = collector.using
    if not locks.takes_row_locks(alias):
        return
    state = state_of(collector)
    model = type(objs[0])
    done = state.locked.setdefault((model._meta.concrete_model, alias), set())
    pks = {obj.pk for obj in objs} - done
    if not pks:
        return
    commit.open_for_delete(collector, state, alias)
    locks.lock_rows_for_delete(model, pks, alias)
    done.update(pks)


def related_objects(self, related_model, related_fields, objs):
    """Return the dependents of ``objs``; across a crossdb relation, on their own alias."""
    crossdb = [field for field in related_fields if is_crossdb_field(field)]
    if not crossdb:
        return DJANGO["related_objects"](self, related_model, related_fields, objs)
    alias = self.using
    model = crossdb[0].remote_field.model
    sub_alias = dependents_alias(model, related_model, alias)
    if sub_alias is None:
        return related_model._base_manager.using(alias).none()
    lock_before_following(self, objs)
    state_of(self).edges.append((alias, sub_alias))
    if sub_alias == alias and len(crossdb) < len(related_fields):
        # Plain and crossdb fields of one model, both on this alias.
        return DJANGO["related_objects"](self, related_model, related_fields, objs)
    return crossdb_related_objects(related_model, related_fields, objs, sub_alias)


def _has_signal_listeners(self, model):
    """Return True where Django must load whole rows; also for collectors that display them."""
    # Django loads dependents with only() their keys unless the queryset has
    # select_related() or the model has delete signals.  A collector that
    # customises related_objects() (the admin's NestedObjects adds
    # select_related() to show each row with its parent) gets whole rows
    # across a crossdb relation too: crossdb's select_related() is not a JOIN,
    # so Django cannot see it, and a deferred key would be re-read per row
    # through the routers (from a replica, under lag: a row not there yet).
    if type(self).related_objects is not Collector.related_objects:
        return True
    return DJANGO["_has_signal_listeners"](self, model)


def installed_methods():
    """Return crossdb's methods by name, each carrying Django's as ``crossdb_original``."""
    methods = {
        "collect": collect,
        "related_objects": related_objects,
        "get_del_batches": get_del_batches,
        "add": add,
        "add_field_update": add_field_update,
        "_has_signal_listeners": _has_signal_listeners,
    }
    for name, method in methods.items():
        method.crossdb_original = DJANGO[name]
    return methods
