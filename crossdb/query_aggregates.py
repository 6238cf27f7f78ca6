"""``Count``/``Sum``/``Avg``/``Min``/``Max`` across a reverse crossdb relation.

``User.objects.annotate(n=Count("blog_posts", filter=Q(blog_posts__published=True)))``
would JOIN ``blog_post`` inside ``default``.  Instead, when the aggregate is
resolved (``annotate()``, ``alias()``, ``aggregate()``, ``order_by()``, inside
arithmetic), it becomes an aggregate of the local query over a column of a
derived table (``crossdb.query_derived``) whose rows the far alias computes
with one grouped query per relation:

    SELECT author_id, COUNT(id) FILTER (WHERE published) ... GROUP BY author_id

Every aggregate of the same relation in one query reads the same derived
table (one far query, one column each).  Since the local query still groups
its rows, as Django's JOIN + GROUP BY does, everything downstream keeps
Django's meaning: ``filter(n__gt=0)`` is a HAVING, ``order_by("-n")[:50]``,
``count()``, ``exists()``, arithmetic and ``values().annotate()`` grouping.
A local row without far rows reads NULLs: ``Count`` 0, ``Sum``/``Max`` None.

How each aggregate is recombined locally, per group of local rows:

- model rows (``annotate()`` without ``values()``): ``Count``/``Sum`` sum the
  far partial values (so another multi-valued JOIN in the query multiplies
  them exactly as it multiplies Django's), ``distinct=True`` and ``Avg`` take
  the one value of the row (``MAX``), ``Min``/``Max`` their own;
- groups of several rows (``values(...).annotate()``, ``aggregate()``):
  ``Count``/``Sum`` sum, ``Avg`` divides the summed sums by the summed counts,
  ``Min``/``Max`` their own; ``distinct=True`` is only summable for the far
  primary key (each far row belongs to one local row), otherwise it raises.

What is not rewritten raises ``CrossDatabaseQueryError`` naming the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

from django.conf import settings
from django.db.models import (
    Avg,
    BigIntegerField,
    CharField,
    Count,
    DecimalField,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
)
from django.db.models.aggregates import Aggregate
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Expression, ExpressionWrapper, Func
from django.db.models.functions import Cast, Coalesce
from django.db.models.sql.constants import MULTI

from crossdb import django_versions, query_forward, query_per_row, routing, transport
from crossdb.exceptions import CrossDatabaseLimitError, CrossDatabaseQueryError
from crossdb.lookups import ids_in
from crossdb.m2m import paths as m2m_paths
from crossdb.query_derived import DerivedColumn, DerivedJoin
from crossdb.query_ids import CrossDatabaseIds, CrossDatabaseIdsLookup
from crossdb.query_paths import _multi_valued, final_field, find_crossing

_KINDS = {Count: "count", Sum: "sum", Avg: "avg", Min: "min", Max: "max"}


def _err(model, what, why) -> CrossDatabaseQueryError:
    return CrossDatabaseQueryError(
        f"{model._meta.label}: {what} {why} Compute it on the related model's own database "
        "(Post.objects.values('author').annotate(...)) and combine in Python (see "
        "docs/limitations.rst)."
    )


def _f_names(expression):
    """Yield the names of every F() under ``expression`` (its filter left out)."""
    if isinstance(expression, F):
        yield expression.name
        return
    if isinstance(expression, Aggregate):
        sources = Func.get_source_expressions(expression)
    else:
        sources = getattr(expression, "get_source_expressions", lambda: [])()
    for source in sources:
        if source is not None:
            yield from _f_names(source)


def _q_names(node):
    for child in node.children:
        if isinstance(child, Q):
            yield from _q_names(child)
        elif isinstance(child, tuple):
            yield child[0]


def _crossing_of(model, aggregate):
    """Return the reverse crossdb crossing ``aggregate`` reads across, or None."""
    crossings = {}
    for name in _f_names(aggregate):
        if m2m_paths.through_path(model, name):
            # A CrossDatabaseManyToManyField: not split here; query_guard names it.
            return None
        crossing = find_crossing(model, name)
        crossings[name] = crossing
    found = [c for c in crossings.values() if c is not None]
    if not found:
        return None
    first = found[0]
    if not first.reverse or first.field.many_to_many:
        return None  # forward and many-to-many crossings: query_guard's error
    description = f"{aggregate.__class__.__name__}({', '.join(map(repr, crossings))})"
    if type(aggregate) not in _KINDS:
        raise _err(model, description, "is an aggregate crossdb cannot split across databases.")
    if first.prefix and _multi_valued(model, list(first.prefix)):
        raise _err(
            model,
            description,
            "crosses into another database after a multi-valued relation of its own "
            f"({LOOKUP_SEP.join(first.prefix)}); crossdb computes aggregates across a "
            "relation reached by single-valued relations only.",
        )
    if any(c is None or c.key != first.key for c in crossings.values()):
        raise _err(
            model,
            description,
            "mixes columns of two databases in one aggregate.",
        )
    return first, description


def _far_name(crossing, name: str) -> str:
    """Return ``name`` (from the local model) as a path from the far model."""
    rest = name.split(LOOKUP_SEP)[len(crossing.prefix) + 1 :]
    return LOOKUP_SEP.join(rest) or "pk"


def _far_expression(crossing, expression):
    """Return a copy of ``expression`` with its F() names taken from the far model."""
    if isinstance(expression, F):
        return F(_far_name(crossing, expression.name))
    if not hasattr(expression, "get_source_expressions"):
        return expression
    copy = expression.copy()
    copy.set_source_expressions(
        [
            None if source is None else _far_expression(crossing, source)
            for source in expression.get_source_expressions()
        ]
    )
    return copy


def _far_q(model, crossing, node, description):
    """Return the Q of an aggregate's ``filter=`` as a condition on the far model."""
    children = []
    for child in node.children:
        if isinstance(child, Q):
            children.append(_far_q(model, crossing, child, description))
            continue
        lookup, value = child
        found = find_crossing(model, lookup)
        if found is None or found.key != crossing.key:
            raise _err(
                model,
                f"{description} with filter=Q({lookup}=...)",
                "filters on a column that is not across the aggregated relation.",
            )
        if isinstance(value, Expression | F):
            raise _err(
                model,
                f"{description} with filter=Q({lookup}=...)",
                "compares with an expression; crossdb carries values only.",
            )
        rest = lookup.split(LOOKUP_SEP)[len(crossing.prefix) + 1 :]
        far_model = crossing.field.related_model
        if not rest or rest[0] not in {f.name for f in far_model._meta.get_fields()} | {"pk"}:
            rest = ["pk", *rest]
        children.append((LOOKUP_SEP.join(rest), value))
    return Q.create(children, connector=node.connector, negated=node.negated)


