"""Carry key values read on one database into a query on another, compared exactly.

A crossdb reference points at the target row whose key equals the stored
value as the target's database compares it.  Every path that carries ids
between aliases (lookups across, prefetch, ordering, deletion, the audit)
renders its ``column IN ids`` through this module, which:

- converts each value through the column's field on the connection it is sent
  to (``get_db_prep_value``), as Django's own lookups do;
- drops the values the column cannot hold (integers out of its range, strings
  longer than ``max_length`` where the engine enforces it, NUL characters on
  PostgreSQL): they match nothing, as Django's ``In`` would answer, instead of
  raising a driver error or being truncated by a cast;
- on MySQL/MariaDB, narrows the collation-aware ``IN`` (which the index serves)
  by a binary, no-pad comparison when the column is the source of a crossdb
  relation whose target compares exactly (PostgreSQL, SQLite, a binary
  collation), so ``'ANN'``, ``'ann '`` and ``'Ánn'`` are not taken for ``'ann'``;
- carries the set as one parameter where the backend can (a PostgreSQL array
  of the column's own type, a JSON text on SQLite, NUL-bearing strings as hex
  beside it), and on MySQL/MariaDB as one statement under the server's
  ``max_allowed_packet``, or through a temporary table beyond it.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from operator import itemgetter

from django.db import DatabaseError, connections
from django.db.models import Func

from crossdb import routing

# The binary, no-pad collation of utf8mb4 by server family.
_EXACT_COLLATION = {True: "utf8mb4_nopad_bin", False: "utf8mb4_0900_bin"}
# Statements below this size never need the server's packet limit (whose
# minimum default is 1 MiB in MySQL 5.x and 16 MiB in MariaDB 10.2+).
_SMALL_STATEMENT = 512 * 1024
# Temporary id tables kept per connection; older ones are dropped.
_KEPT_TABLES = 4
_table_numbers = itertools.count(1)


def column_field(field):
    """Return the field whose column type holds ``field``'s values (the target of a relation)."""
    while getattr(field, "target_field", None) is not None and field.is_relation:
        field = field.target_field
    return field


def _is_crossdb(field) -> bool:
    return getattr(field, "crossdb", False) is True


def _collation_is_exact(collation: str | None) -> bool:
    return bool(collation) and ("nopad_bin" in collation or collation.endswith("_0900_bin"))


def target_compares_exactly(field) -> bool:
    """Return True when the target of crossdb ``field`` compares its key byte for byte."""
    if column_field(field).get_internal_type() not in STRING_KEYS:
        return True  # numbers and UUIDs compare exactly everywhere
    target = field.remote_field.model
    connection = connections[routing.db_for_write(target)]
    if connection.vendor != "mysql":
        return True
    return _collation_is_exact(getattr(field.target_field, "db_collation", None))


# Key types MySQL/MariaDB compare under a collation.
STRING_KEYS = frozenset({"CharField", "TextField", "SlugField", "EmailField", "URLField"})


def narrows(field, connection) -> bool:
    """Return True when ``field``'s column on ``connection`` needs the exact comparison."""
    if connection.vendor != "mysql" or not _is_crossdb(field):
        return False
    column = column_field(field)
    if column.get_internal_type() not in STRING_KEYS:
        return False
    if _collation_is_exact(getattr(column, "db_collation", None)):
        return False
    return target_compares_exactly(field)


def exact_sql(sql: str, connection) -> str:
    """Return ``sql`` (a MySQL string expression) under the binary no-pad collation."""
    collation = _EXACT_COLLATION[bool(getattr(connection, "mysql_is_mariadb", True))]
    return f"CONVERT({sql} USING utf8mb4) COLLATE {collation}"


