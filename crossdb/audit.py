"""Find dangling references: ids in a crossdb column with no row in the target table.

No database constraint guards a crossdb field, so a target row deleted
outside the ORM (or an alias failing between the commits of a cross-database
delete) leaves references to nothing.  ``audit_field()`` finds them with
bounded memory, whatever the table sizes:

1. the source alias gives the distinct non-null values of the column in
   sorted chunks (keyset pagination: ``WHERE col > last ORDER BY col LIMIT n``),
   DISTINCT, order and ``>`` all under the transport's exact comparison
   (``crossdb.transport.ExactKey``), so collation twins are each checked;
2. the target alias is asked which of the chunk's values exist (one
   ``crossdb.lookups.ids_in`` query per chunk, values the target column cannot
   hold match nothing); the rest dangle.  A target that compares by collation
   (MySQL/MariaDB ``_ci``) is asked again value by value for those, so a
   reference spelled ``'ANN'`` to a target row ``'ann'`` is not called dangling.

Both ends are read and written on their models' primary aliases
(``db_for_write``), never on a read replica.

At most one chunk of values is held at a time.  With ``fix=True`` each chunk's
dangling rows get the field's own ``on_delete`` rule once the target alias has
confirmed again that the values are missing: CASCADE deletes the rows through
the ORM (so their own dependents cascade), SET_NULL / SET_DEFAULT / SET()
update them, PROTECT / RESTRICT / DO_NOTHING are reported only.

``manage.py crossdb_audit`` is the command-line front end; benchmarks call
``audit_field()`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field

from django.db import models
from django.db.models import F, ProtectedError, RestrictedError

from crossdb import routing, transport
from crossdb.checks import crossdb_fields, on_delete_name
from crossdb.lookups import ids_in
from crossdb.m2m import is_crossdb_many_to_many

DEFAULT_CHUNK_SIZE = 5000
DEFAULT_SAMPLE_SIZE = 5

# What --fix does for each rule; anything else is reported only.
ACTIONS = {
    models.CASCADE: "delete",
    models.SET_NULL: "set null",
    models.SET_DEFAULT: "set default",
}


@dataclass
class FieldAudit:
    """What the audit found (and fixed) for one crossdb field."""

    model: str
    field: str
    source_alias: str
    target: str
    target_alias: str
    on_delete: str
    action: str
    checked: int = 0
    dangling_values: int = 0
    dangling_rows: int = 0
    fixed_rows: int = 0
    samples: list = dataclass_field(default_factory=list)
    errors: list = dataclass_field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model}.{self.field}"

    @property
    def clean(self) -> bool:
        """Return True when nothing dangles any more (none found, or all fixed)."""
        return self.dangling_rows == self.fixed_rows

    def as_dict(self) -> dict:
        return {**asdict(self), "samples": [_jsonable(value) for value in self.samples]}


def _jsonable(value):
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def action_for(field) -> str:
    """Return what ``fix=True`` does to ``field``'s dangling rows."""
    on_delete = field.remote_field.on_delete
    if on_delete in ACTIONS:
        return ACTIONS[on_delete]
    if on_delete_name(on_delete) == "SET(...)":
        return "set"
    return "report"


def _set_value(field):
    """Return the value SET_DEFAULT / SET(...) writes into ``field``."""
    on_delete = field.remote_field.on_delete
    if on_delete is models.SET_DEFAULT:
        return field.get_default()
    _path, (value,), _kwargs = on_delete.deconstruct()
    return value() if callable(value) else value


def iter_value_chunks(queryset, column: str, chunk_size: int) -> Iterator[list]:
    """Yield the distinct non-null values of ``column`` in sorted chunks (keyset pagination)."""
    field = queryset.model._meta.get_field(column)
    base = (
        queryset.filter(**{f"{column}__isnull": False})
        .annotate(crossdb_key=transport.ExactKey(F(column), field))
        .order_by("crossdb_key")
        .values_list("crossdb_key", flat=True)
        .distinct()
    )
    last = None
    while True:
        page = base if last is None else base.filter(crossdb_key__gt=last)
        chunk = list(page[:chunk_size])
        if not chunk:
            return
        yield chunk
        if len(chunk) < chunk_size:
            return
        last = chunk[-1]


