"""Hand each alias its share of a collection, deleted by Django's own ``delete()``.

A collection across databases is split into one ``Collector(using=alias)``
per alias whose ``data``, ``fast_deletes``, ``field_updates`` and
``dependencies`` are that alias's rows; Django's ``Collector.delete()`` then
deletes each share (signals, fast deletes, updates, deletes, the counts it
returns), inside the transactions of ``crossdb.deletion.commit``.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db import models
from django.db.models.deletion import Collector

from crossdb.deletion.collector import DJANGO, alias_of, state_of


def _share(shares, collector, alias):
    share = shares.get(alias)
    if share is None:
        share = shares[alias] = Collector(using=alias, origin=collector.origin)
        share.data = {}
    return share


def split(collector) -> dict[str, Collector]:
    """Return ``{alias: Collector}``: what ``collector`` deletes and updates on each alias."""
    shares = {}
    for model, instances in collector.data.items():
        if instances:
            _share(shares, collector, alias_of(collector, model)).data[model] = instances
    for qs in collector.fast_deletes:
        _share(shares, collector, qs.db).fast_deletes.append(qs)
    update_aliases = state_of(collector).update_aliases
    for key, instances_list in collector.field_updates.items():
        for instances in instances_list:
            if isinstance(instances, models.QuerySet):
                alias = instances.db
            else:
                alias = update_aliases.get(id(instances), (collector.using,))[0]
            _share(shares, collector, alias).field_updates[key].append(instances)
    for share in shares.values():
        concrete = {model._meta.concrete_model for model in share.data}
        share.dependencies = defaultdict(set)
        for model, dependencies in collector.dependencies.items():
            if model in concrete:
                share.dependencies[model] = dependencies & concrete
    return shares


def delete_shares(shares, order) -> tuple[int, dict[str, int]]:
    """Delete each alias's share with Django's ``delete()``, dependents' aliases first."""
    counter = Counter()
    for alias in reversed(order):
        if alias in shares:
            _count, per_model = DJANGO["delete"](shares[alias])
            counter.update(per_model)
    return sum(counter.values()), dict(counter)