def holds(field, connection, value) -> bool:
    """Return True when ``field``'s column on ``connection`` can hold the prepared ``value``."""
    column = column_field(field)
    if isinstance(value, int) and not isinstance(value, bool):
        internal_type = column.get_internal_type()
        if internal_type not in connection.ops.integer_field_ranges:
            return True
        low, high = connection.ops.integer_field_range(internal_type)
        return (low is None or value >= low) and (high is None or value <= high)
    if isinstance(value, str):
        if connection.vendor == "postgresql" and "\x00" in value:
            return False
        max_length = getattr(column, "max_length", None)
        # SQLite stores longer strings in a varchar(n) column; the others cannot.
        if max_length and connection.vendor != "sqlite" and len(value) > max_length:
            return False
    return True


def prepare(field, connection, values) -> list:
    """Return ``values`` converted for ``field`` on ``connection``: distinct, held, no None."""
    prepared: dict = {}
    for value in values:
        if value is None:
            continue
        if hasattr(value, "resolve_expression"):
            raise TypeError("transport carries values, not expressions")
        # As Django's own lookups convert (get_prep_lookup, then
        # get_db_prep_lookup with prepared=True): an AutoField on MySQL takes 0
        # in a lookup, though not in an INSERT.
        value = field.get_db_prep_value(field.get_prep_value(value), connection, prepared=True)
        if value is not None and holds(field, connection, value):
            prepared[value] = None
    return list(prepared)


def render_in(lhs_sql: str, field, connection, values: list):
    """Return ``(sql, params)`` for ``lhs_sql IN values`` (prepared, non-empty), or None."""
    render = _RENDERERS.get(connection.vendor)
    return None if render is None else render(lhs_sql, field, connection, values)


def _postgresql(lhs_sql, field, connection, values):
    db_type = field.cast_db_type(connection)
    if db_type is None:
        return None
    # The column's own type without its modifier: varchar(20)[] or
    # numeric(5,2)[] would truncate or round the values into other keys.
    base_type = re.sub(r"\(.*?\)", "", db_type).strip()
    return f"{lhs_sql} = ANY(%s::{base_type}[])", (values,)


def _sqlite(lhs_sql, field, connection, values):
    if not all(isinstance(value, int | str) for value in values):
        return None
    # json_each() ends a string at its first NUL: such values travel as the
    # hex of their UTF-8 bytes and are compared with hex() of the column.
    plain, nul = [], []
    for value in values:
        if isinstance(value, str) and "\x00" in value:
            nul.append(value.encode().hex().upper())
        else:
            plain.append(value)
    parts, params = [], []
    if plain:
        parts.append(f"{lhs_sql} IN (SELECT value FROM json_each(%s))")
        params.append(json.dumps(plain))
    if nul:
        parts.append(f"hex({lhs_sql}) IN (SELECT value FROM json_each(%s))")
        params.append(json.dumps(nul))
    sql = parts[0] if len(parts) == 1 else f"({' OR '.join(parts)})"
    return sql, tuple(params)


def _mysql(lhs_sql, field, connection, values):
    exact = narrows(field, connection) and any(isinstance(value, str) for value in values)
    size = sum(len(str(value)) * 2 + 4 for value in values) * (2 if exact else 1)
    if size > _SMALL_STATEMENT and size > max_packet(connection) // 2:
        return _mysql_table(lhs_sql, field, connection, values, exact)
    placeholders = ", ".join(["%s"] * len(values))
    sql = f"{lhs_sql} IN ({placeholders})"
    if not exact:
        return sql, tuple(values)
    return (
        f"({sql} AND {exact_sql(lhs_sql, connection)} IN ({placeholders}))",
        (*values, *values),
    )


def max_packet(connection) -> int:
    """Return the server's ``max_allowed_packet`` (read once per connection)."""
    packet = getattr(connection, "crossdb_max_packet", None)
    if packet is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@max_allowed_packet")
            (packet,) = cursor.fetchone()
        connection.crossdb_max_packet = packet = int(packet)
    return packet