def _missing(target_queryset, column: str, values: list) -> list:
    found = set(target_queryset.filter(ids_in(column, values)).values_list(column, flat=True))
    return [value for value in values if value not in found]


def _still_missing(target_queryset, column: str, values: list) -> list:
    """Return the ``values`` no target row equals under the target's own collation."""
    # 'ANN' refers to a row 'ann' on a _ci target: asked one by one, and only
    # for the few values not found exactly.
    return [value for value in values if not target_queryset.filter(**{column: value}).exists()]


def audit_field(
    field,
    *,
    fix: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    progress: Callable[[FieldAudit], None] | None = None,
) -> FieldAudit:
    """Compare one crossdb field's values with its target table; fix if asked."""
    source, target = field.model, field.remote_field.model
    source_alias = routing.db_for_write(source)
    target_alias = routing.db_for_write(target)
    report = FieldAudit(
        model=source._meta.label,
        field=field.name,
        source_alias=source_alias,
        target=target._meta.label,
        target_alias=target_alias,
        on_delete=on_delete_name(field.remote_field.on_delete),
        action=action_for(field),
    )
    sources = source._base_manager.using(source_alias)
    targets = target._base_manager.using(target_alias)
    column, target_column = field.attname, field.target_field.attname
    exact = transport.target_compares_exactly(field)
    for chunk in iter_value_chunks(sources, column, chunk_size):
        report.checked += len(chunk)
        missing = _missing(targets, target_column, chunk)
        if missing and not exact:
            missing = _still_missing(targets, target_column, missing)
        if missing:
            report.dangling_values += len(missing)
            report.dangling_rows += sources.filter(ids_in(column, missing)).count()
            report.samples.extend(missing[: max(0, sample_size - len(report.samples))])
            if fix and report.action != "report":
                # Asked again right before writing: a target row created
                # meanwhile makes its references valid again.
                missing = _missing(targets, target_column, missing)
                if missing and not exact:
                    missing = _still_missing(targets, target_column, missing)
                if missing:
                    try:
                        report.fixed_rows += _fix(field, sources.filter(ids_in(column, missing)))
                    except (ProtectedError, RestrictedError) as error:
                        # Nothing of this chunk was deleted: the collector
                        # raises before writing.  Later chunks are still tried.
                        message = f"{type(error).__name__}: {error.args[0]}"
                        if message not in report.errors:
                            report.errors.append(message)
        if progress is not None:
            progress(report)
    return report


def _fix(field, dangling) -> int:
    """Apply ``field``'s on_delete to the ``dangling`` rows; return how many rows changed."""
    action = action_for(field)
    if action == "delete":
        # The ORM's delete, not a raw one: the rows' own dependents cascade
        # and the delete signals fire.
        _total, per_model = dangling.delete()
        return per_model.get(field.model._meta.label, 0)
    value = None if action == "set null" else _set_value(field)
    return dangling.update(**{field.name: value})


def _with_through_models(models_: Iterable) -> list:
    """Return ``models_`` and the through models their crossdb many-to-many fields created."""
    found = []
    for model in models_:
        found.append(model)
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if is_crossdb_many_to_many(field) and through._meta.auto_created:
                found.append(through)
    return found


def select_fields(models_: Iterable | None = None, names: Iterable[str] | None = None) -> list:
    """Return the crossdb fields of ``models_`` (default: all), optionally by name, sorted.

    A model's crossdb many-to-many fields bring their auto-created through
    models' crossdb keys along (``m2m.Article`` audits ``m2m.Article_tags.tag``).
    """
    names = set(names or ())
    if models_ is not None:
        models_ = _with_through_models(models_)
    fields = [
        field
        for field in crossdb_fields(models_)
        if not isinstance(field.remote_field.model, str) and (not names or field.name in names)
    ]
    return sorted(fields, key=lambda field: (field.model._meta.label, field.name))


def audit(
    models_: Iterable | None = None, names: Iterable[str] | None = None, **options
) -> list[FieldAudit]:
    """Audit every crossdb field (or those of ``models_`` named ``names``)."""
    return [audit_field(field, **options) for field in select_fields(models_, names)]
