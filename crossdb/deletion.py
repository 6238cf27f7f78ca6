"""Deletes that cascade across databases, through Django's own ``Collector``.

Django's ``Collector(using=alias)`` looks for dependents, updates and deletes
them on one alias.  Every entry point (``instance.delete()``,
``QuerySet.delete()``, ``adelete()``, the admin's delete views and their
confirmation page) goes through it, so crossdb extends the Collector itself:

- ``collect()``: a relation through a crossdb field is looked up on the
  dependents' own alias (``routing.db_for_write(related_model)``), in batches
  of ``ID_BATCH_SIZE`` ids sent as one parameter (``lookups.ids_in``), and the
  alias of every collected model is remembered.  Everything else is Django's
  code path, unchanged: with no crossdb relation on the way, Django's own
  ``collect()`` runs.
- ``delete()``: when more than one alias is involved, the writes are grouped
  per alias inside one atomic block per alias, all opened before the first
  write and committed in the order ``commit_order()`` gives (referenced rows'
  aliases first; see docs/deletion.rst for the failure window), or with
  PostgreSQL two-phase commit when ``CROSSDB_DELETE_TWO_PHASE_COMMIT`` is set
  (``crossdb.deletion_2pc``).  Otherwise Django's own ``delete()`` runs.

Nothing is written before everything is collected, so a ``ProtectedError`` or
``RestrictedError`` raised anywhere leaves every alias untouched.

``install()`` is the ``deletion`` seam of ``crossdb.seams``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from contextlib import ExitStack
from functools import reduce
from itertools import chain
from operator import attrgetter, or_

from django.db import connections, models, transaction
from django.db.models import Q, signals, sql
from django.db.models.deletion import (
    DO_NOTHING,
    Collector,
    ProtectedError,
    RestrictedError,
    get_candidate_relations_to_delete,
)

from crossdb import deletion_2pc, routing
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.fields import is_crossdb_field
from crossdb.lookups import ids_in

# Parent ids per query on the dependents' alias.  Each batch is one parameter
# (an array, a JSON text or a client-side list), so the limit is memory and
# statement size, not the backend's placeholder limit.
ID_BATCH_SIZE = 2000

# Django's own methods, also when this module is imported again after install().
_original_collect = getattr(Collector.collect, "crossdb_original", Collector.collect)
_original_delete = getattr(Collector.delete, "crossdb_original", Collector.delete)


# -- bookkeeping kept on the collector ------------------------------------


def _crossdb(collector) -> dict:
    """Return crossdb's bookkeeping on ``collector`` (created on first use)."""
    state = collector.__dict__.get("_crossdb")
    if state is None:
        state = collector.__dict__["_crossdb"] = {
            # {model: alias} for models collected on an alias other than .using
            "aliases": {},
            # [(referenced alias, dependents' alias)] for every crossdb relation
            # that found dependents: the order commits follow.
            "edges": [],
            # The alias of the objects the current collect() call works on.
            "stack": [],
        }
    return state


def alias_of(collector, model) -> str:
    """Return the alias ``collector`` deletes ``model``'s collected rows on."""
    return _crossdb(collector)["aliases"].get(model, collector.using)


def _alias_of_objs(collector, objs) -> str:
    if isinstance(objs, models.QuerySet):
        return objs.db
    stack = _crossdb(collector)["stack"]
    if not stack:
        # The root objects: deleted on the collector's alias, as in Django.
        return collector.using
    # Rows a cascade reached (the parents of a multi-table child, rows an
    # on_delete function loaded): where they were read, else with the rows
    # that led to them.
    return objs[0]._state.db or stack[-1]


def _model_of(objs):
    if isinstance(objs, models.QuerySet):
        return objs.model
    return type(objs[0]) if objs else None


def _remember_alias(collector, model, alias) -> None:
    """Record that ``model``'s rows are collected on ``alias``; refuse two aliases."""
    state = _crossdb(collector)
    current = state["aliases"].get(model, collector.using)
    if current != alias and collector.data.get(model):
        raise CrossDatabaseQueryError(
            f"Deleting would collect {model._meta.label} rows on two databases "
            f"({current!r} and {alias!r}) in one operation; crossdb deletes each "
            f"model on one alias.  Delete the rows of each alias separately "
            f"(QuerySet.using(alias).delete())."
        )
    if alias != collector.using:
        state["aliases"][model] = alias