def _mysql_table(lhs_sql, field, connection, values, exact):
    """Load ``values`` into a temporary table; return the ``IN (SELECT ...)`` on it."""
    tables = connection.__dict__.setdefault("crossdb_id_tables", [])
    name = f"crossdb_ids_{next(_table_numbers)}"
    quote = connection.ops.quote_name
    if exact:
        longest = max(len(str(value)) for value in values)
        collation = _EXACT_COLLATION[bool(getattr(connection, "mysql_is_mariadb", True))]
        column = f"VARCHAR({max(longest, 1)})" if longest <= 16000 else "TEXT"
        create = f"(v {column} CHARACTER SET utf8mb4 COLLATE {collation}) ENGINE=InnoDB"
    else:
        # The column's own type and collation, copied: any other collation
        # would be an illegal mix in the comparison.
        source = f"{quote(field.model._meta.db_table)}"
        create = f"ENGINE=InnoDB SELECT {quote(field.column)} AS v FROM {source} LIMIT 0"
    with connection.cursor() as cursor:
        while len(tables) >= _KEPT_TABLES:
            cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {tables.pop(0)}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} {create}")
        tables.append(name)
        # mysqlclient packs the rows into multi-row INSERTs of at most 64 KiB.
        cursor.executemany(f"INSERT INTO {name} (v) VALUES (%s)", [(value,) for value in values])
    lhs = exact_sql(lhs_sql, connection) if exact else lhs_sql
    return f"{lhs} IN (SELECT v FROM {name})", ()


_RENDERERS = {"postgresql": _postgresql, "sqlite": _sqlite, "mysql": _mysql}
VENDORS = frozenset(_RENDERERS)


def equal_sql(lhs_sql: str, field, connection):
    """Return ``(sql, params)`` of ``lhs_sql = %s`` under the transport's comparison."""
    if narrows(field, connection):
        return f"({lhs_sql} = %s AND {exact_sql(lhs_sql, connection)} = %s)", 2
    return f"{lhs_sql} = %s", 1


class ExactKey(Func):
    """A key column as the transport compares it: under the exact collation where it narrows."""

    def __init__(self, expression, field):
        # The key column's own type: its values convert as the column's (a
        # UUID from SQLite's text), not as the relation's.
        super().__init__(expression, output_field=column_field(field))
        self.crossdb_field = field

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        if narrows(self.crossdb_field, connection):
            sql = exact_sql(sql, connection)
        return sql, params


# -- (key, value) pairs read as a derived table -------------------------------
#
# An aggregate computed on the far database arrives as rows ``(key, v0, v1,
# ...)``; the local database joins them as a table of its own, carried as one
# parameter per column (PostgreSQL arrays), one JSON text (SQLite
# ``json_each``, MySQL/MariaDB ``JSON_TABLE``), or, on MySQL/MariaDB beyond a
# few thousand rows, a temporary table with a primary key (``JSON_TABLE`` has
# no index: a join with it is a nested loop over both sides).

# Rows above which an indexed temporary table carries the pairs.  Neither
# SQLite (json_each, materialized without an index) nor MySQL/MariaDB
# (JSON_TABLE) index a table function, so a LEFT JOIN with one is a nested
# loop over both sides; measured on SQLite at 900 rows: 92 ms with json_each,
# 7 ms through a temporary table, its INSERTs included.
MYSQL_PAIRS_TABLE_ROWS = 500
SQLITE_PAIRS_TABLE_ROWS = 100
# Temporary pair tables kept per connection (one query may join several).
_KEPT_PAIR_TABLES = 16
# PostgreSQL's integer column types (cast_db_type()), read from text exactly.
_PG_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})
_INTEGER_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)


def _plain_integers(field, connection, values) -> bool:
    """Return True when ``values`` are ints ``field``'s column holds as they are (no conversion)."""
    if column_field(field).get_internal_type() not in _INTEGER_TYPES:
        return False
    # The types of 100k values in C (set, map), not a Python loop over them.
    types = set(map(type, values))
    types.discard(type(None))
    if not types:
        return True
    if types != {int}:
        return False
    present = [value for value in values if value is not None] if None in values else values
    return holds(field, connection, min(present)) and holds(field, connection, max(present))


