"""Refuse SQL that would reach across a crossdb relation inside one database.

Whatever ``crossdb.query_lookups`` and ``crossdb.query_select`` do not
rewrite must not become a JOIN or a subquery sent to one alias and naming a
table of another: with no such table it fails, with a stale copy it answers
wrongly without a word.  Three checks stop it, each raising
``CrossDatabaseQueryError`` naming the model, the path and what to do:

- ``names_to_path``: a field path (``order_by``, ``values``, ``annotate``,
  ``aggregate``, ``F()``, ``distinct(fields)``) that goes past a crossdb
  field; ``author`` and ``author__id`` stay allowed (Django reads the local
  key and trims the join);
- subqueries: a queryset of one end of a crossdb relation used inside a query
  of a model on another alias (``Subquery``, ``Exists``, ``OuterRef``);
- ``Join.as_sql``: the last line, any JOIN along a crossdb field.
"""

from __future__ import annotations

from django.db.models.constants import LOOKUP_SEP

from crossdb import routing
from crossdb.exceptions import CrossDatabaseQueryError
from crossdb.fields import is_crossdb_field

ALTERNATIVES = (
    "crossdb rewrites filter(), exclude(), get() and select_related() across it; "
    "for ordering, grouping, annotations and expressions read the other side with "
    "its own query (prefetch_related(), or a queryset of the related model filtered "
    "with __in) and combine the results in Python."
)


def _relation(field) -> str:
    forward = getattr(field, "field", field)
    source = forward.model._meta.auto_created
    if source:
        # The key of a CrossDatabaseManyToManyField's through model: name the field.
        for m2m in source._meta.local_many_to_many:
            if m2m.remote_field.through is forward.model:
                return f"{source._meta.label}.{m2m.name}"
    name = field.name if field is forward else forward.related_query_name()
    owner = forward.model if field is forward else forward.related_model
    return f"{owner._meta.label}.{name}"


def crossing_error(model, names, field) -> CrossDatabaseQueryError:
    """Return the error for a path that cannot be answered across ``field``."""
    path = LOOKUP_SEP.join(names)
    label = model._meta.label if model is not None else "a query"
    far = field.related_model
    return CrossDatabaseQueryError(
        f"{label}: {path!r} reaches across the crossdb relation {_relation(field)} into "
        f"{far._meta.label} on database {routing.db_for_read(far)!r}; SQL on one "
        f"database cannot read it. {ALTERNATIVES}"
    )


def _trimmed(path, targets) -> bool:
    """Return True when Django's trim_joins() drops every JOIN of ``path`` to ``targets``."""
    columns = {target.column for target in targets}
    for info in reversed(path):
        if not info.direct or info.filtered_relation:
            return False
        if not columns <= {target.column for target in info.join_field.foreign_related_fields}:
            return False
        columns = {
            local.column
            for local, remote in info.join_field.related_fields
            if remote.column in columns
        }
    return True


def checked_names_to_path(original):
    def names_to_path(self, names, opts, allow_many=True, fail_on_missing=False):
        path, final_field, targets, rest = original(self, names, opts, allow_many, fail_on_missing)
        for position, info in enumerate(path):
            if not is_crossdb_field(info.join_field):
                continue
            # Forward hops ending on the key (author, restaurant__place when the
            # target's pk is itself a relation): trim_joins() drops the JOINs and
            # Django reads the local column.
            if _trimmed(path[position:], targets):
                continue
            raise crossing_error(self.model, names[: len(names) - len(rest)], info.join_field)
        return path, final_field, targets, rest

    names_to_path.crossdb_original = original
    return names_to_path


def _crossdb_model(model) -> bool:
    label = model._meta.concrete_model._meta.label_lower
    return any(label == pair[0] for pair in routing._cross_pairs)


def checked_subquery(original):
    def resolve_expression(self, query, *args, **kwargs):
        outer = getattr(query, "model", None)
        inner = self.model
        if (
            outer is not None
            and inner is not None
            and (_crossdb_model(inner) or _crossdb_model(outer))
            and routing.db_for_read(inner) != routing.db_for_read(outer)
        ):
            raise CrossDatabaseQueryError(
                f"A queryset of {inner._meta.label} (database "
                f"{routing.db_for_read(inner)!r}) is used as a subquery of a query on "
                f"{outer._meta.label} (database {routing.db_for_read(outer)!r}); one "
                "database cannot run the other's SQL. Filter across the relation with a "
                "lookup (author__in=queryset, author__username=...), which crossdb "
                "evaluates on each database, or evaluate the inner queryset first."
            )
        return original(self, query, *args, **kwargs)

    resolve_expression.crossdb_original = original
    return resolve_expression


def checked_join(original):
    def as_sql(self, compiler, connection):
        if is_crossdb_field(self.join_field):
            field = self.join_field
            raise CrossDatabaseQueryError(
                f"A JOIN along the crossdb relation {_relation(field)} was about to be "
                f"sent to database {compiler.using!r} (table {self.table_name!r}); "
                f"{ALTERNATIVES}"
            )
        return original(self, compiler, connection)

    as_sql.crossdb_original = original
    return as_sql


def checked_select_related_descend(original):
    def select_related_descend(field, restricted, requested, select_mask):
        if is_crossdb_field(field):
            name = getattr(field, "name", None)
            if restricted and name in requested:
                raise CrossDatabaseQueryError(
                    f"select_related({name!r}) reached the SQL compiler for "
                    f"{_relation(field)}; use QuerySet.select_related(), which crossdb "
                    "carries out as a prefetch on the other database."
                )
            # select_related() without arguments follows every non-null
            # ForeignKey; never across databases.
            return False
        return original(field, restricted, requested, select_mask)

    select_related_descend.crossdb_original = original
    return select_related_descend
