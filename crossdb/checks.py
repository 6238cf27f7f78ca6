"""System checks (``manage.py check``) for crossdb fields and routing settings.

IDs are grouped by area and listed with an example in ``docs/checks.rst``:

- ``crossdb.E001``-``E004`` / ``W001``-``W002``: each crossdb field;
- ``crossdb.E101``-``E103`` / ``W101``: the ``DATABASE_ROUTING_RULES`` setting;
- ``crossdb.E201``-``E204``: many-to-many relations and GenericForeignKeys across databases.

Whether the target is an installed, concrete model is Django's own check
(``fields.E300``); crossdb skips fields whose target did not resolve.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import models, router
from django.db.models.base import ModelState
from django.utils.module_loading import import_string

from crossdb import routing
from crossdb.fields import is_crossdb_field
from crossdb.m2m import is_crossdb_many_to_many
from crossdb.routers import AppLabelRouter
from crossdb.transport import STRING_KEYS

# The on_delete rules crossdb's deletion carries out across databases.
SUPPORTED_ON_DELETE = (
    models.CASCADE,
    models.PROTECT,
    models.RESTRICT,
    models.SET_NULL,
    models.SET_DEFAULT,
    models.DO_NOTHING,
)


def _label(field) -> str:
    return f"{field.model._meta.label}.{field.name}"


def _is_set_rule(on_delete) -> bool:
    """Return True for the function ``models.SET(value)`` builds."""
    deconstruct = getattr(on_delete, "deconstruct", None)
    return deconstruct is not None and deconstruct()[0] == "django.db.models.SET"


def on_delete_name(on_delete) -> str:
    """Return how ``on_delete`` is written in a model: ``CASCADE``, ``SET(...)``."""
    if _is_set_rule(on_delete):
        return "SET(...)"
    return getattr(on_delete, "__name__", repr(on_delete))


def _placed(model, alias: str):
    """Return an unsaved ``model`` instance that says it lives on ``alias``."""
    # Built without __init__: a check must not run the fields' default
    # callables (a default may query or write). Routers look at the class and _state.
    instance = model.__new__(model)
    instance._state = ModelState()
    instance._state.db = alias
    return instance


class _Route:
    """Where the routers place one model: read and write alias, and whether deliberately."""

    def __init__(self, model):
        self.model = model
        self.read = routing.db_for_read(model)
        self.write = routing.db_for_write(model)
        self.explicit = any(self._explicit(action) for action in ("db_for_read", "db_for_write"))

    def _explicit(self, action: str) -> bool:
        # AppLabelRouter answers "default" for apps without a rule: that is a
        # fallback too, not a decision about this model.
        rules = _routing_rules()
        for candidate in router.routers:
            method = getattr(candidate, action, None)
            answer = method(self.model) if method is not None else None
            if answer is None or answer == "":
                continue
            return not (
                isinstance(candidate, AppLabelRouter) and self.model._meta.app_label not in rules
            )
        return False

    @property
    def aliases(self) -> set[str]:
        return {self.read, self.write}


def _routing_rules():
    rules = getattr(settings, "DATABASE_ROUTING_RULES", None)
    return rules if isinstance(rules, dict) else {}


def check_field(field) -> list[checks.CheckMessage]:
    """Return the crossdb check messages for one crossdb field."""
    target = field.remote_field.model
    if isinstance(target, str) or target._meta.swapped or target._meta.abstract:
        # Unresolved, swapped or abstract target: Django's fields.E300/E301.
        return []
    errors = [*_check_db_constraint(field), *_check_on_delete(field)]
    source_route, target_route = _Route(field.model), _Route(target)
    alias_errors = _check_aliases(field, source_route, target_route)
    if alias_errors:
        # The other checks would place instances on aliases that do not exist.
        return [*errors, *alias_errors]
    return [
        *errors,
        *_check_relation_allowed(field, source_route, target_route),
        *_check_same_alias(field, source_route, target_route),
    ]


def _check_db_constraint(field):
    if not getattr(field, "crossdb_db_constraint_requested", False):
        return []
    return [
        checks.Error(
            f"{_label(field)} passes db_constraint=True, but a crossdb field never has a "
            "database constraint: the target table may be in another database.",
            hint="Remove db_constraint=True; run crossdb_audit to find dangling references.",
            obj=field,
            id="crossdb.E001",
        )
    ]


def _check_on_delete(field):
    # Django's own rules only tell the collector what to do; crossdb carries
    # that out on every alias at once, after collecting.  A home-made rule may
    # write while collecting, outside crossdb's all-or-nothing delete.
    on_delete = field.remote_field.on_delete
    if (
        on_delete in SUPPORTED_ON_DELETE
        or _is_set_rule(on_delete)
        or getattr(on_delete, "crossdb_supported", False)
    ):
        return []
    return [
        checks.Error(
            f"{_label(field)} has on_delete={on_delete_name(on_delete)}, which crossdb cannot "
            "carry out across databases.",
            hint="Use CASCADE, PROTECT, RESTRICT, SET_NULL, SET_DEFAULT, SET(...) or "
            "DO_NOTHING. A rule of your own that only calls the collector's methods "
            "(collect, add_field_update, add_restricted_objects) and never writes itself "
            "can be marked with crossdb_supported = True.",
            obj=field,
            id="crossdb.E004",
        )
    ]


def _check_aliases(field, source_route, target_route):
    errors = []
    for end, route in (("source", source_route), ("target", target_route)):
        for alias in sorted(route.aliases - set(settings.DATABASES)):
            errors.append(
                checks.Error(
                    f"The routers send {route.model._meta.label} (the {end} of "
                    f"{_label(field)}) to the database {alias!r}, which is not in DATABASES.",
                    hint=f"Add {alias!r} to DATABASES or fix the router or "
                    "DATABASE_ROUTING_RULES entry that names it.",
                    obj=field,
                    id="crossdb.E003",
                )
            )
    return errors


def _check_relation_allowed(field, source_route, target_route):
    source = _placed(field.model, source_route.write)
    target = _placed(target_route.model, target_route.write)
    # The descriptor asks (target, source); a router may not be symmetric.
    if (
        routing.relation_answer(target, source) is not False
        and routing.relation_answer(source, target) is not False
    ):
        return []
    return [
        checks.Error(
            f"The database routers refuse the relation {_label(field)} between "
            f"{field.model._meta.label} on {source_route.write!r} and "
            f"{target_route.model._meta.label} on {target_route.write!r}.",
            hint="Make the routers' allow_relation() return True (or None) for this pair.",
            obj=field,
            id="crossdb.E002",
        )
    ]


def _check_same_alias(field, source_route, target_route):
    aliases = source_route.aliases | target_route.aliases
    if len(aliases) != 1:
        return []
    (alias,) = aliases
    if not (source_route.explicit or target_route.explicit):
        return [
            checks.Warning(
                f"No database router places either end of {_label(field)} "
                f"({field.model._meta.label} or {target_route.model._meta.label}): both "
                f"fall back to {alias!r}.",
                hint=f"Route {field.model._meta.app_label!r} or "
                f"{target_route.model._meta.app_label!r} to its database (for example in "
                "DATABASE_ROUTING_RULES), or use a ForeignKey.",
                obj=field,
                id="crossdb.W002",
            )
        ]
    return [
        checks.Warning(
            f"Both ends of {_label(field)} always route to {alias!r}.",
            hint="A models.ForeignKey keeps its database constraint and JOINs; use it "
            "unless the two models are meant to live in different databases.",
            obj=field,
            id="crossdb.W001",
        )
    ]


def crossdb_fields(models_=None):
    """Yield every crossdb field declared on ``models_`` (default: all installed models).

    The default includes the through models a ``CrossDatabaseManyToManyField``
    creates: their key to the target is a crossdb field.
    """
    for model in apps.get_models(include_auto_created=True) if models_ is None else models_:
        for field in model._meta.local_fields:
            if is_crossdb_field(field):
                yield field


def check_models(models_) -> list[checks.CheckMessage]:
    """Return the crossdb check messages for the crossdb fields of ``models_``."""
    return [message for field in crossdb_fields(models_) for message in check_field(field)]


@checks.register(checks.Tags.models)
def check_crossdb_fields(app_configs=None, **kwargs):
    """Check every crossdb field of the installed models (or of ``app_configs``).

    Auto-created through models are included: a ``CrossDatabaseManyToManyField``'s
    key to its target is a crossdb field.
    """
    if app_configs is None:
        models_ = apps.get_models(include_auto_created=True)
    else:
        models_ = [
            model
            for app_config in app_configs
            for model in app_config.get_models(include_auto_created=True)
        ]
    return check_models(models_)


@checks.register()
def check_routing_rules(app_configs=None, **kwargs):
    """Check ``DATABASE_ROUTING_RULES`` against DATABASES, INSTALLED_APPS and the routers."""
    rules = getattr(settings, "DATABASE_ROUTING_RULES", None)
    if rules is None:
        return []
    if not isinstance(rules, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in rules.items()
    ):
        return [
            checks.Error(
                f"DATABASE_ROUTING_RULES must map app labels to database aliases "
                f"(strings), not {rules!r}.",
                hint='For example: DATABASE_ROUTING_RULES = {"blog": "blog_db"}.',
                id="crossdb.E101",
            )
        ]
    errors = []
    labels = {app_config.label for app_config in apps.get_app_configs()}
    for app_label, alias in rules.items():
        if alias not in settings.DATABASES:
            errors.append(
                checks.Error(
                    f"DATABASE_ROUTING_RULES sends {app_label!r} to the database {alias!r}, "
                    "which is not in DATABASES.",
                    hint=f"Add {alias!r} to DATABASES or correct the rule.",
                    id="crossdb.E102",
                )
            )
        if app_label not in labels:
            errors.append(
                checks.Error(
                    f"DATABASE_ROUTING_RULES names the app label {app_label!r}, which is not "
                    "an installed app.",
                    hint="Rules take app labels (the last part of the app's module by "
                    "default, e.g. 'blog'), not module paths.",
                    id="crossdb.E103",
                )
            )
    if rules and not _app_label_router_installed():
        errors.append(
            checks.Warning(
                "DATABASE_ROUTING_RULES is set, but no crossdb.routers.AppLabelRouter is in "
                "DATABASE_ROUTERS, so crossdb's router does not apply the rules.",
                hint="Add 'crossdb.routers.AppLabelRouter' to DATABASE_ROUTERS, or silence "
                "crossdb.W101 if a router of your own reads the setting.",
                id="crossdb.W101",
            )
        )
    return errors


def _app_label_router_installed() -> bool:
    for entry in settings.DATABASE_ROUTERS:
        if isinstance(entry, str):
            try:
                entry = import_string(entry)
            except ImportError:
                continue
        cls = entry if isinstance(entry, type) else type(entry)
        if issubclass(cls, AppLabelRouter):
            return True
    return False


__all__ = [
    "SUPPORTED_ON_DELETE",
    "check_crossdb_fields",
    "check_field",
    "check_models",
    "check_routing_rules",
    "crossdb_fields",
    "on_delete_name",
]


def _engine_vendor(alias: str) -> str | None:
    engine = settings.DATABASES.get(alias, {}).get("ENGINE", "")
    return next((vendor for vendor in ("mysql", "postgresql", "sqlite") if vendor in engine), None)


def _compares_by_collation(field, vendor) -> bool:
    collation = getattr(field, "db_collation", None) or ""
    exact = "nopad_bin" in collation or collation.endswith("_0900_bin")
    return vendor == "mysql" and field.get_internal_type() in STRING_KEYS and not exact


def _check_key_comparison(field, databases):
    """Warn when the two ends of a string-keyed relation compare keys differently."""
    target_field = field.target_field
    if target_field.get_internal_type() not in STRING_KEYS:
        return []
    source_alias = _Route(field.model).write
    target_alias = _Route(field.remote_field.model).write
    if not {source_alias, target_alias} & set(databases):
        return []
    # The reference column takes the target column's type and collation.
    source_loose = _compares_by_collation(target_field, _engine_vendor(source_alias))
    target_loose = _compares_by_collation(target_field, _engine_vendor(target_alias))
    if source_loose == target_loose:
        return []
    if source_loose:
        message = (
            f"{_label(field)} holds keys in a MySQL/MariaDB column whose collation ignores "
            f"case, accents or trailing spaces, but its target {_label(target_field)} compares "
            "them exactly: crossdb narrows every comparison on that column by a binary, "
            "no-pad one, so 'ANN' and 'ann ' are not taken for 'ann'."
        )
        hint = "Give the column a binary collation (db_collation='utf8mb4_nopad_bin') to drop it."
    else:
        message = (
            f"{_label(field)} compares keys exactly, but its target {_label(target_field)} "
            "is on MySQL/MariaDB under a collation that ignores case, accents or trailing "
            "spaces: a reference spelled differently from the target's key ('ANN' for 'ann') "
            "is accepted, but is not deleted or updated with it; crossdb_audit reports it "
            "once the target row is gone."
        )
        hint = (
            "Give the target column a binary collation (db_collation='utf8mb4_nopad_bin'), "
            "or store the keys in one spelling."
        )
    return [checks.Warning(message, hint=hint, obj=field, id="crossdb.W003")]


@checks.register(checks.Tags.database)
def check_key_comparison(app_configs=None, databases=None, **kwargs):
    """Check that both ends of each string-keyed crossdb relation compare keys alike."""
    # A database check: run by migrate and ``check --database``, since the
    # answer depends on where the ends are.
    if not databases:
        return []
    if app_configs is None:
        models_ = apps.get_models()
    else:
        models_ = [model for app_config in app_configs for model in app_config.get_models()]
    messages = []
    for field in crossdb_fields(models_):
        target = field.remote_field.model
        if not isinstance(target, str) and not target._meta.swapped:
            messages.extend(_check_key_comparison(field, databases))
    return messages


def _many_to_many_across(model) -> list[checks.CheckMessage]:
    messages = []
    for field in model._meta.local_many_to_many:
        target = field.remote_field.model
        through = field.remote_field.through
        if isinstance(target, str) or isinstance(through, str) or model._meta.abstract:
            continue  # unresolved: Django's fields.E300/E331
        if is_crossdb_many_to_many(field):
            messages.extend(_check_crossdb_many_to_many(field))
            continue
        ends = {label: _Route(end) for label, end in (("source", model), ("target", target))}
        if not through._meta.auto_created:
            ends["through"] = _Route(through)
        places = {end.model._meta.label: sorted(end.aliases) for end in ends.values()}
        if len({tuple(aliases) for aliases in places.values()}) == 1:
            continue
        where = ", ".join(f"{label} on {aliases}" for label, aliases in places.items())
        messages.append(
            checks.Error(
                f"{_label(field)} is a ManyToManyField across databases ({where}): Django "
                "JOINs its through table and the target in one query, which one database "
                "cannot answer.",
                hint=(
                    "Use crossdb.CrossDatabaseManyToManyField, with the same arguments "
                    "(its through model, if you declare one, keeps a "
                    "CrossDatabaseForeignKey to the target) (docs/checks.rst, crossdb.E201)."
                ),
                obj=field,
                id="crossdb.E201",
            )
        )
    return messages


def _check_crossdb_many_to_many(field) -> list[checks.CheckMessage]:
    """Check a ``CrossDatabaseManyToManyField``: db_constraint, and its explicit through model."""
    messages = list(_check_db_constraint(field))
    through = field.remote_field.through
    if through._meta.auto_created:
        return messages
    try:
        source_key = through._meta.get_field(field.m2m_field_name())
        target_key = through._meta.get_field(field.m2m_reverse_field_name())
    except Exception:  # noqa: BLE001 - Django's fields.E33x report a through without keys
        return messages
    source, through_route = _Route(field.model), _Route(through)
    target = _Route(field.remote_field.model)
    if through_route.aliases != source.aliases or is_crossdb_field(source_key):
        messages.append(
            checks.Error(
                f"{_label(field)}: the through model {through._meta.label} routes to "
                f"{sorted(through_route.aliases)}, not with its source "
                f"{field.model._meta.label} on {sorted(source.aliases)}, or reaches it by a "
                "crossdb key; crossdb reads the through rows with the source.",
                hint=(
                    f"Route {through._meta.label} with {field.model._meta.label} and give it an "
                    "ordinary ForeignKey to it (docs/checks.rst, crossdb.E203)."
                ),
                obj=field,
                id="crossdb.E203",
            )
        )
    if target.aliases != through_route.aliases and not is_crossdb_field(target_key):
        messages.append(
            checks.Error(
                f"{_label(field)}: the through model's key {through._meta.label}."
                f"{target_key.name} is a plain {type(target_key).__name__} to "
                f"{field.remote_field.model._meta.label} on {sorted(target.aliases)}, another "
                "database than the through rows.",
                hint=("Make it a CrossDatabaseForeignKey (docs/checks.rst, crossdb.E204)."),
                obj=field,
                id="crossdb.E204",
            )
        )
    return messages


def _generic_foreign_keys_across(model) -> list[checks.CheckMessage]:
    if not apps.is_installed("django.contrib.contenttypes"):
        return []
    from django.contrib.contenttypes.fields import GenericForeignKey
    from django.contrib.contenttypes.models import ContentType

    messages = []
    for field in model._meta.private_fields:
        if not isinstance(field, GenericForeignKey) or model._meta.abstract:
            continue
        source = _Route(model)
        # Django reads the content type on the row's own alias (db_manager(obj._state.db)).
        if all(router.allow_migrate_model(alias, ContentType) for alias in source.aliases):
            continue
        content_types = _Route(ContentType)
        messages.append(
            checks.Error(
                f"{model._meta.label}.{field.name} is a GenericForeignKey on "
                f"{sorted(source.aliases)}, but the routers place ContentType's table on "
                f"{sorted(content_types.aliases)}: Django reads the content type on the "
                "row's own alias, where its table is missing.",
                hint=(
                    "Route contenttypes to that alias too (db_for_read and allow_migrate), "
                    "or keep the model with its GenericForeignKey beside ContentType "
                    "(docs/checks.rst, crossdb.E202)."
                ),
                obj=model,
                id="crossdb.E202",
            )
        )
    return messages


@checks.register(checks.Tags.models)
def check_relations_across(app_configs=None, **kwargs):
    """Check Django relations that cannot span databases: plain M2M, GenericForeignKey."""
    if app_configs is None:
        models_ = apps.get_models()
    else:
        models_ = [model for app_config in app_configs for model in app_config.get_models()]
    return check_relations(models_)


def check_relations(models_) -> list[checks.CheckMessage]:
    """Return the messages for plain M2M fields and GenericForeignKeys of ``models_``."""
    return [
        message
        for model in models_
        for message in (*_many_to_many_across(model), *_generic_foreign_keys_across(model))
    ]
