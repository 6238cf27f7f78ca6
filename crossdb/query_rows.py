"""A filter across a multi-valued crossdb relation: one local row per matching far row.

Inside one database ``User.objects.filter(blog_posts__score__gte=1)`` is an
INNER JOIN: a user comes back once per matching post, and ``count()`` counts
the joined rows (``.distinct()`` collapses them).  Across databases the far
alias reads the key of each matching row, duplicates kept
(``SELECT author_id FROM blog_post WHERE score >= 1``), and those keys are
joined to the local query as a derived table (``crossdb.query_derived``):

    LEFT OUTER JOIN unnest(%s::integer[]) AS "crossdb_far" ("k")
        ON ("crossdb_far"."k" = "auth_user"."id")
    WHERE "crossdb_far"."k" IS NOT NULL

One ``filter()`` call's conditions on the relation are one far query, hence
one join (the same related row), and each ``filter()`` call its own join, as
Django's ``setup_joins()`` reuses joins.

Where the condition is ORed with others (``Q(blog_posts__score=5) |
Q(username="x")``) Django's join is a LEFT JOIN of *every* related row and
the condition is tested per joined row: a user matching the other branch
comes back once per post, matching or not.  The far alias then reads every
row's key with the condition's truth (``CASE WHEN ... THEN 1 ELSE 0``), and
the local condition tests that column; a local row without far rows reads
the row of NULLs Django's LEFT JOIN gives, which matches when the condition
is true of "no related row" (``__isnull=True``).

Negated conditions are not joined: Django answers them with a subquery
(``split_exclude()``), which never multiplies rows, and so does crossdb.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Case, CharField, F, IntegerField, Q, Value, When
from django.db.models.expressions import Expression, Window
from django.db.models.functions import Coalesce, DenseRank
from django.db.models.lookups import Exact, IsNull
from django.db.models.sql.where import AND

from crossdb import transport
from crossdb.exceptions import CrossDatabaseLimitError, CrossDatabaseQueryError
from crossdb.lookups import ids_in
from crossdb.query_derived import DerivedColumn, DerivedJoin
from crossdb.query_forward import RANK_WIDTH, _needed_keys, _plain_field
from crossdb.query_ids import CrossDatabaseIds
from crossdb.query_paths import final_field, find_crossing


class FarRowsSource:
    """The key of each far row a condition selects, or of every far row with truths.

    What ``DerivedJoin`` asks of a source.  ``far`` is a ``CrossDatabaseIds``
    over ``values_list(<far key>, <truths>..., <values>...)``, routed as a
    lookup across is and pickled without being read.  Compared by identity:
    two ``filter()`` calls are two joins, even with equal conditions.

    Without truths, ``condition`` selects the far rows (``Q()``: every one).
    With truths (the ORed form), every far row is read with one 0/1 column per
    condition of the same ``filter()`` call on the relation (they share
    Django's join); ``add_truth()`` adds them while the call's Q is rewritten.
    ``values`` are far columns read per row (``order_by()``/``values()``
    across, ``crossdb.query_per_row``); ``with_value()`` returns a copy with
    one more, since clones of a query share their joins.  The far queryset is
    built when first read.
    """

    unique_keys = False

    def __init__(self, manager, far_key, key_field, description, condition=None, relation=None):
        self.manager = manager
        self.far_model = manager.model
        self.far_key = far_key
        self.key_field_ = key_field
        self.description = description
        self.condition = condition
        self.with_truth = condition is None
        # Crossing.key of the relation: order_by()/values() reuse its join.
        self.relation = relation
        # In order, each column after the key: ("truth", Q) or ("value", FarValue).
        self.columns: list = []
        # The truth column JoinedRowLookup tests once combined with | (every_row()).
        self.converted_truth = None
        # Every far row (a join order_by()/values() made): read for the local keys only.
        self.every = False
        self.local_key_path = None
        self._far = None

    def every_row(self):
        """Return the ORed form of this source: every far row, the condition its truth."""
        if self.manager is None:
            raise CrossDatabaseQueryError(
                f"{self.describe()}: a query loaded from a pickle and then combined with | "
                "cannot be rewritten again; combine the querysets before pickling them."
            )
        source = FarRowsSource(
            self.manager, self.far_key, self.key_field_, self.description, None, self.relation
        )
        # The values keep their columns; the truth comes after them.
        source.columns = list(self.columns)
        source.converted_truth = source.add_truth(self.condition, self.description)
        return source

    def with_value(self, value) -> tuple:
        """Return ``(source, column name)`` of a source reading ``value`` (a FarValue) too."""
        if ("value", value) in self.columns:
            return self, f"v{self.columns.index(('value', value))}"
        if self.manager is None:
            raise CrossDatabaseQueryError(
                f"{self.describe()}: a query loaded from a pickle cannot read more columns "
                "across; add order_by()/values() before pickling it."
            )
        source = FarRowsSource.__new__(FarRowsSource)
        source.__dict__.update(self.__dict__)
        source.columns = [*self.columns, ("value", value)]
        source._far = None
        return source, f"v{len(self.columns)}"

    def add_truth(self, condition, description) -> str:
        """Return the column (v0, v1...) holding ``condition``'s truth on each far row."""
        self.columns.append(("truth", condition))
        if description not in self.description:
            self.description = f"{self.description} and {description}"
        return f"v{len(self.columns) - 1}"

    @property
    def far(self) -> CrossDatabaseIds:
        if self._far is None:
            queryset = self.manager.filter(**{f"{self.far_key}__isnull": False}).order_by()
            names = []
            if not self.with_truth:
                queryset = queryset.filter(self.condition)
            for index, (kind, item) in enumerate(self.columns):
                if kind == "value":
                    names.append(item.path)
                    if item.ranked:
                        # The far database's order and equality: a dense rank.
                        rank = f"crossdb_rank_{index}"
                        queryset = queryset.annotate(
                            **{rank: Window(DenseRank(), order_by=F(item.path).asc())}
                        )
                        names.append(rank)
                    continue
                names.append(f"crossdb_matched_{index}")
                truth = item
                if _crosses_to_many(self.far_model, truth):
                    # Crossing again to many rows: tested per far row with a
                    # subquery (a When() across would be refused); a far
                    # row counts once however many rows it matches there.
                    truth = Q(pk__in=self.manager.filter(truth).values("pk"))
                # Unknown reads as false, which it is under AND and OR alike
                # (negated conditions are not joined).
                queryset = queryset.annotate(
                    **{
                        names[-1]: Case(
                            When(truth, then=Value(1)),
                            default=Value(0),
                            output_field=IntegerField(),
                        )
                    }
                )
            queryset = queryset.values_list(self.far_key, *names)
            self._far = CrossDatabaseIds(queryset, self.description, routed=True)
        return self._far

    def __getstate__(self):
        # A pickled query carries the far query, built; not the manager.
        far = self.far
        state = self.__dict__.copy()
        columns = [(kind, None if kind == "truth" else item) for kind, item in self.columns]
        state.update(manager=None, condition=None, columns=columns, _far=far)
        return state

    def describe(self) -> str:
        return self.description

    def key_field(self):
        return self.key_field_

    def string_key(self) -> bool:
        return transport.column_field(self.key_field_).get_internal_type() in (
            transport.STRING_KEYS
        )

    def value_field(self, value):
        """Return the field of a value column as the derived table holds it."""
        field = _plain_field(final_field(self.far_model, value.path))
        if value.ranked:
            length = getattr(field, "max_length", None)
            return CharField(max_length=length + RANK_WIDTH if length else None)
        return field

    def fields(self) -> list:
        return [
            self.key_field_,
            *(
                IntegerField() if kind == "truth" else self.value_field(item)
                for kind, item in self.columns
            ),
        ]

    def rows(self, compiler, connection) -> list:
        queryset = self.far.for_outer(compiler.using)
        if self.every and compiler.query.where.children:
            # A join for order_by()/values(): the far rows of the local rows' keys.
            using = compiler.using or connection.alias
            keys = _needed_keys(
                compiler, using, self.local_key_path, self.key_field_, self.describe()
            )
            queryset = queryset.filter(ids_in(self.far_key, keys))
        limit = getattr(settings, "CROSSDB_MAX_IDS", None)
        if not self.columns:
            # Keys only: read flat, one value per far row.
            queryset = queryset.values_list(self.far_key, flat=True)
        # One read past the limit tells that it is exceeded.
        far_rows = list(queryset[: limit + 1] if limit is not None else queryset)
        if limit is not None and len(far_rows) > limit:
            raise CrossDatabaseLimitError(
                f"{self.describe()} joins more than {limit} rows read on database "
                f"{queryset.db!r}, more than CROSSDB_MAX_IDS={limit} allows to carry "
                "to another database. Narrow the condition, or raise CROSSDB_MAX_IDS."
            )
        if not self.columns:
            keys = transport.prepare_keys(self.key_field_, connection, far_rows)
            # One-tuples made in C (zip): a list per row costs garbage collections.
            return list(zip([key for key in keys if key is not None]))
        width = 1 + sum(2 if kind == "value" and item.ranked else 1 for kind, item in self.columns)
        columns = list(zip(*far_rows, strict=True)) if far_rows else [()] * width
        # A key the local column cannot hold matches no local row: dropped.
        keys = transport.prepare_keys(self.key_field_, connection, list(columns[0]))
        out, position = [], 1
        for kind, item in self.columns:
            values = list(columns[position])
            position += 1
            if kind == "truth":
                out.append(values)
                continue
            if item.ranked:
                # Each row keeps its own spelling behind the far rank.
                ranks = columns[position]
                values = [
                    None if value is None else str(rank).zfill(RANK_WIDTH) + value
                    for value, rank in zip(values, ranks, strict=True)
                ]
                position += 1
            out.append(transport.pair_column(self.value_field(item), connection, values))
        return [[key, *rest] for key, *rest in zip(keys, *out, strict=True) if key is not None]


def add_join(query, source, key_path) -> str:
    """Add a LEFT OUTER JOIN of ``source`` on the local key ``key_path``; return its alias."""
    info = query.setup_joins(list(key_path), query.get_meta(), query.get_initial_alias())
    # As Django's filter(author=...): the relation's own join trimmed, its
    # local column kept.
    targets, parent, _joins = query.trim_joins(info.targets, info.joins, info.path)
    alias, _ = query.table_alias(DerivedJoin.table_name, create=True)
    query.alias_map[alias] = DerivedJoin(source, parent, targets[0].column, alias)
    return alias


def relation_ends(crossing) -> tuple:
    """Return ``(far key attname, local key field, local key path)`` of a crossing."""
    field = crossing.field
    if crossing.reverse:
        key_field = field.field.target_field
        return field.field.attname, key_field, (*crossing.prefix, key_field.attname)
    return field.target_field.attname, field.target_field, (*crossing.prefix, field.name)


def _crosses_to_many(model, node) -> bool:
    """Return True when a leaf of ``node`` crosses a crossdb relation to many rows."""
    for child in node.children:
        if isinstance(child, Q):
            if _crosses_to_many(model, child):
                return True
        elif isinstance(child, tuple) and isinstance(child[0], str):
            crossing = find_crossing(model, child[0])
            if crossing is not None and crossing.multi_valued:
                return True
    return False


class JoinedFarRows(Expression):
    """The condition ``filter()`` keeps in the rewritten Q: resolving it adds the join.

    Resolved by ``Query.build_filter()`` as any boolean expression is; the
    first condition of a source adds its ``DerivedJoin`` to the query (the
    others of the same ``filter()`` call find it) and each returns the lookup
    that tests the joined row: its key present, or its truth column 1.
    """

    conditional = True
    output_field = IntegerField()

    def __init__(self, source, key_path, column=None, null_row_matches=False):
        super().__init__()
        self.source = source
        # The local key from the queried model: single-valued local steps
        # (comment -> post), a parent's column (multi-table inheritance).
        self.key_path = tuple(key_path)
        self.column = column
        self.null_row_matches = null_row_matches

    def _join(self, query):
        for alias, join in query.alias_map.items():
            if isinstance(join, DerivedJoin) and join.source is self.source:
                return alias
        return add_join(query, self.source, self.key_path)

    def resolve_expression(
        self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False
    ):
        alias = self._join(query)
        if self.column is None:
            return JoinedRowLookup(DerivedColumn(alias, "k", self.source.key_field()), False)
        matched = DerivedColumn(alias, self.column, IntegerField())
        if self.null_row_matches:
            # The row of NULLs (no far row at all) holds as Django's LEFT JOIN row does.
            matched = Coalesce(matched, Value(1), output_field=IntegerField())
        return Exact(matched, 1)

    def __repr__(self):
        return f"JoinedFarRows({self.source.describe()!r}, {self.column!r})"


class JoinedRowLookup(IsNull):
    """``k IS NOT NULL``: the row of a join of matching far rows is there.

    Once its query is ORed with another (``qs1 | qs2``, see ``combine_seam``)
    the join reads every far row with the condition's truth instead, as
    Django's promoted LEFT JOIN, and this tests that truth.
    """

    def as_sql(self, compiler, connection):
        join = compiler.query.alias_map.get(self.lhs.alias)
        column = getattr(getattr(join, "source", None), "converted_truth", None)
        if isinstance(join, DerivedJoin) and column is not None:
            truth = DerivedColumn(self.lhs.alias, column, IntegerField())
            return Exact(truth, 1).as_sql(compiler, connection)
        return super().as_sql(compiler, connection)


def combine_seam(original):
    """Wrap ``Query.combine``: ``qs1 | qs2`` joins every far row, as Django's promoted join.

    ``User.objects.filter(blog_posts__score=5) | User.objects.filter(username="cat")``
    is, in Django, a LEFT JOIN of every post with ``score = 5 OR username =
    'cat'``: cat comes back once per post of hers, matching or not.  A join
    of the matching rows only would give her once; after the combination
    the join reads every far row with the condition's truth.
    """

    def combine(self, rhs, connector):
        result = original(self, rhs, connector)
        if connector != AND:
            for alias, join in list(self.alias_map.items()):
                if (
                    isinstance(join, DerivedJoin)
                    and isinstance(join.source, FarRowsSource)
                    and not join.source.with_truth
                    and not join.source.every
                ):
                    self.alias_map[alias] = join.replaced(join.source.every_row())
        return result

    combine.crossdb_original = original
    return combine


def joined_rows(manager, far_q, far_key, key_field, description, key_path, relation):
    """Return the condition that joins the far rows ``far_q`` selects (ANDed form)."""
    source = FarRowsSource(manager, far_key, key_field, description, far_q, relation)
    return JoinedFarRows(source, key_path)


def joined_truth(source, far_q, description, key_path, null_row_matches):
    """Return the condition testing ``far_q`` on the far rows ``source`` joins (ORed form)."""
    column = source.add_truth(far_q, description)
    return JoinedFarRows(source, key_path, column, null_row_matches)