@dataclass(frozen=True)
class FarSpec:
    """One column of the derived table: an aggregate computed on the far alias."""

    function: type  # Count, Sum, Avg, Min or Max
    expression: object  # relative to the far model
    distinct: bool
    condition: Q | None


@dataclass(frozen=True)
class AggregateSource:
    """The far rows of one reverse crossdb relation, grouped by its key."""

    model: object  # the local model
    relation: object  # the ForeignObjectRel of the crossdb field
    specs: tuple

    def with_spec(self, spec):
        """Return ``(source, column index)`` holding ``spec``."""
        if spec in self.specs:
            return self, self.specs.index(spec)
        return AggregateSource(self.model, self.relation, (*self.specs, spec)), len(self.specs)

    # -- what DerivedJoin asks --

    def describe(self) -> str:
        return f"{self.model._meta.label}.{self.relation.get_accessor_name()} (aggregated)"

    def key_field(self):
        return self.relation.field.target_field

    def string_key(self) -> bool:
        return transport.column_field(self.key_field()).get_internal_type() in (
            transport.STRING_KEYS
        )

    def _far_queryset(self, keys=None):
        field = self.relation.field
        far_model = field.model
        alias = routing.db_for_read(far_model)
        manager = far_model._base_manager.db_manager(alias)
        annotations = {}
        for index, spec in enumerate(self.specs):
            extra = {"distinct": spec.distinct} if spec.distinct else {}
            if spec.condition is not None:
                extra["filter"] = spec.condition
            annotations[f"crossdb_v{index}"] = spec.function(spec.expression, **extra)
        queryset = manager.filter(**{f"{field.attname}__isnull": False})
        if keys is not None:
            queryset = queryset.filter(ids_in(field.attname, keys))
        return queryset.order_by().values(field.attname).annotate(**annotations)

    def fields(self) -> list:
        queryset = self._far_queryset()
        return [
            self.key_field(),
            *(
                query_forward._plain_field(queryset.query.annotations[f"crossdb_v{i}"].output_field)
                for i in range(len(self.specs))
            ),
        ]

    def rows(self, compiler, connection) -> list:
        self._check_query(compiler.query)
        fields = self.fields()
        queryset = self._far_queryset(_local_keys(compiler, self.key_field()))
        names = [f"crossdb_v{i}" for i in range(len(self.specs))]
        limit = getattr(settings, "CROSSDB_MAX_IDS", None)
        key_attname = self.relation.field.attname
        far_rows = _far_rows(queryset.values_list(key_attname, *names), fields)
        if limit is not None and len(far_rows) > limit:
            raise CrossDatabaseLimitError(
                f"{self.describe()} reads more than {limit} groups on database "
                f"{queryset.db!r}, more than CROSSDB_MAX_IDS={limit} allows to carry to "
                "another database. Narrow the far side, or raise CROSSDB_MAX_IDS."
            )
        # Converted a column at a time (integers the column holds as they are).
        # Each column is read with itemgetter, not zip(*far_rows): that zip
        # holds an iterator per row, 100k objects that set off full garbage
        # collections costing more than the far query.
        columns = [list(map(itemgetter(i), far_rows)) for i in range(len(fields))]
        if all(
            transport._plain_integers(field, connection, column)
            for field, column in zip(fields, columns, strict=True)
        ):
            # Nothing to convert or drop (a count by an integer key): the rows
            # as the far driver gave them, not rebuilt one by one.
            return far_rows
        keys = transport.prepare_keys(fields[0], connection, columns[0])
        values = [
            transport.pair_column(field, connection, column)
            for field, column in zip(fields[1:], columns[1:], strict=True)
        ]
        # A key the local column cannot hold matches no row.
        return [row for row in zip(keys, *values, strict=True) if row[0] is not None]

    def _check_query(self, query) -> None:
        """Refuse a query whose filter() also crosses this relation (Django shares the JOIN)."""
        far_model = self.relation.field.model
        # A filter() across it before the aggregate is read from its join
        # (_over_joined_rows); one after multiplies the rows, as Django's does.
        if _filters_across(query.where, far_model):
            raise _err(
                self.model,
                f"an aggregate across {self.relation.get_accessor_name()} in a query that also "
                "filter()s across it",
                "would, in Django, count only the rows the filter joined (filter() first) or "
                "multiply them (filter() after); put the condition in the aggregate's "
                "filter=Q(...), or use exclude().",
            )


