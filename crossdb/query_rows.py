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
from django.db.models import Case, IntegerField, Q, Value, When
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact, IsNull
from django.db.models.sql.where import AND

from crossdb import transport
from crossdb.exceptions import CrossDatabaseLimitError, CrossDatabaseQueryError
from crossdb.query_derived import DerivedColumn, DerivedJoin
from crossdb.query_ids import CrossDatabaseIds
from crossdb.query_paths import find_crossing

#: The far condition's truth per far row, in the OR form (v0).
_MATCHED = "v0"


class FarRowsSource:
    """The key of each far row a condition selects, or of every far row with truths.

    What ``DerivedJoin`` asks of a source.  ``far`` is a ``CrossDatabaseIds``
    over ``values_list(<far key>[, <truth>, ...])``, routed as a lookup
    across is and pickled without being read.  Compared by identity: two
    ``filter()`` calls are two joins, even with equal conditions.

    Without truths, ``condition`` selects the far rows.  With truths (the
    ORed form), every far row is read with one 0/1 column per condition of
    the same ``filter()`` call on the relation (they share Django's join);
    ``add_truth()`` adds them while the call's Q is rewritten, and the far
    queryset is built when first read.
    """

    unique_keys = False

    def __init__(self, manager, far_key, key_field, description, condition=None):
        self.manager = manager
        self.far_model = manager.model
        self.far_key = far_key
        self.key_field_ = key_field
        self.description = description
        self.condition = condition
        self.with_truth = condition is None
        self.truths: list = []
        self._far = None

    def every_row(self):
        """Return the ORed form of this source: every far row, the condition its truth."""
        if self.manager is None:
            raise CrossDatabaseQueryError(
                f"{self.describe()}: a query loaded from a pickle and then combined with | "
                "cannot be rewritten again; combine the querysets before pickling them."
            )
        source = FarRowsSource(self.manager, self.far_key, self.key_field_, self.description)
        source.add_truth(self.condition, self.description)
        return source

    def add_truth(self, condition, description) -> str:
        """Return the column (v0, v1...) holding ``condition``'s truth on each far row."""
        self.truths.append(condition)
        if description not in self.description:
            self.description = f"{self.description} and {description}"
        return f"v{len(self.truths) - 1}"

    @property
    def far(self) -> CrossDatabaseIds:
        if self._far is None:
            queryset = self.manager.filter(**{f"{self.far_key}__isnull": False}).order_by()
            if not self.with_truth:
                queryset = queryset.filter(self.condition).values_list(self.far_key, flat=True)
            else:
                # Unknown reads as false, which it is under AND and OR alike
                # (negated conditions are not joined).
                names = []
                for index, truth in enumerate(self.truths):
                    names.append(f"crossdb_matched_{index}")
                    if _crosses_to_many(self.far_model, truth):
                        # Crossing again to many rows: tested per far row with a
                        # subquery (a When() across would be refused); a far
                        # row counts once however many rows it matches there.
                        truth = Q(pk__in=self.manager.filter(truth).values("pk"))
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
        state.update(manager=None, condition=None, truths=[None] * len(self.truths), _far=far)
        return state

    def describe(self) -> str:
        return self.description

    def key_field(self):
        return self.key_field_

    def string_key(self) -> bool:
        return transport.column_field(self.key_field_).get_internal_type() in (
            transport.STRING_KEYS
        )

    def fields(self) -> list:
        return [self.key_field_, *(IntegerField() for _ in self.truths)]

    def rows(self, compiler, connection) -> list:
        queryset = self.far.for_outer(compiler.using)
        limit = getattr(settings, "CROSSDB_MAX_IDS", None)
        far_rows = []
        for row in queryset.iterator(chunk_size=10000):
            far_rows.append(row)
            if limit is not None and len(far_rows) > limit:
                raise CrossDatabaseLimitError(
                    f"{self.describe()} joins more than {limit} rows read on database "
                    f"{queryset.db!r}, more than CROSSDB_MAX_IDS={limit} allows to carry "
                    "to another database. Narrow the condition, or raise CROSSDB_MAX_IDS."
                )
        # A key the local column cannot hold matches no local row: dropped.
        if not self.with_truth:
            keys = transport.prepare_keys(self.key_field_, connection, far_rows)
            return [[key] for key in keys if key is not None]
        keys = transport.prepare_keys(self.key_field_, connection, [row[0] for row in far_rows])
        return [
            [key, *row[1:]] for key, row in zip(keys, far_rows, strict=True) if key is not None
        ]


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
        info = query.setup_joins(list(self.key_path), query.get_meta(), query.get_initial_alias())
        # As Django's filter(author=...): the relation's own join trimmed, its
        # local column kept.
        targets, parent, _joins = query.trim_joins(info.targets, info.joins, info.path)
        key_column = targets[0].column
        alias, _ = query.table_alias(DerivedJoin.table_name, create=True)
        query.alias_map[alias] = DerivedJoin(self.source, parent, key_column, alias)
        return alias

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
        if isinstance(join, DerivedJoin) and join.source.with_truth:
            truth = DerivedColumn(self.lhs.alias, _FIRST_TRUTH, IntegerField())
            return Exact(truth, 1).as_sql(compiler, connection)
        return super().as_sql(compiler, connection)


_FIRST_TRUTH = "v0"


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
                ):
                    self.alias_map[alias] = join.replaced(join.source.every_row())
        return result

    combine.crossdb_original = original
    return combine


def joined_rows(manager, far_q, far_key, key_field, description, key_path):
    """Return the condition that joins the far rows ``far_q`` selects (ANDed form)."""
    source = FarRowsSource(manager, far_key, key_field, description, condition=far_q)
    return JoinedFarRows(source, key_path)


def joined_truth(source, far_q, description, key_path, null_row_matches):
    """Return the condition testing ``far_q`` on the far rows ``source`` joins (ORed form)."""
    column = source.add_truth(far_q, description)
    return JoinedFarRows(source, key_path, column, null_row_matches)
