"""Rewrite filter conditions that cross a crossdb relation: one query per alias.

``Post.objects.filter(author__username="ann")`` would be a JOIN inside
blog_db.  Before Django builds the WHERE clause, each condition whose path
crosses a crossdb field is split at that field: the far side becomes a
queryset on its own alias (``User.objects.filter(username="ann")``) whose key
values the local side compares with (``author_id`` in those ids, see
``crossdb.query_ids``).  The far queryset is itself a queryset, so a path that
crosses again further on is split again there.

Django's semantics are kept:

- conditions of one ``filter()`` call on the same multi-valued relation must
  hold for the same related row: they are evaluated together in one far
  query (conditions in separate ``filter()`` calls stay separate);
- under negation a condition crossing a multi-valued relation is its own
  subquery, as Django's ``split_exclude()`` makes it, unless an earlier
  non-negated condition of the same call joined that relation: then it speaks
  of that same row, as ``split_exclude()`` correlates it;
- a condition true for "no related row" (``isnull=True``) also matches rows
  whose key is NULL or that have no related row, as Django's LEFT JOIN does;
- ``NULL`` keys under ``exclude()`` are handled by Django itself, since the
  rewritten condition is an ordinary lookup on the local key.

What cannot be split without changing the answer raises
``CrossDatabaseQueryError``.
"""

from __future__ import annotations

import difflib
import functools

from django.core.exceptions import FieldError
from django.db.models import F, Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import OuterRef, ResolvedOuterRef
from django.db.models.sql.query import Query
from django.utils.tree import Node

from crossdb import query_rows, routing
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.fields import is_crossdb_field
from crossdb.m2m import is_crossdb_many_to_many
from crossdb.query_ids import CrossDatabaseIds
from crossdb.query_paths import (
    Crossing,
    _multi_valued,
    ends_on_field,
    field_of,
    final_field,
    find_crossing,
    splits_at_crossing,
)

__all__ = ["Crossing", "crossing_condition", "find_crossing", "rewrite_q"]

_XOR = getattr(Q, "XOR", "XOR")


def _describe(model, lookup: str) -> str:
    return f"{model._meta.label}.{lookup}"


def _references_outer(value) -> bool:
    """Return True when ``value`` names a column of the query it filters."""
    if isinstance(value, F | OuterRef | ResolvedOuterRef):
        return True
    if isinstance(value, QuerySet | Query):
        return False
    sources = getattr(value, "get_source_expressions", None)
    return bool(sources) and any(_references_outer(source) for source in sources())


# -- three-valued truth of a far condition on the all-NULL row of a LEFT JOIN --

_TRUE, _FALSE, _UNKNOWN = True, False, None


def _null_row_truth(node, exists=frozenset()) -> bool | None:
    """Return SQL's truth of ``node`` on a row of NULLs.

    Leaves whose id is in ``exists`` are Django EXISTS subqueries correlated
    with the row: never unknown on a row of NULLs.
    """
    if isinstance(node, tuple):
        lookup, value = node
        if id(node) in exists:
            # split_exclude() ORs "IS NULL" on the joined row when its subquery
            # holds a LEFT JOIN, which an isnull=True condition makes.
            return _TRUE if lookup.endswith("__isnull") and value or value is None else _FALSE
        last = lookup.rsplit(LOOKUP_SEP, 1)[-1]
        if last == "isnull":
            return _TRUE if value else _FALSE
        return _TRUE if value is None else _UNKNOWN
    if not isinstance(node, Q):
        return _UNKNOWN
    values = [_null_row_truth(child, exists) for child in node.children]
    if node.connector == Q.AND:
        result = (
            _FALSE if _FALSE in values else (_TRUE if all(v is _TRUE for v in values) else _UNKNOWN)
        )
    elif node.connector == Q.OR:
        result = (
            _TRUE if _TRUE in values else (_FALSE if all(v is _FALSE for v in values) else _UNKNOWN)
        )
    else:
        result = _UNKNOWN
    if node.negated and result is not _UNKNOWN:
        result = not result
    return result


# -- building the replacement condition --


def _far_leaf(crossing: Crossing, value):
    """Return the leaf, relative to the far model, of one crossing condition."""
    rest = crossing.rest
    if crossing.reverse:
        # user.blog_posts compared with posts, or with a lookup on the relation
        # itself (blog_posts__in, blog_posts__isnull): compares the far pk.
        first = rest.split(LOOKUP_SEP, 1)[0] if rest else ""
        if not rest or field_of(crossing.field.related_model._meta, first) is None:
            pk = crossing.field.related_model._meta.pk
            if rest and not (pk.get_lookup(first) or pk.get_transform(first)):
                return _rel_lookup(crossing.field, rest.split(LOOKUP_SEP), value)
            rest = LOOKUP_SEP.join(part for part in ("pk", rest) if part)
            _check_instances(crossing.field, value)
            value = _pk_of(value)
    return (rest, value)