def prepare_keys(field, connection, values) -> list:
    """Return each of ``values`` as ``prepare`` converts it, None where it is dropped.

    A column of integers the column holds is returned as it is: the rows of an
    aggregate number as many as the keys that have far rows.
    """
    if _plain_integers(field, connection, values):
        return list(values)
    return [next(iter(prepare(field, connection, [value])), None) for value in values]


def pair_column(field, connection, values) -> list:
    """Return ``values`` converted for a derived-table column of ``field``'s type."""
    if _plain_integers(field, connection, values):
        return list(values)
    return pair_values(field, connection, values)


def pair_values(field, connection, values) -> list:
    """Return ``values`` converted for a derived-table column of ``field``'s type."""
    converted = []
    for value in values:
        if value is not None:
            value = field.get_db_prep_value(value, connection, prepared=False)
        converted.append(value)
    return converted


def _mysql_column_type(field, connection, table=False) -> str:
    internal = column_field(field).get_internal_type()
    if internal in _INTEGER_TYPES or internal == "DurationField":
        return "BIGINT"
    if internal == "BooleanField":
        return "BIGINT"
    if internal == "FloatField":
        return "DOUBLE"
    if internal == "DecimalField":
        column = column_field(field)
        return f"DECIMAL(65, {column.decimal_places or 0})"
    if internal == "DateField":
        return "DATE"
    if internal == "DateTimeField":
        return "DATETIME(6)"
    if internal in STRING_KEYS:
        length = getattr(column_field(field), "max_length", None) or 16000
        return f"VARCHAR({length}) CHARACTER SET utf8mb4"
    if internal == "UUIDField":
        # MariaDB 10.7+ stores a UUIDField in its own UUID type (Django 5.0+).
        # JSON_TABLE has no UUID columns: the text form, which MariaDB compares
        # with a UUID column as a UUID.
        if not connection.features.has_native_uuid_field:
            return "CHAR(32)"
        return "UUID" if table else "CHAR(36)"
    return None


def _json_rows(rows) -> str:
    return json.dumps(rows, default=str, separators=(",", ":"))


def render_pairs(alias_sql: str, fields: list, connection, rows: list, unique: bool = True):
    """Return ``(sql, params)`` of a FROM item ``alias_sql`` with columns k, v0, v1...

    ``fields`` gives each column's field (key first); ``rows`` holds values
    already converted by ``pair_values`` (keys by ``prepare``).  None when
    the backend cannot carry them.  ``unique``: each key is on one row (a
    temporary table makes it the primary key; otherwise it is indexed).
    """
    names = ["k", *(f"v{i}" for i in range(len(fields) - 1))]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        types = []
        for field in fields:
            db_type = column_field(field).cast_db_type(connection)
            if db_type is None:
                return None
            types.append(re.sub(r"\(.*?\)", "", db_type).strip())
        arrays, params = [], []
        for index, db_type in enumerate(types):
            column = list(map(itemgetter(index), rows))
            if db_type in _PG_INTEGER_TYPES and set(map(type, column)) == {int}:
                # Integers as one text, split by the server: psycopg renders a
                # list of 100k ints into the statement in Python (100k pairs:
                # 106 ms against 15 ms for the join, 100 ms less in all).
                arrays.append(f"string_to_array(%s, ',')::{db_type}[]")
                params.append(",".join(map(str, column)))
            else:
                arrays.append(f"%s::{db_type}[]")
                params.append(column)
        columns = ", ".join(quote(name) for name in names)
        return f"unnest({', '.join(arrays)}) AS {alias_sql} ({columns})", tuple(params)
    if connection.vendor == "sqlite":
        # json_each() would end a key at its NUL; a table takes it as it is.
        integer = column_field(fields[0]).get_internal_type() in _INTEGER_TYPES
        nul = not integer and any(isinstance(row[0], str) and "\x00" in row[0] for row in rows)
        if nul or len(rows) > SQLITE_PAIRS_TABLE_ROWS:
            types = ["INTEGER" if integer else "", *([""] * (len(fields) - 1))]
            source, select = (None, None) if nul else _sqlite_json_source(rows, names)
            from_sql = _pairs_table(
                alias_sql, names, types, connection, rows, "TEMP", "", source, select, unique=unique
            )
            return from_sql, ()
        columns = ", ".join(
            f"json_extract(value, '$[{i}]') AS {quote(name)}" for i, name in enumerate(names)
        )
        return f"(SELECT {columns} FROM json_each(%s)) {alias_sql}", (_json_rows(rows),)
    if connection.vendor == "mysql":
        types = [_mysql_column_type(field, connection) for field in fields]
        if None in types:
            return None
        # ERROR ON ERROR: a value the column cannot take fails loudly instead
        # of becoming a NULL that matches nothing.
        columns = ", ".join(
            f"{quote(name)} {db_type} PATH '$[{i}]' ERROR ON ERROR"
            for i, (name, db_type) in enumerate(zip(names, types, strict=True))
        )
        json_table = f"JSON_TABLE(%s, '$[*]' COLUMNS ({columns}))"
        if len(rows) > MYSQL_PAIRS_TABLE_ROWS:
            types = [_mysql_column_type(field, connection, True) for field in fields]
            engine = " ENGINE=MEMORY" if _fits_memory(connection, types, len(rows)) else None
            from_sql = _pairs_table(
                alias_sql,
                names,
                types,
                connection,
                rows,
                engine=engine,
                json_table=json_table,
                unique=unique,
            )
            return from_sql, ()
        return f"{json_table} AS {alias_sql}", (_json_rows(rows),)
    return None


