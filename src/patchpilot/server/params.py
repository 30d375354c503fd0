"""Constrained types for what requests carry: ids, pages, names and free text.

Every route's path, query and body parameters use these, so that input the database
cannot hold is refused at the edge with the same 422 on SQLite and PostgreSQL -- not a
500 from PostgreSQL alone (a 32-bit ``INTEGER`` overflow, a NUL byte in ``text``, a
``varchar(300)`` too short) or from both (a 2**64 id overflowing SQLite's 64 bits).

The bounds follow ``db/tables.py``: every id column is ``Integer``, 32-bit on
PostgreSQL, so no id above 2**31 - 1 can exist on either database; names are
``String(200)`` or ``String(300)``.  They are plain ``annotated_types`` constraints,
which FastAPI applies to path and query parameters and pydantic to body fields alike,
and which appear in the OpenAPI schema (so schemathesis generates within them).
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le
from fastapi import HTTPException, status
from pydantic import BeforeValidator, StringConstraints
from sqlalchemy import Connection, Table, select

# PostgreSQL INTEGER (int4): https://www.postgresql.org/docs/current/datatype-numeric.html
MAX_DB_ID = 2**31 - 1
# Rows a list may skip: far past any real table, well inside both databases' OFFSET.
MAX_OFFSET = 2**31 - 1
MAX_LIMIT = 1000
# Dashboard pages of PAGE_SIZE rows: a million pages is 50 million rows.
MAX_PAGE = 1_000_000
# Free text sent to a search (LIKE): longer than any name a column holds.
MAX_SEARCH = 300


def no_nul(value: object) -> object:
    """``value`` unchanged; a ``ValueError`` if it is a string holding a NUL byte.

    Run before the type's own check (so a length constraint given with ``Field`` still
    applies to the string itself): anything but a string is left to that check.

    PostgreSQL text cannot hold U+0000 (psycopg refuses it before sending) while SQLite
    stores it; refusing it everywhere keeps both databases answering alike.
    """
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain a NUL byte (\\x00)")
    return value


# A row's id: 1 .. 2**31 - 1 (no serial id is 0 or negative).
DbId = Annotated[int, Ge(1), Le(MAX_DB_ID)]
Offset = Annotated[int, Ge(0), Le(MAX_OFFSET)]
# A page size asked of a list: a larger one is refused rather than silently cut.
Limit = Annotated[int, Ge(1), Le(MAX_LIMIT)]
Page = Annotated[int, Ge(1), Le(MAX_PAGE)]
# P1 (most urgent) .. P4; criticality tiers share the range.
Priority = Annotated[int, Ge(1), Le(4)]

# Text without NUL bytes, of at most N characters (the column's length).
Text = Annotated[str, BeforeValidator(no_nul)]
Name200 = Annotated[str, StringConstraints(max_length=200), BeforeValidator(no_nul)]
Name300 = Annotated[str, StringConstraints(max_length=300), BeforeValidator(no_nul)]
Search = Annotated[str, StringConstraints(max_length=MAX_SEARCH), BeforeValidator(no_nul)]



def require_row(conn: Connection, table: Table, row_id: int | None, field: str,
                what: str) -> None:
    """A 404 naming ``field`` unless ``table`` has a row with id ``row_id``.

    For ids a request body refers to (a group an enrolment token puts agents in, the
    asset a triage decision is about): checked before the insert, so the answer names
    the field rather than being a foreign-key violation -- a 500 -- from the database.
    """
    if row_id is None:
        return
    if conn.execute(select(table.c.id).where(table.c.id == row_id)).first() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{field}: no {what} {row_id}")