def _rel_lookup(rel, names, value):
    """Return the far condition of a reverse lookup the relation itself provides.

    Django compares the far pk through the lookups and transforms of the
    relation, which are its ForeignKey's (``article__abs`` with ``Abs``
    registered on ``Article.author``): the far pk has none of those, so the
    expression is built here, and a name neither has raises Django's
    FieldError naming the relation.
    """
    expression = F("pk")
    lookup_class = None
    for position, name in enumerate(names):
        last = position == len(names) - 1
        source = rel if position == 0 else rel.related_model._meta.pk
        transform = source.get_transform(name)
        if last and (lookup_class := source.get_lookup(name)) is not None:
            break
        if transform is None:
            close = difflib.get_close_matches(name, source.get_lookups())
            suggestion = f", perhaps you meant {' or '.join(close)}?" if close else "."
            raise FieldError(
                f"Unsupported lookup '{LOOKUP_SEP.join(names[position:])}' for "
                f"{type(source).__name__} or join on the field not permitted{suggestion}"
            )
        expression = transform(expression)
    if lookup_class is None:
        lookup_class = rel.related_model._meta.pk.get_lookup("exact")
    return Q(lookup_class(expression, value))


def _check_instances(rel, value) -> None:
    """Raise Django's ValueError for an instance of a model the relation cannot hold."""
    from django.db.models.query_utils import check_rel_lookup_compatibility

    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    opts = rel.related_model._meta
    for item in items:
        if isinstance(item, Model) and not check_rel_lookup_compatibility(
            item._meta.model, opts, rel
        ):
            raise ValueError(f'Cannot query "{item}": Must be "{opts.object_name}" instance.')


def _pk_of(value):
    """Return ``value`` with model instances (alone or in a list) replaced by their pk."""
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, list | tuple | set | frozenset):
        return [item.pk if isinstance(item, Model) else item for item in value]
    return value


def _far_tree(node, crossing_of):
    """Return ``node`` with every leaf replaced by its far-model leaf."""
    if isinstance(node, tuple):
        return _far_leaf(crossing_of[id(node)], node[1])
    return Q.create(
        [_far_tree(child, crossing_of) for child in node.children],
        connector=node.connector,
        negated=node.negated,
    )


def crossing_condition(
    model,
    crossing: Crossing,
    far_q: Q,
    lookups: list[str],
    null_row_matches: bool,
    join: str | None = None,
    shared: dict | None = None,
) -> Q:
    """Return the local condition equivalent to ``far_q`` holding across ``crossing``.

    ``null_row_matches``: the condition is true on the row of NULLs Django's
    LEFT JOIN gives where there is no related row.  ``join``: how Django
    would join a multi-valued relation here, ``"rows"`` (ANDed: a local row
    per matching far row), ``"ored"`` (ORed with other conditions: per far
    row, matching or not), or None (negated: a subquery, no join).
    """
    field = crossing.field
    far_model = field.related_model
    alias = routing.db_for_read(far_model)
    if crossing.reverse:
        far_key = field.field.attname
        key_field = field.field.target_field
        local_key = [*crossing.prefix, key_field.name]
        key_path = [*crossing.prefix, key_field.attname]
    else:
        far_key = field.target_field.attname
        key_field = field.target_field
        local_key = [*crossing.prefix, field.name]
        key_path = [*crossing.prefix, field.name]
    description = " and ".join(_describe(model, lookup) for lookup in lookups)
    manager = far_model._base_manager.db_manager(alias)
    multiplied = (
        join is not None
        and crossing.multi_valued
        and not _multi_valued(model, list(crossing.prefix))
    )
    if multiplied:
        # Django's JOIN gives a local row per related row: joined, not an id set.
        if join == "rows":
            condition = Q(
                query_rows.joined_rows(
                    manager, far_q, far_key, key_field, description, key_path, crossing.key
                )
            )
            if null_row_matches and (
                no_row := _no_far_row(model, crossing, manager, far_key, local_key)
            ):
                condition |= no_row
            return condition
        # ORed: one join of every far row for all of the call's conditions on it.
        source = shared.get(crossing.key) if shared is not None else None
        if source is None:
            source = query_rows.FarRowsSource(
                manager, far_key, key_field, description, None, crossing.key
            )
            if shared is not None:
                shared[crossing.key] = source
        return Q(query_rows.joined_truth(source, far_q, description, key_path, null_row_matches))
    ids = CrossDatabaseIds(
        manager.filter(far_q).order_by().values_list(far_key, flat=True),
        description,
        routed=True,
    )
    condition = Q((LOOKUP_SEP.join([*local_key, "crossdb_ids"]), ids))
    if null_row_matches and (no_row := _no_far_row(model, crossing, manager, far_key, local_key)):
        condition |= no_row
    return condition


