"""Every place crossdb reaches into Django internals, installed from ``ready()``.

Each seam is named here with what it relies on; ``tests/test_seams.py`` fails
loudly if a Django upgrade moves any of it.  Django 6.x: re-check each entry.

- ``routing``: wraps ``django.db.utils.ConnectionRouter.db_for_read``,
  ``db_for_write`` and ``allow_relation`` so that, for the two ends of a
  crossdb field, an abstaining router chain means the instance's alias when the
  target's table lives there (``allow_migrate``), else ``default`` (never the
  other end's alias), and no router refusing means the relation is allowed.
- ``deletion``: wraps ``django.db.models.deletion.Collector``'s overridable ``collect``,
  ``related_objects``, ``get_del_batches``, ``add``, ``add_field_update`` and ``delete``, each
  calling Django's own (``crossdb.deletion``; pinned by ``tests/test_deletion_seam.py``).
- ``query``: wraps ``Aggregate.resolve_expression``, ``Exists.resolve_expression``,
  ``Query.add_q``, ``Q.resolve_expression``, ``Query.names_to_path``,
  ``Query.resolve_expression``, ``Join.as_sql``, ``sql.compiler.select_related_descend``,
  ``QuerySet.select_related``, ``order_by``, ``_values``, ``values``, ``values_list``,
  ``Query.add_distinct_fields``, ``set_group_by`` and ``sql_with_params`` (``str(query)``
  shows an id set as its far subquery, reading nothing), ``RawSQL.as_sql`` and
  ``ExtraWhere.as_sql`` (raw SQL naming a table across), and registers the ``crossdb_ids``
  lookup (``crossdb.query``; pinned by ``tests/test_query_seam.py`` and
  ``tests/test_aggregates_seam.py``).
- ``serializers``: wraps ``django.core.serializers.base.deserialize_fk_value`` and
  ``xml_serializer.Deserializer._handle_fk_field_node`` so natural foreign keys of crossdb
  fields are looked up on the target's alias (``crossdb.serializers``; pinned by
  ``tests/test_fixtures.py``).
- ``m2m_fixtures``: wraps ``django.core.serializers.base.deserialize_m2m_values`` and
  ``xml_serializer.Deserializer._handle_m2m_field_node`` so natural keys of a
  ``CrossDatabaseManyToManyField``'s targets are looked up on the target's alias
  (``crossdb.m2m.fixtures``; pinned by ``tests/test_m2m_integration.py``).
- ``integrity``: wraps ``SQLInsertCompiler.execute_sql`` and ``SQLUpdateCompiler.execute_sql``
  (check the targets of crossdb key columns written) and ``BaseDatabaseWrapper.commit``,
  ``rollback``, ``close`` and ``savepoint_rollback`` (run deferred checks just before the
  commit, drop them with the writes undone) (``crossdb.integrity``; pinned by
  ``tests/test_integrity_seam.py``).
"""

from __future__ import annotations

from crossdb import deletion, integrity, query, routing
from crossdb import serializers as crossdb_serializers
from crossdb.m2m import fixtures as m2m_fixtures

SEAMS = {
    "routing": (routing.install, routing.installed),
    "query": (query.install, query.installed),
    "deletion": (deletion.install, deletion.installed),
    "serializers": (crossdb_serializers.install, crossdb_serializers.installed),
    "integrity": (integrity.install, integrity.installed),
    "m2m_fixtures": (m2m_fixtures.install, m2m_fixtures.installed),
}


def install_all() -> None:
    """Install every seam (idempotent)."""
    for install, _installed in SEAMS.values():
        install()


def installed() -> dict[str, bool]:
    """Return ``{seam name: installed?}``."""
    return {name: check() for name, (_install, check) in SEAMS.items()}