def _sqlite_json_source(rows, names):
    """Return the JSON text carrying ``rows`` into a SQLite pair table, and its SELECT list.

    Rows of integers (a count by an integer key) travel as one object,
    ``{"7":2,...}`` (``{"7":[2,5],...}`` with several values), formatted
    with ``%d``: json_each() hands each key and value over as they are,
    where an array per row is rendered and parsed once more by
    json_extract() for each column, and json.dumps() of a dict makes a tuple
    per item (at 100k pairs, garbage collections).  Measured at 100k pairs
    in the sandbox: 13 ms to format and 16 ms to insert, against 19 ms and
    60 ms for the arrays.  Other values, or keys that are not distinct, take
    the arrays (json.dumps()).
    """
    keys = list(map(itemgetter(0), rows))
    if set(map(type, itertools.chain.from_iterable(rows))) <= {int} and len(set(keys)) == len(keys):
        many = len(names) - 1
        if many == 1:
            item, values = '"%d":%d', ["value"]
        else:
            item = '"%d":[' + ",".join(["%d"] * many) + "]"
            values = [f"json_extract(value, '$[{i}]')" for i in range(many)]
        text = "{" + ",".join([item % tuple(row) for row in rows]) + "}"
        return text, ", ".join(["CAST(key AS INTEGER)", *values])
    return _json_rows(rows), None


# Bytes a value of each fixed-width column type takes in a MEMORY table row.
_MEMORY_WIDTHS = {"BIGINT": 8, "DOUBLE": 8, "DATE": 3, "DATETIME(6)": 8, "UUID": 16}


def _fits_memory(connection, types, count: int) -> bool:
    """Return True when ``count`` rows of ``types`` fit well within a MEMORY table.

    A MEMORY table (a hash index on the key) takes 100k pairs in half the time
    InnoDB does (MariaDB 10.11: 80 against 170 ms), but holds fixed-width rows
    only, and only up to ``max_heap_table_size``: beyond half of it, or with a
    string or decimal column, InnoDB.
    """
    widths = []
    for db_type in types:
        width = _MEMORY_WIDTHS.get(db_type)
        if width is None:
            return False
        widths.append(width)
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_heap_table_size")
        (limit,) = cursor.fetchone()
    # The row, its null flags and delete mark, and its hash index entry, generously.
    return count * (sum(widths) + 64) <= int(limit) // 2