def _no_far_row(model, crossing, manager, far_key, local_key) -> Q | None:
    """Return the condition "no related row" (the row of NULLs of Django's LEFT JOIN)."""
    field = crossing.field
    if crossing.reverse:
        # Every key (a NULL key is dropped by the id-set lookup).
        every = CrossDatabaseIds(
            manager.order_by().values_list(far_key, flat=True),
            f"{_describe(model, LOOKUP_SEP.join([*crossing.prefix, field.name]))} (any)",
            routed=True,
        )
        return ~Q((LOOKUP_SEP.join([*local_key, "crossdb_ids"]), every))
    if field.null or crossing.prefix:
        return Q((LOOKUP_SEP.join([*local_key, "isnull"]), True))
    return None


def _has_outer_reference(queryset) -> bool:
    """Return whether ``queryset`` refers to the rows of an enclosing query."""

    def walk(node):
        for child in getattr(node, "children", None) or ():
            yield from walk(child)
        if hasattr(node, "flatten"):
            yield from node.flatten()

    return any(isinstance(node, OuterRef | ResolvedOuterRef) for node in walk(queryset.query.where))


def _queryset_value(model, lookup: str, value):
    """Return ``(lookup, value)`` with a queryset on another alias made into ids."""
    if not isinstance(value, QuerySet):
        return None
    parts = lookup.split(LOOKUP_SEP)
    if parts[-1] in ("in", "exact"):
        path = parts[:-1]
    elif ends_on_field(model, parts):
        path = parts  # implicit exact
    else:
        return None
    field = final_field(model, LOOKUP_SEP.join(path)) if path else None
    if field is None:
        return None
    # tags__in=queryset of a CrossDatabaseManyToManyField compares through keys too.
    crossdb = is_crossdb_field(field) or is_crossdb_many_to_many(field)
    if crossdb and field.is_relation and not (value._fields or value.query.values_select):
        # Django checks the queryset's model before the lookup sees it.
        _check_queryset_model(model, lookup, field, value)
    if crossdb and parts[-1] != "in" and not value.query.has_limit_one():
        # Django's Exact lookup: a queryset compared with = must hold one row.
        raise ValueError(
            "The QuerySet value for an exact lookup must be limited to one result using slicing."
        )
    if not crossdb and value._db is not None:
        # An explicit using(): Django's In lookup compares the aliases itself and
        # raises "Subqueries aren't allowed across different databases".
        return None
    outer_alias = routing.db_for_read(model)
    if value.db == outer_alias and not crossdb:
        return None
    if _has_outer_reference(value):
        if not crossdb:
            return None  # a correlated subquery: Django's, on the outer alias
        raise CrossDatabaseQueryError(
            f"{_describe(model, lookup)} compares with a queryset that refers to the outer "
            f"query (OuterRef); {field.related_model._meta.label} lives in another database, "
            "so crossdb cannot correlate them. Filter across the relation instead "
            "(see docs/querying.rst, 'What is rewritten and what raises')."
        )
    selected = value._fields or value.query.values_select
    if selected:
        if len(selected) != 1:
            return None  # Django reports it
        inner = value.values_list(selected[0], flat=True)
    else:
        if field.is_relation:
            # Django's RelatedIn: the inner model's pk, unless the relation
            # targets another column (to_field), then that column by name.
            _check_queryset_model(model, lookup, field, value)
            target = field.target_field
            key = value.model._meta.pk.attname if target.primary_key else target.attname
        else:
            key = value.model._meta.pk.attname
        inner = value.values_list(key, flat=True)
    if not inner.query.is_sliced:
        # A sliced queryset keeps its order: the slice picks the rows by it, and
        # it is read as it is (no "pk IN (<sliced subquery>)", which MariaDB
        # refuses: "LIMIT & IN/ALL/ANY/SOME subquery").
        inner = inner.order_by()
    return (
        LOOKUP_SEP.join([*path, "crossdb_ids"]),
        CrossDatabaseIds(
            inner,
            _describe(model, lookup),
            # Rows of the target itself on an alias the caller chose; values of
            # another model's column are only values, carried as they are.
            check=functools.partial(_check_queryset_alias, model, field, value._db)
            if value._db is not None
            and value.model._meta.concrete_model is field.related_model._meta.concrete_model
            else None,
        ),
    )


