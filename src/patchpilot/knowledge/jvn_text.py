"""JVN's Japanese text of vulnerabilities, for Japanese pages and reports.

JVN iPedia publishes each entry in Japanese (title, overview, impact, solution); the JVN
feed stores it per CVE as a ``cve_records`` row of feed ``jvn`` (``store.jvn_text_rows``).
A Japanese reader sees it in place of the English title, description and workaround when
it exists; an English reader never does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import cve_records

_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class JvnText:
    """What JVN says of one vulnerability, in Japanese."""

    vuln_id: str
    title: str
    overview: str | None
    impact: str | None
    solution: str | None
    url: str | None  # the JVNDB entry's page
    jvndb: tuple[str, ...]  # every JVNDB id naming the vulnerability


def jvn_texts(conn: Connection, vuln_ids: Iterable[str]) -> dict[str, JvnText]:
    """JVN's Japanese text of each of ``vuln_ids`` that JVN describes (one query a chunk)."""
    ids = sorted(set(vuln_ids))
    out: dict[str, JvnText] = {}
    for start in range(0, len(ids), _CHUNK):
        for vuln_id, record in conn.execute(
                select(cve_records.c.id, cve_records.c.record).where(
                    cve_records.c.feed == "jvn",
                    cve_records.c.id.in_(ids[start:start + _CHUNK]))):
            data = orjson.loads(record)
            if not data.get("title"):
                continue
            out[vuln_id] = JvnText(vuln_id, data["title"], data.get("description"),
                                   data.get("impact"), data.get("solution"), data.get("url"),
                                   tuple(data.get("jvndb") or ()))
    return out


def jvn_text(conn: Connection, vuln_id: str) -> JvnText | None:
    """JVN's Japanese text of one vulnerability, or None."""
    return jvn_texts(conn, [vuln_id]).get(vuln_id)
