"""Ids read on one alias that filter a query on another, read when that query compiles.

A rewritten lookup (``author__username="ann"``) becomes a condition on the
local key (``author_id``) whose values come from a queryset on the far alias.
That queryset runs when the outer query is compiled, not when ``filter()`` is
called: querysets stay lazy (a ``ModelChoiceField(queryset=...)`` built at
import time reads nothing) and each evaluation sees the far side as it is.
"""

from __future__ import annotations

import contextvars
import functools

from django.conf import settings
from django.db.models import Field, ForeignObject, QuerySet
from django.db.models.lookups import In

from crossdb import routing
from crossdb.exceptions import CrossDatabaseLimitError
from crossdb.lookups import IdsIn


class CrossDatabaseIds:
    """The key values a queryset on another alias gives, read on demand."""

    def __init__(self, queryset, description: str, routed: bool = False, check=None):
        # A flat values_list() of the key; never cached on the queryset itself,
        # since clones of the outer query share this object.
        self.queryset = queryset
        self.description = description
        # True: the far alias was left to the routers (a lookup across, not a
        # caller's queryset); when they abstain it follows the outer query's
        # alias as a relation's descriptor does (crossdb.routing.home_alias).
        self.routed = routed
        # check(outer_alias): raises when the queryset cannot be compared for an
        # outer query on that alias (Django's refusal, at compile time as
        # Django's).  Not pickled: a pickled query is compiled where it is
        # loaded, and the check is the lookup's, rebuilt by filter().
        self.check = check

    @property
    def alias(self) -> str:
        return self.queryset.db

    def for_outer(self, outer_alias: str | None):
        """Return the far queryset to read for an outer query on ``outer_alias``."""
        queryset = self.queryset
        if self.check is not None:
            self.check(outer_alias)
        if self.routed and outer_alias:
            alias = routing.home_alias(queryset.model, outer_alias, "db_for_read")
            if alias != queryset.db:
                queryset = queryset.using(alias)
        return queryset

    def evaluate(self, outer_alias: str | None = None) -> list:
        """Read the distinct ids on their alias, honouring ``CROSSDB_MAX_IDS``."""
        limit = getattr(settings, "CROSSDB_MAX_IDS", None)
        # iterator() leaves no result cache on the shared queryset.
        queryset = self.for_outer(outer_alias)
        if not queryset.query.where and not queryset.query.is_sliced:
            # Every key of the table: DISTINCT in the database sends far fewer
            # rows.  With a condition, SQLite would rather walk the key's index
            # for DISTINCT than filter first; de-duplicating here is faster.
            queryset = queryset.distinct()
        values: dict = {}
        for value in queryset.iterator():
            values[value] = None
            if limit is not None and len(values) > limit:
                raise CrossDatabaseLimitError(
                    f"{self.description} matches more than {limit} rows on database "
                    f"{self.alias!r}, more than CROSSDB_MAX_IDS={limit} allows to carry "
                    "to another database. Narrow the condition, or raise CROSSDB_MAX_IDS."
                )
        return list(values)

    def __repr__(self):
        return f"<CrossDatabaseIds {self.description} on {self.alias!r}>"

    def __reduce__(self):
        # Pickling a QuerySet evaluates it: pickle the far query instead, so
        # that a pickled ``queryset.query`` still reads the ids when it runs.
        queryset = self.queryset
        state = (queryset._fields, queryset._iterable_class, queryset._db)
        return (_rebuild, (queryset.model, queryset.query, state, self.description, self.routed))


def _rebuild(model, query, state, description, routed=False):
    fields, iterable_class, db = state
    queryset = QuerySet(model=model, query=query, using=db)
    queryset._fields, queryset._iterable_class = fields, iterable_class
    return CrossDatabaseIds(queryset, description, routed)


class CrossDatabaseIdsLookup(In):
    """``key__crossdb_ids=CrossDatabaseIds(...)``: the key is one of the far side's ids.

    A lookup rather than a bare expression so that Django's ``build_filter``
    gives it what every lookup gets: join promotion, and ``IS NOT NULL`` on a
    nullable key under negation (``exclude(editor__username="x")`` keeps the
    posts without editor, as the single-database JOIN does).

    It is registered on every field, so it appears in ``Field.get_lookups()``;
    given anything but ``CrossDatabaseIds`` it is Django's ``in``, so code that
    walks a field's lookups (Django's own test suite does) gets an answer.
    """

    lookup_name = "crossdb_ids"

    def get_prep_lookup(self):
        if isinstance(self.rhs, CrossDatabaseIds):
            return self.rhs
        return super().get_prep_lookup()

    def as_sql(self, compiler, connection):
        if not isinstance(self.rhs, CrossDatabaseIds):
            return super().as_sql(compiler, connection)
        if _rendering_text.get():
            return self._as_text(compiler, connection)
        # The ids travel as one parameter (array / JSON text) through IdsIn.
        return IdsIn(self.lhs, self.rhs.evaluate(compiler.using)).as_sql(compiler, connection)

    def _as_text(self, compiler, connection):
        # str(queryset.query) shows the far side as the subquery it stands
        # for, without reading it: Django's str() sends no query, and an empty
        # far side must not raise EmptyResultSet where the JOIN would not.
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        far = self.rhs.for_outer(compiler.using)
        far_sql, far_params = far.query.get_compiler(far.db).as_sql()
        return f"{lhs_sql} IN ({far_sql})", (*lhs_params, *far_params)


# True while Query.sql_with_params() (str(query)) renders the SQL as text.
_rendering_text = contextvars.ContextVar("crossdb_rendering_text", default=False)


def text_seam(original):
    """Wrap ``Query.sql_with_params``: render crossdb's id sets as their far subqueries."""

    @functools.wraps(original)
    def sql_with_params(self):
        token = _rendering_text.set(True)
        try:
            return original(self)
        finally:
            _rendering_text.reset(token)

    sql_with_params.crossdb_original = original
    return sql_with_params


def register() -> None:
    """Make ``crossdb_ids`` available on every field (idempotent)."""
    # Related fields take their lookups from ForeignObject down only.
    for owner in (Field, ForeignObject):
        if not _registered_on(owner):
            owner.register_lookup(CrossDatabaseIdsLookup)


def _registered_on(owner) -> bool:
    own = owner.__dict__.get("class_lookups", {})
    return own.get(CrossDatabaseIdsLookup.lookup_name) is CrossDatabaseIdsLookup


def registered() -> bool:
    """Return True when ``register()`` has run."""
    return all(_registered_on(owner) for owner in (Field, ForeignObject))