def _check_queryset_alias(model, field, alias, outer_alias) -> None:
    """Raise Django's ValueError for rows of the target read where the relation does not read it.

    ``editor__in=Person.objects.using("other")`` while ``book.editor`` reads
    persons on default would compare with the ids of other people (the rows
    with those ids on default): Django refuses it, and so does crossdb, unless
    the alias holds the same rows (a replica or a test mirror).  Run when the
    outer query compiles on ``outer_alias``, where Django raises it.
    """
    target = field.related_model._meta.concrete_model
    source = field.model._meta.concrete_model
    if source is not model._meta.concrete_model or not outer_alias:
        outer_alias = routing.db_for_read(source)
    reads = routing.home_alias(target, outer_alias, "db_for_read")
    if not routing.same_rows(alias, reads):
        raise ValueError(
            "Subqueries aren't allowed across different databases. Force the inner query "
            f"to be evaluated using `list(inner_query)`. ({field.model._meta.label}."
            f"{field.name} reads {target._meta.label} on {reads!r}; the queryset uses "
            f"{alias!r}.)"
        )


def _check_queryset_model(model, lookup, field, value) -> None:
    """Raise Django's ValueError for a queryset of a model the relation cannot hold."""
    from django.db.models.query_utils import check_rel_lookup_compatibility

    target_opts = field.related_model._meta
    if not check_rel_lookup_compatibility(value.model, target_opts, field):
        raise ValueError(
            f'Cannot use QuerySet for "{value.model._meta.object_name}": Use a QuerySet '
            f'for "{target_opts.object_name}".'
        )


# -- walking the Q tree --