def _has_crossdb_relation(model) -> bool:
    return any(is_crossdb_field(rel) for rel in get_candidate_relations_to_delete(model._meta))


# -- collect ---------------------------------------------------------------


def _batches(objs, fields, alias, crossdb):
    if crossdb:
        size = ID_BATCH_SIZE
    else:
        size = max(connections[alias].ops.bulk_batch_size(fields, objs), 1)
    return [objs[i : i + size] for i in range(0, len(objs), size)] or [objs]


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


def _shows_related_rows(collector) -> bool:
    # A collector that customises related_objects() (the admin's NestedObjects
    # adds select_related() to display each row with its parent) gets whole
    # rows with the parent cached, the way Django's select_related path does.
    return type(collector).related_objects is not Collector.related_objects


def _prime_parents(field, sub_objs, batch) -> None:
    parents = {getattr(parent, field.target_field.attname): parent for parent in batch}
    for obj in sub_objs:
        parent = parents.get(getattr(obj, field.attname))
        if parent is not None:
            field.set_cached_value(obj, parent)


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
    model = _model_of(objs)
    if model is None:
        return None
    alias = _alias_of_objs(self, objs)
    _remember_alias(self, model, alias)
    if alias == self.using and not _has_crossdb_relation(model):
        return _original_collect(
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
    stack = _crossdb(self)["stack"]
    stack.append(alias)
    try:
        return _collect(
            self,
            objs,
            alias,
            source,
            nullable,
            collect_related,
            reverse_dependency,
            keep_parents,
            fail_on_restricted,
        )
    finally:
        stack.pop()


def _collect(
    self,
    objs,
    alias,
    source,
    nullable,
    collect_related,
    reverse_dependency,
    keep_parents,
    fail_on_restricted,
):
    # Django 5.2's Collector.collect(), line for line, except that every query
    # names its alias: the dependents' own for a crossdb relation, ``alias``
    # (the objects' own) for any other.  test_deletion_seam pins the original.
    if self.can_fast_delete(objs):
        self.fast_deletes.append(objs)
        return
    new_objs = self.add(objs, source, nullable, reverse_dependency=reverse_dependency)
    if not new_objs:
        return

    model = new_objs[0].__class__

    if not keep_parents:
        concrete_model = model._meta.concrete_model
        for ptr in concrete_model._meta.parents.values():
            if ptr:
                parent_objs = [getattr(obj, ptr.name) for obj in new_objs]
                self.collect(
                    parent_objs,
                    source=model,
                    source_attr=ptr.remote_field.related_name,
                    collect_related=False,
                    reverse_dependency=True,
                    fail_on_restricted=False,
                )
    if not collect_related:
        return

    edges = _crossdb(self)["edges"]
    # crossdb fields point at the rows on the target's own alias: rows deleted
    # elsewhere (a copy, deleted with QuerySet.using()) have no crossdb
    # dependents, whatever ids they share with the real ones.
    follows_crossdb = alias == routing.db_for_write(model)
    model_fast_deletes = defaultdict(list)
    protected_objects = defaultdict(list)
    for related in get_candidate_relations_to_delete(model._meta):
        if keep_parents and related.model in model._meta.all_parents:
            continue
        field = related.field
        on_delete = field.remote_field.on_delete
        if on_delete == DO_NOTHING:
            continue
        related_model = related.related_model
        crossdb = is_crossdb_field(field)
        if crossdb and not follows_crossdb:
            continue
        sub_alias = routing.db_for_write(related_model) if crossdb else alias
        if self.can_fast_delete(related_model, from_field=field):
            model_fast_deletes[related_model, sub_alias].append(field)
            continue
        for batch in _batches(new_objs, [field], sub_alias, crossdb):
            if crossdb:
                sub_objs = crossdb_related_objects(related_model, [field], batch, sub_alias)
            else:
                sub_objs = self.related_objects(related_model, [field], batch).using(sub_alias)
            full_rows = crossdb and _shows_related_rows(self)
            if not (
                full_rows
                or sub_objs.query.select_related
                or self._has_signal_listeners(related_model)
            ):
                referenced_fields = set(
                    chain.from_iterable(
                        (rf.attname for rf in rel.field.foreign_related_fields)
                        for rel in get_candidate_relations_to_delete(related_model._meta)
                    )
                )
                sub_objs = sub_objs.only(*tuple(referenced_fields))
            if getattr(on_delete, "lazy_sub_objs", False) or sub_objs:
                if full_rows and sub_objs._result_cache is not None:
                    _prime_parents(field, sub_objs, batch)
                if crossdb:
                    edges.append((alias, sub_alias))
                try:
                    on_delete(self, field, sub_objs, sub_alias)
                except ProtectedError as error:
                    key = f"'{field.model.__name__}.{field.name}'"
                    protected_objects[key] += error.protected_objects
    if protected_objects:
        raise ProtectedError(
            f"Cannot delete some instances of model {model.__name__!r} because they are "
            f"referenced through protected foreign keys: {', '.join(protected_objects)}.",
            set(chain.from_iterable(protected_objects.values())),
        )
    for (related_model, sub_alias), related_fields in model_fast_deletes.items():
        crossdb = any(is_crossdb_field(field) for field in related_fields)
        if crossdb:
            edges.append((alias, sub_alias))
        for batch in _batches(new_objs, related_fields, sub_alias, crossdb):
            if crossdb:
                sub_objs = crossdb_related_objects(related_model, related_fields, batch, sub_alias)
            else:
                sub_objs = self.related_objects(related_model, related_fields, batch).using(
                    sub_alias
                )
            self.fast_deletes.append(sub_objs)
    for field in model._meta.private_fields:
        if hasattr(field, "bulk_related_objects"):
            # It's something like generic foreign key.
            sub_objs = field.bulk_related_objects(new_objs, alias)
            self.collect(sub_objs, source=model, nullable=True, fail_on_restricted=False)

    if fail_on_restricted:
        _raise_restricted(self, model)


def _raise_restricted(self, model) -> None:
    # Django's check, verbatim: restricted rows are allowed when the same
    # operation also deletes them through a cascade (on their own alias).
    for related_model, instances in self.data.items():
        self.clear_restricted_objects_from_set(related_model, instances)
    for qs in self.fast_deletes:
        self.clear_restricted_objects_from_queryset(qs.model, qs)
    if self.restricted_objects.values():
        restricted_objects = defaultdict(list)
        for related_model, fields in self.restricted_objects.items():
            for field, objs in fields.items():
                if objs:
                    key = f"'{related_model.__name__}.{field.name}'"
                    restricted_objects[key] += objs
        if restricted_objects:
            raise RestrictedError(
                f"Cannot delete some instances of model {model.__name__!r} because "
                f"they are referenced through restricted foreign keys: "
                f"{', '.join(restricted_objects)}.",
                set(chain.from_iterable(restricted_objects.values())),
            )


# -- delete ----------------------------------------------------------------


def _alias_of_update(collector, instances) -> str:
    if isinstance(instances, models.QuerySet):
        return instances.db
    instances = list(instances)
    return alias_of(collector, type(instances[0])) if instances else collector.using


def involved_aliases(collector) -> set[str]:
    """Return every alias ``collector.delete()`` would write to."""
    aliases = {alias_of(collector, model) for model, objs in collector.data.items() if objs}
    aliases.update(qs.db for qs in collector.fast_deletes)
    for instances_list in collector.field_updates.values():
        aliases.update(_alias_of_update(collector, instances) for instances in instances_list)
    return aliases


def commit_order(collector, aliases) -> list[str]:
    """Return ``aliases`` in commit order: an alias before those of its dependents.

    A failure between two commits then leaves dependents pointing at deleted
    rows (dangling references, which an audit finds), never dependents
    deleted while the rows they pointed at stay.  Aliases on a cycle keep the
    order in which the cascade first reached them.
    """
    first_seen = [collector.using]
    for parent, child in _crossdb(collector)["edges"]:
        first_seen += [parent, child]
    rank = {}
    for alias in first_seen + sorted(aliases):
        rank.setdefault(alias, len(rank))
    edges = {
        (parent, child)
        for parent, child in _crossdb(collector)["edges"]
        if parent != child and parent in aliases and child in aliases
    }
    order, pending = [], set(aliases)
    while pending:
        ready = [a for a in pending if not any(p in pending and c == a for p, c in edges)]
        # A cycle leaves nothing ready: take the alias the cascade reached first.
        chosen = min(ready or pending, key=rank.__getitem__)
        order.append(chosen)
        pending.discard(chosen)
    return order


def _transactions(order):
    """Open ``atomic`` on every alias of ``order``; leaving commits in that order."""
    if deletion_2pc.applies(order):
        return deletion_2pc.two_phase(order)
    stack = ExitStack()
    # ExitStack leaves the last block entered first, so the first alias to
    # commit is entered last.  If a commit fails, the blocks not yet left see
    # the exception and roll back.
    for alias in reversed(order):
        stack.enter_context(transaction.atomic(using=alias, savepoint=False))
    return stack


def delete(self):
    """Delete what was collected, each row on its own alias."""
    aliases = involved_aliases(self)
    if aliases <= {self.using}:
        return _original_delete(self)

    # Django 5.2's Collector.delete(), step for step, with each write and
    # signal on the alias of the rows concerned.
    for model, instances in self.data.items():
        self.data[model] = sorted(instances, key=attrgetter("pk"))
    self.sort()
    deleted_counter = Counter()

    with _transactions(commit_order(self, aliases)):
        for model, obj in self.instances_with_model():
            if not model._meta.auto_created:
                signals.pre_delete.send(
                    sender=model,
                    instance=obj,
                    using=alias_of(self, model),
                    origin=self.origin,
                )

        for qs in self.fast_deletes:
            count = qs._raw_delete(using=qs.db)
            if count:
                deleted_counter[qs.model._meta.label] += count

        for (field, value), instances_list in self.field_updates.items():
            updates = defaultdict(list)
            objs = defaultdict(list)
            for instances in instances_list:
                alias = _alias_of_update(self, instances)
                if isinstance(instances, models.QuerySet) and instances._result_cache is None:
                    updates[alias].append(instances)
                else:
                    objs[alias].extend(instances)
            for querysets in updates.values():
                reduce(or_, querysets).update(**{field.name: value})
            for alias, alias_objs in objs.items():
                if alias_objs:
                    query = sql.UpdateQuery(alias_objs[0].__class__)
                    query.update_batch(
                        list({obj.pk for obj in alias_objs}), {field.name: value}, alias
                    )

        for instances in self.data.values():
            instances.reverse()

        for model, instances in self.data.items():
            alias = alias_of(self, model)
            query = sql.DeleteQuery(model)
            pk_list = [obj.pk for obj in instances]
            count = query.delete_batch(pk_list, alias)
            if count:
                deleted_counter[model._meta.label] += count

            if not model._meta.auto_created:
                for obj in instances:
                    signals.post_delete.send(
                        sender=model,
                        instance=obj,
                        using=alias,
                        origin=self.origin,
                    )

    for model, instances in self.data.items():
        for instance in instances:
            setattr(instance, model._meta.pk.attname, None)
    return sum(deleted_counter.values()), dict(deleted_counter)


# -- the seam --------------------------------------------------------------


def install() -> None:
    """Install crossdb's ``collect()`` and ``delete()`` on Django's Collector (idempotent)."""
    collect.crossdb_original = _original_collect
    delete.crossdb_original = _original_delete
    if Collector.collect is not collect:
        Collector.collect = collect
    if Collector.delete is not delete:
        Collector.delete = delete


def installed() -> bool:
    """Return True when ``install()`` has extended Django's Collector."""
    return Collector.collect is collect and Collector.delete is delete
