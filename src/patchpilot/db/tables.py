"""The tables, as SQLAlchemy Core (set-based work: bulk inserts and upserts, no ORM rows).

The knowledge base keeps one row per advisory with its record as JSON (decoded only for
hits), and one ``affected`` row per (advisory, ecosystem, package) indexed by the search
key ``(ecosystem, name)`` with version bounds already split into columns-as-JSON, so the
matcher reads only the rows of the packages a host has.  CVE records, KEV and EPSS are
kept per source and merged when a finding is shown, so one feed's update never has to
rewrite another's data.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

feed_state = Table(
    "feed_state", metadata,
    Column("source", String(500), primary_key=True),  # "<feed>:<input group>"
    Column("feed", String(50), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("fingerprint", String(64)),  # of the input files: unchanged input is skipped
    Column("cursor", String(64)),  # last modification seen (NVD incremental fetch)
    Column("records", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

advisories = Table(
    "advisories", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(200), nullable=False),
    Column("feed", String(50), nullable=False),
    Column("source", String(500), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("modified", String(40)),
    Column("digest", String(32), nullable=False),  # content hash, for incremental loads
    Column("record", Text, nullable=False),  # internal-schema JSON, decoded only for hits
    Index("ix_advisories_source_id", "source", "id", unique=True),
    Index("ix_advisories_id", "id"),
)

advisory_vulns = Table(
    "advisory_vulns", metadata,
    Column("advisory_pk", Integer, ForeignKey("advisories.pk", ondelete="CASCADE"),
           nullable=False),
    Column("vuln_id", String(200), nullable=False),
    Index("ix_advisory_vulns_pk", "advisory_pk"),
    Index("ix_advisory_vulns_vuln", "vuln_id"),
)

advisory_aliases = Table(
    "advisory_aliases", metadata,
    Column("advisory_pk", Integer, ForeignKey("advisories.pk", ondelete="CASCADE"),
           nullable=False),
    Column("alias", String(200), nullable=False),
    Index("ix_advisory_aliases_pk", "advisory_pk"),
    Index("ix_advisory_aliases_alias", "alias"),
)

affected = Table(
    "affected", metadata,
    Column("advisory_pk", Integer, ForeignKey("advisories.pk", ondelete="CASCADE"),
           nullable=False),
    Column("ecosystem", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("status", String(20), nullable=False),
    Column("ranges", Text, nullable=False),  # JSON [[introduced, fixed, last_affected], …]
    Column("versions", Text),  # JSON list of explicitly affected versions, or NULL
    Column("fixed", String(200)),  # the fix to show (highest fixed bound), NULL if none
    Column("severity", String(40)),  # the distribution's own rating
    # Copied from the advisory so a match reads one index range and nothing else.
    Column("advisory_id", String(200), nullable=False, server_default=""),
    Column("feed", String(50), nullable=False, server_default=""),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("vulns", Text, nullable=False, server_default=""),  # space-separated vuln ids
    Index("ix_affected_key", "ecosystem", "name"),
    Index("ix_affected_pk", "advisory_pk"),
)

cve_records = Table(
    "cve_records", metadata,
    Column("id", String(40), primary_key=True),
    Column("feed", String(20), primary_key=True),  # "nvd" or "cve5"
    Column("source", String(500), nullable=False),
    Column("modified", String(40)),
    Column("published", String(40)),
    Column("status", String(40)),
    Column("record", Text, nullable=False),  # title, description, cvss, references, cwes, …
)

kev = Table(
    "kev", metadata,
    Column("cve", String(40), primary_key=True),
    Column("date_added", String(10), nullable=False),
    Column("due_date", String(10)),
    Column("ransomware", Boolean, nullable=False, default=False),
    Column("vendor", String(200)),
    Column("product", String(200)),
    Column("name", Text),
    Column("required_action", Text),
)

epss = Table(
    "epss", metadata,
    Column("cve", String(40), primary_key=True),
    Column("score", Float, nullable=False),
    Column("percentile", Float, nullable=False),
    Column("date", String(40)),
)