class _Rewriter:
    def __init__(self, model):
        self.model = model
        self.crossing_of: dict[int, Crossing] = {}
        # Negated leaves Django evaluates on the row an earlier condition of
        # the same filter() call joined (see mark_correlated()).
        self.correlated: set[int] = set()
        # The ORed joins of far rows, one per relation (query_rows).
        self.shared: dict = {}
        self.changed = False

    def crossing(self, child) -> Crossing | None:
        if not isinstance(child, tuple) or len(child) != 2 or not isinstance(child[0], str):
            return None
        key = id(child)
        if key not in self.crossing_of:
            found = find_crossing(self.model, child[0])
            if found is not None and _references_outer(child[1]):
                raise CrossDatabaseQueryError(
                    f"{_describe(self.model, child[0])} compares a column of another "
                    f"database with {child[1]!r}, an expression on "
                    f"{self.model._meta.label}'s own rows; crossdb cannot evaluate it "
                    "across databases. Read the values first and filter with them."
                )
            self.crossing_of[key] = found
        return self.crossing_of[key]

    def mark_correlated(self, node, negated=False, joined=None) -> None:
        """Find the negated leaves Django correlates with a row joined before them.

        Django builds one filter() call's conditions in order.  A negated
        condition on a multi-valued relation becomes a subquery
        (``split_exclude()``), correlated with the outer row when an earlier,
        non-negated condition of the call already joined that relation: then
        it speaks of the same related row.
        """
        joined = set() if joined is None else joined
        negated = negated or node.negated
        for child in node.children:
            if isinstance(child, Q):
                self.mark_correlated(child, negated, joined)
                continue
            crossing = self.crossing(child)
            if crossing is None or not splits_at_crossing(self.model, crossing):
                continue
            if not negated:
                joined.add(crossing.key)
            elif crossing.key in joined:
                self.correlated.add(id(child))

    def _on_row(self, leaf, negated) -> bool:
        return not negated or id(leaf) in self.correlated

    def keys(self, node, negated=False) -> set:
        """Return the keys of the leaves under ``node`` that speak of a joined row."""
        if isinstance(node, tuple):
            found = self.crossing(node)
            return {found.key} if found and self._on_row(node, negated) else set()
        if not isinstance(node, Q):
            return set()
        negated = negated or node.negated
        keys = set()
        for child in node.children:
            keys |= self.keys(child, negated)
        return keys

    def pure(self, node, key, negated=False) -> bool:
        """Return True when every leaf under ``node`` speaks of the row ``key`` joins."""
        if isinstance(node, tuple):
            found = self.crossing(node)
            return found is not None and found.key == key and self._on_row(node, negated)
        negated = negated or (isinstance(node, Q) and node.negated)
        return (
            isinstance(node, Q)
            and bool(node.children)
            and all(self.pure(child, key, negated) for child in node.children)
        )

    def leaves(self, node) -> list:
        if isinstance(node, tuple):
            return [node]
        return [leaf for child in node.children for leaf in self.leaves(child)]

    def replace(self, children, connector, join=None) -> Q:
        """Return one local condition for crossing ``children`` joined by ``connector``.

        ``join``: how Django joins the relation there (see ``crossing_condition``).
        """
        self.changed = True
        leaves = [leaf for child in children for leaf in self.leaves(child)]
        crossing = self.crossing(leaves[0])
        node = Q.create(list(children), connector=connector)
        far_q = _far_tree(node, self.crossing_of)
        null_row = _null_row_truth(node, self.correlated) is _TRUE
        lookups = [leaf[0] for leaf in leaves]
        return crossing_condition(self.model, crossing, far_q, lookups, null_row, join, self.shared)

    def leaf(self, child, join=None):
        if isinstance(child, tuple) and self.crossing(child) is not None:
            if id(child) in self.correlated:
                raise self.unsplittable([child])
            return self.replace([child], Q.AND, join)
        if isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
            converted = _queryset_value(self.model, *child)
            if converted is not None:
                self.changed = True
                return converted
        return child

    def unsplittable(self, leaves) -> CrossDatabaseQueryError:
        lookups = ", ".join(repr(leaf[0]) for leaf in leaves)
        return CrossDatabaseQueryError(
            f"{self.model._meta.label}: the conditions {lookups} cross to another "
            "database through a multi-valued relation and, in one filter() call, must "
            "hold for the same related row; they are combined with other conditions in "
            "a way crossdb cannot split into one query per database. Group them in one "
            "Q() of their own, or use separate filter() calls (which Django lets match "
            "different related rows)."
        )

    def rewrite(self, node: Q, negated_branch: bool = False, ored: bool = False) -> Q:
        """Return ``node`` rewritten; ``ored``: an ancestor ORs it with other conditions."""
        negated_branch = negated_branch or node.negated
        if negated_branch:
            # Like split_exclude(): each crossing condition on its own.
            children = [
                self.rewrite(child, True) if isinstance(child, Q) else self.leaf(child)
                for child in node.children
            ]
            return Q.create(children, connector=node.connector, negated=node.negated)
        keys_of = [self.keys(child) for child in node.children]
        all_keys = set().union(*keys_of) if keys_of else set()
        merged: dict = {}
        for key in all_keys:
            holders = [i for i, keys in enumerate(keys_of) if key in keys]
            pure = [i for i in holders if self.pure(node.children[i], key)]
            mixed = [i for i in holders if i not in pure]
            multi = any(
                self.crossing(leaf).multi_valued
                for i in holders
                for leaf in self.leaves(node.children[i])
                if self.crossing(leaf) is not None and self.crossing(leaf).key == key
            )
            if multi and (
                node.connector == _XOR
                or (node.connector == Q.AND and (len(mixed) > 1 or (mixed and pure)))
            ):
                raise self.unsplittable(
                    leaf
                    for i in holders
                    for leaf in self.leaves(node.children[i])
                    if self.crossing(leaf) is not None and self.crossing(leaf).key == key
                )
            if pure and node.connector != _XOR:
                merged[key] = pure
        taken = {i for indexes in merged.values() for i in indexes}
        # Django joins a multi-valued relation per related row; ORed with
        # other conditions, it LEFT JOINs every related row (query_rows).
        remaining = len(node.children) - len(taken) + len(merged)
        ored = ored or (node.connector != Q.AND and remaining > 1)
        join = "ored" if ored else "rows"
        children = []
        for i, child in enumerate(node.children):
            if i in taken:
                key = next(k for k, indexes in merged.items() if i in indexes)
                if merged[key][0] == i:
                    children.append(
                        self.replace([node.children[j] for j in merged[key]], node.connector, join)
                    )
            elif isinstance(child, Q):
                children.append(self.rewrite(child, False, ored))
            else:
                children.append(self.leaf(child, join))
        return Q.create(children, connector=node.connector, negated=node.negated)


def rewrite_q(model, q_object):
    """Return ``q_object`` with every crossing condition rewritten (itself if none)."""
    if model is None or not isinstance(q_object, Node) or not q_object.children:
        return q_object
    rewriter = _Rewriter(model)
    rewriter.mark_correlated(q_object)
    rewritten = rewriter.rewrite(q_object)
    return rewritten if rewriter.changed else q_object