def _local_keys(compiler, key_field):
    """Return the keys of the local rows when a condition selects some of them, else None.

    A filtered local query (a search, one user's page) needs the far groups
    of its own keys only: they are read first on the local alias (one query)
    and restrict the far GROUP BY.  Without a condition every key is wanted,
    and conditions that cross to another database again are not evaluated
    twice.
    """
    query = compiler.query
    if any(
        isinstance(j, DerivedJoin)
        and (j.parent_alias != query.base_table or not isinstance(j.source, AggregateSource))
        for j in query.alias_map.values()
    ):
        # A key across a local relation, or a filter's join of far rows
        # (read once, not again for the keys): every key is wanted.
        return None
    # The WHERE part only, as Django writes it: conditions on aggregates go to HAVING.
    where, _having, _qualify = query.where.split_having_qualify(
        must_group_by=query.group_by is not None
    )
    if where is None or not where.children or _crosses(where):
        return None
    inner = query.clone()
    inner.where = where
    for alias, join in inner.alias_map.items():
        if isinstance(join, DerivedJoin):
            inner.alias_refcount[alias] = 0  # never compiled: no far query from here
    inner.clear_ordering(force=True)
    inner.clear_limits()
    inner.clear_select_clause()
    inner.group_by = None
    inner.set_annotation_mask(())
    inner.combinator = None
    queryset = QuerySet(model=inner.model, query=inner, using=compiler.using)
    values = queryset.values_list(key_field.attname, flat=True).distinct()
    limit = getattr(settings, "CROSSDB_MAX_IDS", None)
    keys = list(values[: limit + 1] if limit is not None else values)
    if limit is not None and len(keys) > limit:
        return None  # too many to carry: the far side groups every key
    return keys


