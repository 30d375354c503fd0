"""Statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Column, Table, text
from sqlalchemy.engine import Connection

CHUNK = 5000


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
           keys: Sequence[str]) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE for every other column, in batches.

    Rows must be unique by ``keys`` (PostgreSQL refuses to update one row twice in one
    statement).
    """
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in keys})
    for start in range(0, len(rows), CHUNK):
        conn.execute(stmt, list(rows[start:start + CHUNK]))


def _executemany(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(rows), CHUNK * 4):
            cursor.executemany(sql, rows[start:start + CHUNK * 4])
    finally:
        cursor.close()


def _insert_sql(conn: Connection, table: Table, columns: Sequence[str],
                key_offset: int = 0) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    marks = [mark] * len(columns)
    if key_offset:
        marks[0] = f"{mark} + {int(key_offset)}"
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(marks)})"


def bulk_insert(conn: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]], *, key_offset: int = 0) -> None:
    """INSERT many rows given as tuples: COPY on PostgreSQL, the driver's executemany on
    SQLite.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own insert for
    narrow rows; feed loads insert hundreds of thousands, so they bypass it.  On
    PostgreSQL even psycopg's pipelined executemany spends ~16 µs of Python per row; COPY
    formats rows in C (a load of 22,841 advisories, 190,000 rows: 3.2 s of client CPU
    against 0.6 s).  Values must already be of the column's Python type (str, int,
    float, bool or None).

    With ``key_offset``, the first column is an integer key relative to it: the database
    stores ``row[0] + key_offset`` (on SQLite the statement adds it, so rows built
    elsewhere go in as they are).
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            write = copy.write_row
            if key_offset:
                for key, *rest in rows:
                    write((key + key_offset, *rest))
            else:
                for row in rows:
                    write(row)
        return
    _executemany(conn, _insert_sql(conn, table, columns, key_offset), rows)


def bulk_upsert(conn: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]], keys: Sequence[str]) -> None:
    """:func:`bulk_insert` that updates the rows whose ``keys`` exist (ON CONFLICT).

    The statement is valid in SQLite (3.24+) and PostgreSQL alike; rows must be unique by
    ``keys``.  For the large upserts of feed loads (360,000 EPSS scores).
    """
    if rows:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        _executemany(conn, f"{_insert_sql(conn, table, columns)} ON CONFLICT "
                           f"({', '.join(keys)}) DO UPDATE SET {updates}", rows)


def prefer_index_joins(conn: Connection) -> None:
    """For the rest of the caller's transaction, join by index lookups rather than by
    hashing or merging whole tables (PostgreSQL; nothing to do on SQLite).

    For statements over a slice of a large table whose join partner has no column to
    narrow it by: a chunk of a divided re-prioritisation reads 2 % of the findings, and
    joins ``finding_priority`` by finding id.  With the default ``random_page_cost`` the
    planner hashed all 10 million ``finding_priority`` rows for each of the chunk's three
    statements (16 s a chunk; 6.8 s by index lookups).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
        conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")


def lock_for_writing(conn: Connection, table: Table) -> None:
    """Serialise writers of ``table`` for the rest of the transaction.

    Feed loads allocate primary keys themselves (``max(pk) + 1 …``) so that bulk inserts
    need no RETURNING; two loads at once must not take the same keys.  SQLite already
    allows one writer at a time once the transaction has written; PostgreSQL needs a
    table lock that still lets readers (the matcher) through.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE")


def reserve_ids(conn: Connection, table: Table, n: int) -> list[int] | None:
    """``n`` new primary keys of ``table`` from its PostgreSQL sequence (concurrent
    writers get others), or None on SQLite (insert with RETURNING there).

    psycopg runs a plain executemany in pipeline mode; an INSERT … RETURNING of many rows
    goes through SQLAlchemy's one-statement-per-thousand-rows form instead, four times
    slower for wide rows (27,000 findings: 6.6 s against 1.6 s).
    """
    if conn.dialect.name != "postgresql" or n == 0:
        return None
    return [int(i) for i in conn.execute(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
             "FROM generate_series(1, :n)"), {"table": table.name, "n": n}).scalars()]


def stored_datetime(conn: Connection, column: Column[Any], value: datetime) -> Any:
    """``value`` as :func:`bulk_insert` takes it for ``column``: the datetime itself on
    PostgreSQL (COPY formats it), SQLAlchemy's own SQLite text elsewhere (so the row reads
    back as every other row's).  For many rows of one timestamp: converted once."""
    process = _bind_processor(conn, column)
    if conn.dialect.name == "postgresql" or process is None:
        return value
    return process(value)


def _bind_processor(conn: Connection, column: Column[Any]) -> Any:
    """SQLAlchemy's conversion of a Python value to what the driver stores, or None."""
    return column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows given as dicts (the same keys each, values of the columns' Python
    types) without SQLAlchemy's per-row parameter processing: COPY on PostgreSQL, the
    driver's executemany on SQLite (datetimes turned into SQLAlchemy's own SQLite text
    once per distinct value, so they read back as every other row's).  No RETURNING: a
    caller that needs the new keys reads them back by a unique key."""
    if not rows or copy_rows(conn, table, rows):
        return
    columns = list(rows[0])
    row_values = operator.itemgetter(*columns)
    sql = _insert_sql(conn, table, columns)
    converters = []
    for name in columns:
        process = _bind_processor(conn, table.c[name])
        if process is not None and table.c[name].type.python_type in (datetime, date):
            converters.append((columns.index(name), process))
    if not converters:
        _executemany(conn, sql, [_as_tuple(row_values(row)) for row in rows])
        return
    done: dict[Any, Any] = {}
    out = []
    for row in rows:
        values = list(_as_tuple(row_values(row)))
        for at, process in converters:
            v = values[at]
            if v is not None:
                hit = done.get(v)
                if hit is None:
                    hit = done[v] = process(v)
                values[at] = hit
        out.append(tuple(values))
    _executemany(conn, sql, out)


def _as_tuple(values: Any) -> tuple[Any, ...]:
    # itemgetter of one column gives the bare value.
    return values if isinstance(values, tuple) else (values,)


def copy_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> bool:
    """PostgreSQL: write ``rows`` (dicts with the same keys, values of the columns' Python
    types) with COPY, in the caller's transaction; True.  Elsewhere nothing: False (the
    caller inserts them).

    COPY skips the parse and bind of a statement per thousand rows: 27,000 findings of
    2 KB take 0.9 s against 2.7 s through executemany.
    """
    if conn.dialect.name != "postgresql" or not rows:
        return False
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
    return True