def _json_chunks(rows, packet: int):
    """Yield JSON texts of ``rows`` in order, each of which fits a statement under ``packet``."""
    text = _json_rows(rows)
    # Escaped, a text at most doubles; the statement around it is small.
    if len(rows) <= 1 or len(text.encode()) * 2 + 64 * 1024 <= packet:
        yield text
        return
    half = len(rows) // 2
    yield from _json_chunks(rows[:half], packet)
    yield from _json_chunks(rows[half:], packet)


def _pairs_table(
    alias_sql,
    names,
    types,
    connection,
    rows,
    temporary="TEMPORARY",
    engine=None,
    json_rows=None,
    json_columns=None,
    json_table=None,
    unique=True,
):
    """Load ``rows`` into an indexed temporary table; return the FROM item reading it."""
    tables = connection.__dict__.setdefault("crossdb_pair_tables", [])
    name = f"crossdb_pairs_{next(_table_numbers)}"
    quote = connection.ops.quote_name
    columns = ", ".join(
        f"{quote(column)} {db_type}".rstrip() for column, db_type in zip(names, types, strict=True)
    )
    placeholders = ", ".join(["%s"] * len(names))
    # The key is the primary key, but for a MySQL string key: its collation
    # may take 'ann' and 'ANN' for one value, which are two keys here
    # (compared under the exact collation), so an index, within InnoDB's limit.
    separate_index = None
    if connection.vendor == "mysql" and types[0].startswith("VARCHAR"):
        # InnoDB indexes up to 3072 bytes: 768 utf8mb4 characters.
        length = int(re.search(r"\((\d+)\)", types[0]).group(1)) if "(" in types[0] else 769
        index = f"KEY ({quote('k')})" if length <= 768 else f"KEY ({quote('k')}(768))"
    elif unique:
        index = f"PRIMARY KEY ({quote('k')})"
    elif connection.vendor == "mysql":
        index = f"KEY ({quote('k')})"
    else:
        # SQLite has no inline index but the primary key's: one of its own.
        index, separate_index = None, f"CREATE INDEX {name}_k ON {name} ({quote('k')})"
    engine = " ENGINE=InnoDB" if engine is None else engine
    with connection.cursor() as cursor:
        while len(tables) >= _KEPT_PAIR_TABLES:
            # SQLite has no DROP TEMP TABLE: the table is named in its schema.
            if connection.vendor == "sqlite":
                cursor.execute(f"DROP TABLE IF EXISTS temp.{tables.pop(0)}")
            else:
                cursor.execute(f"DROP {temporary} TABLE IF EXISTS {tables.pop(0)}")
        definition = f"{columns}, {index}" if index else columns
        try:
            cursor.execute(f"CREATE {temporary} TABLE {name} ({definition}){engine}")
        except DatabaseError:
            if engine != " ENGINE=MEMORY":
                raise
            # A server that refuses the MEMORY engine (disabled_storage_engines).
            cursor.execute(f"CREATE {temporary} TABLE {name} ({definition}) ENGINE=InnoDB")
        tables.append(name)
        if json_rows is not None:
            # SQLite: one statement that reads the JSON text in C, not a row per value.
            columns = json_columns or ", ".join(
                f"json_extract(value, '$[{i}]')" for i in range(len(names))
            )
            cursor.execute(f"INSERT INTO {name} SELECT {columns} FROM json_each(%s)", [json_rows])
        elif json_table is not None:
            # MySQL/MariaDB: the rows as JSON texts the server reads, each
            # within the packet limit; executemany() quotes every value in
            # Python (100k pairs: 490 ms of 715 for the whole query).
            for text in _json_chunks(rows, max_packet(connection)):
                cursor.execute(f"INSERT INTO {name} SELECT * FROM {json_table} AS j", [text])
        else:
            # UUIDs (MariaDB's native type) as their text, as in the JSON rows.
            rows = [tuple(str(v) if isinstance(v, uuid.UUID) else v for v in row) for row in rows]
            cursor.executemany(f"INSERT INTO {name} VALUES ({placeholders})", rows)
        if separate_index:
            # After the rows: one sort instead of an index update per row.
            cursor.execute(separate_index)
    return f"{name} {alias_sql}"