def _crosses(node) -> bool:
    if isinstance(node, CrossDatabaseIdsLookup):
        return True
    return any(_crosses(child) for child in getattr(node, "children", ()))


def _far_rows(queryset, fields) -> list:
    """Return the rows of ``queryset``; integers as the driver gives them, without converters."""
    integers = all(
        transport.column_field(field).get_internal_type() in transport._INTEGER_TYPES
        for field in fields
    )
    if not integers:
        return list(queryset.iterator(chunk_size=10000))
    # Django's integer fields convert nothing; skipping the per-row converter
    # loop is most of the Python time of 100k groups.  MySQL's SUM() is a
    # Decimal here, which pair_column() converts.
    compiler = queryset.query.get_compiler(using=queryset.db)
    chunks = compiler.execute_sql(MULTI, chunked_fetch=False, chunk_size=10000)
    # The rows as the driver gives them (tuples), chained in C.
    return list(chain.from_iterable(chunks or ()))


def _filters_across(node, far_model, negated=False) -> bool:
    """Return True when ``node`` holds a non-negated id set read on ``far_model``."""
    negated = negated or getattr(node, "negated", False)
    if isinstance(node, CrossDatabaseIdsLookup):
        rhs = node.rhs
        return (
            not negated
            and isinstance(rhs, CrossDatabaseIds)
            and rhs.queryset.model._meta.concrete_model is far_model._meta.concrete_model
        )
    return any(
        _filters_across(child, far_model, negated) for child in getattr(node, "children", ())
    )


def _derived_column(query, crossing, model, spec, output_field):
    """Return the DerivedColumn of ``spec``, adding it to the query's derived table."""
    parent = query_forward._parent_alias(query, crossing)
    for alias, join in query.alias_map.items():
        if (
            isinstance(join, DerivedJoin)
            and isinstance(join.source, AggregateSource)
            and join.source.relation is crossing.field
            and join.parent_alias == parent
        ):
            source, index = join.source.with_spec(spec)
            if source is not join.source:
                # Copy on write: clones of this query keep the join they had.
                query.alias_map[alias] = join.replaced(source)
            break
    else:
        source, index = AggregateSource(model, crossing.field, ()).with_spec(spec)
        alias, _ = query.table_alias(DerivedJoin.table_name, create=True)
        key_column = crossing.field.field.target_field.column
        query.alias_map[alias] = DerivedJoin(source, parent, key_column, alias)
    field = source.fields()[index + 1]
    return DerivedColumn(alias, f"v{index}", output_field or field)


def _as_integer(expression, output_field):
    # SUM(bigint) is numeric on PostgreSQL and DECIMAL on MySQL: back to an integer.
    return Cast(expression, output_field=BigIntegerField())


