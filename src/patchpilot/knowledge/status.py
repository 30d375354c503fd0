"""``patchpilot db status``: what the knowledge base holds, per source and ecosystem."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, distinct, func, select

from patchpilot.db.tables import advisories, affected, cve_records, epss, feed_state, kev
from patchpilot.knowledge.coverage import knowledge_coverage_rows


@dataclass(slots=True)
class KnowledgeStatus:
    """Counts and update times."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    ecosystems: list[dict[str, Any]] = field(default_factory=list)
    advisories: int = 0
    cve_records: dict[str, int] = field(default_factory=dict)
    kev: int = 0
    epss: int = 0
    # Per ecosystem (a distribution's per release): advisories, affected rows, covered.
    coverage: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def knowledge_status(engine: Engine) -> KnowledgeStatus:
    """Read the counts (a handful of aggregate queries)."""
    st = KnowledgeStatus()
    with engine.connect() as conn:
        for row in conn.execute(select(feed_state).order_by(feed_state.c.source)):
            st.sources.append({"source": row.source, "feed": row.feed, "kind": row.kind,
                               "records": row.records,
                               "updated_at": row.updated_at.isoformat()
                               if row.updated_at else None})
        for feed, eco, n in conn.execute(
                select(advisories.c.feed, affected.c.ecosystem,
                       func.count(distinct(affected.c.advisory_pk)))
                .join(advisories, advisories.c.pk == affected.c.advisory_pk)
                .group_by(advisories.c.feed, affected.c.ecosystem)
                .order_by(advisories.c.feed, affected.c.ecosystem)):
            st.ecosystems.append({"feed": feed, "ecosystem": eco, "advisories": n})
        st.advisories = conn.execute(select(func.count()).select_from(advisories)).scalar() or 0
        st.cve_records = {str(feed): int(n) for feed, n in conn.execute(
            select(cve_records.c.feed, func.count()).group_by(cve_records.c.feed)).all()}
        st.kev = conn.execute(select(func.count()).select_from(kev)).scalar() or 0
        st.epss = conn.execute(select(func.count()).select_from(epss)).scalar() or 0
        st.coverage = knowledge_coverage_rows(conn)
    return st