def _local_expression(query, model, crossing, aggregate, description, grouped):
    """Return the local expression that recombines ``aggregate`` from the far rows."""
    function = type(aggregate)
    sources = Func.get_source_expressions(aggregate)
    expression = _far_expression(crossing, sources[0])
    distinct = bool(getattr(aggregate, "distinct", False))
    condition = None
    given = django_versions.aggregate_condition(aggregate)
    if given is not None:
        if not isinstance(given, Q):
            raise _err(model, description, "has a filter= crossdb cannot read (use a Q()).")
        condition = _far_q(model, crossing, given, description)
    if distinct and function in (Min, Max):
        distinct = False  # the same answer
    if distinct and function is Count and expression == F("pk"):
        distinct = False  # far primary keys are distinct already

    def column(function_, output_field=None, distinct_=distinct):
        spec = FarSpec(function_, expression, distinct_, condition)
        return _derived_column(query, crossing, model, spec, output_field)

    if function is Count:
        if not distinct:
            if expression == F("pk") and condition is None:
                # COUNT(*) per key: the far key's index answers without reading rows.
                expression = "*"
            total = Sum(column(Count))
            return Coalesce(
                _as_integer(total, IntegerField()), Value(0), output_field=IntegerField()
            )
        if not grouped:
            return Coalesce(Max(column(Count)), Value(0), output_field=IntegerField())
        raise _err(
            model, description, "with distinct=True over groups of several rows cannot be summed."
        )
    if function is Sum:
        value = column(Sum)
        integer = value.output_field.get_internal_type() in transport._INTEGER_TYPES
        if not distinct:
            return _as_integer(Sum(value), None) if integer else Sum(value)
        if not grouped:
            return Max(value)
        raise _err(
            model, description, "with distinct=True over groups of several rows cannot be summed."
        )
    if function in (Min, Max):
        return function(column(function))
    # Avg.  An output_field the caller gave (Avg("rating", output_field=DecimalField()))
    # is the type Django answers in; the far value and the recombination take it.
    given_type = aggregate.__dict__.get("output_field")
    if not grouped:
        return Max(column(Avg, given_type))
    if distinct:
        raise _err(
            model, description, "with distinct=True over groups of several rows cannot be averaged."
        )
    total, count = column(Sum, None, False), column(Count, None, False)
    if isinstance(total.output_field, DecimalField):
        raise _err(
            model, description, "of a DecimalField over groups of several rows is not recombined."
        )
    average = ExpressionWrapper(
        Cast(Sum(total), FloatField()) / Func(Sum(count), Value(0), function="NULLIF"),
        output_field=FloatField(),
    )
    if given_type is None or isinstance(given_type, FloatField):
        return average
    if isinstance(given_type, DecimalField) and given_type.max_digits is None:
        # No precision to CAST to: the float becomes a Decimal as Django converts
        # an expression's DecimalField value.
        return ExpressionWrapper(average, output_field=given_type)
    return Cast(average, given_type)


def _over_joined_rows(query, model, crossing, aggregate, description, alias):
    """Return ``aggregate`` computed locally over the far rows a filter() joined.

    ``User.objects.filter(blog_posts__published=True).annotate(n=Count("blog_posts"))``
    counts, in Django, the published posts only: the aggregate reuses the
    filter's join.  Its rows are here the join of far rows
    (``crossdb.query_rows``); the aggregated column is read with them and the
    local database aggregates it per group, as Django's JOIN does.
    """
    function = type(aggregate)
    (source,) = Func.get_source_expressions(aggregate)[:1]
    why = (
        "beside a filter() across the same relation before it (whose joined rows Django "
        "aggregates) is answered for a plain column, without filter=; "
    )
    if not isinstance(source, F) or django_versions.aggregate_condition(aggregate) is not None:
        raise _err(model, description, why + "this one is not.")
    path = _far_name(crossing, source.name)
    far_field = transport.column_field(final_field(crossing.field.related_model, path))
    if function in (Min, Max) and isinstance(far_field, CharField | TextField):
        raise _err(model, description, why + "Min/Max of a string is not (its collation).")
    column = query_per_row.value_column(query, alias, query_per_row.FarValue(path, False))
    value = DerivedColumn(alias, column, query_forward._plain_field(far_field))
    extra = {"distinct": True} if getattr(aggregate, "distinct", False) else {}
    if function is Avg and aggregate.__dict__.get("output_field") is not None:
        extra["output_field"] = aggregate.__dict__["output_field"]
    local = function(value, **extra)
    if function is Sum and far_field.get_internal_type() in transport._INTEGER_TYPES:
        return _as_integer(local, None)
    return local


def _check_summary(query, model, description) -> None:
    """Refuse aggregate() where Django computes it over the JOINed rows of a subquery."""
    grouped = query.group_by is not None or any(
        getattr(annotation, "contains_aggregate", False) and not annotation.is_summary
        for annotation in query.annotations.values()
    )
    if query.is_sliced or query.distinct or query.combinator or grouped:
        raise _err(
            model,
            f"aggregate({description}) of a sliced, distinct, combined or grouped queryset",
            "is computed by Django over the JOINed related rows (the slice or DISTINCT applies "
            "to them, not to the rows of the queryset), which crossdb does not reproduce.",
        )


def _respelled_q(model, node):
    children = []
    for child in node.children:
        if isinstance(child, Q):
            children.append(_respelled_q(model, child))
        elif isinstance(child, tuple) and isinstance(child[0], str):
            children.append((m2m_paths.through_path(model, child[0]) or child[0], child[1]))
        else:
            children.append(child)
    return Q.create(children, connector=node.connector, negated=node.negated)


def _respelled(model, expression):
    if isinstance(expression, F):
        path = m2m_paths.through_path(model, expression.name)
        return F(path) if path else expression
    if not hasattr(expression, "get_source_expressions"):
        return expression
    copy = expression.copy()
    copy.set_source_expressions(
        [_respelled(model, e) if e is not None else None for e in copy.get_source_expressions()]
    )
    return copy


def _through_spelled(model, aggregate):
    """Return ``aggregate`` with crossdb many-to-many steps through their through model, or None.

    ``Tag.objects.annotate(n=Count("articles"))`` counts the through rows of
    each tag, which live with the articles: across the reverse of the through
    model's crossdb key, answered like any reverse relation.
    ``Article.objects.annotate(n=Count("tags"))`` counts its through rows,
    in its own database.
    """
    if model is None or type(aggregate) not in _KINDS:
        return None
    names = list(_f_names(aggregate))
    condition = django_versions.aggregate_condition(aggregate)
    lookups = list(_q_names(condition)) if isinstance(condition, Q) else []
    if not any(m2m_paths.through_path(model, name) for name in [*names, *lookups]):
        return None
    (source,) = Func.get_source_expressions(aggregate)[:1]
    extra = {"distinct": aggregate.distinct} if getattr(aggregate, "distinct", False) else {}
    if condition is not None:
        extra["filter"] = _respelled_q(model, condition) if isinstance(condition, Q) else condition
    if aggregate.default is not None:
        extra["default"] = aggregate.default
    if "output_field" in aggregate.__dict__:
        extra["output_field"] = aggregate.__dict__["output_field"]
    return type(aggregate)(_respelled(model, source), **extra)


def checked_aggregate_resolve(original):
    """Wrap ``Aggregate.resolve_expression``: aggregates across a reverse crossdb relation."""

    def resolve_expression(
        self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False
    ):
        respelled = _through_spelled(getattr(query, "model", None), self)
        if respelled is not None:
            # Count("articles") across a CrossDatabaseManyToManyField: its through rows.
            return respelled.resolve_expression(query, allow_joins, reuse, summarize, for_save)
        # Over far columns of a forward relation: crossdb.query_forward.
        forward = query_forward.forward_aggregate(self, query)
        if forward is not None:
            return forward.resolve_expression(query, allow_joins, reuse, summarize, for_save)
        model = getattr(query, "model", None)
        found = _crossing_of(model, self) if model is not None else None
        if found is None:
            return original(self, query, allow_joins, reuse, summarize, for_save)
        crossing, description = found
        if summarize:
            _check_summary(query, model, description)
        # values(...).annotate(): the group_by is set after the annotation resolves.
        grouped = summarize or isinstance(query.group_by, tuple) or bool(query.values_select)
        joined = query_per_row.reused_join(query, crossing)
        if joined is not None:
            # filter() across the relation first: Django aggregates the rows it joined.
            local = _over_joined_rows(query, model, crossing, self, description, joined)
        else:
            local = _local_expression(query, model, crossing, self, description, grouped)
        default = self.default
        if default is not None:
            local = Coalesce(local, default, output_field=local.output_field)
        return local.resolve_expression(query, allow_joins, reuse, summarize, for_save)

    resolve_expression.crossdb_original = original
    return resolve_expression
