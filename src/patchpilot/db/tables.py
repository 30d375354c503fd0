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
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
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

# Microsoft Security Response Center monthly CVRF documents (migration 0017).  Products are
# global (a ProductID means the same product in every month); vulnerabilities and fixes
# are kept per document month, so reloading a month replaces exactly that month's rows.
msrc_products = Table(
    "msrc_products", metadata,
    Column("product_id", String(40), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("family", String(300), nullable=False),  # "Windows Server", "SQL Server", …
    Column("version", String(40)),  # "2022", "24H2", "2012 R2"
    Column("edition", String(100)),  # "Server Core installation", "CU 32"
    Column("arch", String(10)),  # x64, x86, ARM64
    Column("branch", String(100)),  # the tree's product family: Windows, ESU, SQL Server
    Column("month", String(10), nullable=False),  # the document that last wrote it
    Index("ix_msrc_products_family", "family", "version"),
)

msrc_vulns = Table(
    "msrc_vulns", metadata,
    Column("month", String(10), primary_key=True),  # "2026-Mar"
    Column("cve", String(40), primary_key=True),
    Column("title", Text),
    Column("severity", String(20)),  # the worst MSRC rating over its products
    Column("exploited", Boolean, nullable=False),
    Column("publicly_disclosed", Boolean, nullable=False),
    Column("exploitability", String(100)),  # "Exploitation More Likely", …
    Column("description", Text),
    Column("faq", Text),
    Column("workaround", Text),  # Workaround and Mitigation remediations
    Index("ix_msrc_vulns_cve", "cve"),
)

msrc_fixes = Table(
    "msrc_fixes", metadata,
    Column("month", String(10), primary_key=True),
    Column("cve", String(40), primary_key=True),
    Column("product_id", String(40), primary_key=True),
    Column("fix", String(200), primary_key=True),  # Vendor Fix description; "" for none
    Column("kb", String(20)),  # "KB5078766"
    Column("supersedes", String(500)),  # "KB5075906 KB5075907"
    Column("fixed_build", String(300)),  # "10.0.20348.4893"
    Column("restart", Boolean),
    Column("url", Text),
    Column("subtype", String(100)),  # Security Update, Security Hotpatch Update, …
    Column("cvss_score", Float),
    Column("cvss_vector", String(200)),
    Column("severity", String(20)),  # MSRC rating for this product
    Column("impact", String(100)),  # Remote Code Execution, Elevation of Privilege, …
    Index("ix_msrc_fixes_kb", "kb"),
    Index("ix_msrc_fixes_product", "product_id", "cve"),
)

# MyJVN 注意警戒情報 (getAlertList), one row per alert; a new one is also a ``jvn_alert``
# finding event.  (Migration 0018.)
jvn_alerts = Table(
    "jvn_alerts", metadata,
    Column("id", String(40), primary_key=True),  # MYJVN-ALT-2025-0011
    Column("title", Text, nullable=False),
    Column("summary", Text),
    Column("link", Text),
    Column("published", String(40)),
    Column("updated", String(40)),
    Column("cves", Text, nullable=False),  # space-separated
    Column("cpes", Text, nullable=False),  # space-separated CPE 2.2 names
    Column("source", String(500), nullable=False),
)

# ---------------------------------------------------------------------------------------
# The server: people and credentials, assets and their inventories, findings and their
# life, jobs for workers and agents, schedules, sweeps.  (Migration 0003.)
# ---------------------------------------------------------------------------------------

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # admin, analyst, viewer
    Column("password_hash", String(200)),  # argon2; NULL: token-only user
    Column("language", String(10)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # Where the user signs in: local (password/tokens here), oidc or ldap; and what the
    # directory knows them by (OIDC "issuer subject", LDAP DN).  (Migration 0019.)
    Column("source", String(20), nullable=False, server_default="local"),
    Column("external_id", String(500)),
    UniqueConstraint("source", "external_id", name="uq_users_source_external"),
)

# A user limited to part of the estate: asset groups or business services by name; a user
# with no row sees everything.  (Migration 0019.)
user_scopes = Table(
    "user_scopes", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(20), primary_key=True),  # group, service
    Column("name", String(200), primary_key=True),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in listings; not a secret
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    # The role the token acts with, never above its user's current role (migration 0009).
    Column("role", String(20), nullable=False),
)

asset_groups = Table(
    "asset_groups", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text),
    Column("rule", Text),  # JSON {"tags": [...], "attributes": {...}}: dynamic membership
    Column("max_concurrent_scans", Integer, nullable=False, default=5),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

assets = Table(
    "assets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(300), nullable=False),  # hostname, or the file/SBOM label
    Column("fqdn", String(300)),
    Column("machine_id", String(100)),
    Column("ip_addresses", Text),  # JSON list
    Column("os", String(200)),
    Column("ecosystem", String(100)),
    Column("tags", Text),  # JSON list
    Column("attributes", Text),  # JSON object (CMDB fields)
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("last_inventory_id", Integer),
    Column("ssh_target", String(300)),  # user@host[:port] for agentless scans
    # Migration 0010: more keys of the asset identity (findings/ingest.py).
    Column("cloud_instance_id", String(200)),
    Column("artifact", String(300)),  # container image or code repository
    # The producer (``importer:<scanner>``) that created an asset nothing else knew.
    Column("discovered_by", String(100)),
    Index("ix_assets_name", "name"),
    Index("ix_assets_machine_id", "machine_id"),
    Index("ix_assets_cloud_instance_id", "cloud_instance_id"),
    Index("ix_assets_artifact", "artifact"),
)

asset_group_members = Table(
    "asset_group_members", metadata,
    Column("group_id", Integer, ForeignKey("asset_groups.id", ondelete="CASCADE"),
           primary_key=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
)

inventories = Table(
    "inventories", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("collector", String(50), nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("packages", Integer, nullable=False),
    Column("idempotency_key", String(100), unique=True),
    Column("document", Text, nullable=False),  # the Inventory JSON
    Index("ix_inventories_asset", "asset_id", "id"),
)

findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("vuln_id", String(200), nullable=False),
    Column("ecosystem", String(100), nullable=False),
    Column("package", String(300), nullable=False),
    Column("state", String(20), nullable=False),  # open, fixed, accepted, false_positive, …
    Column("installed_version", String(200)),
    Column("fixed_version", String(200)),
    Column("severity", String(20)),
    Column("cvss_score", Float),
    Column("known_exploited", Boolean, nullable=False, default=False),
    Column("epss_score", Float),
    Column("advisory_id", String(200)),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("fixed_at", DateTime(timezone=True)),
    Column("reopened_at", DateTime(timezone=True)),
    Column("times_reopened", Integer, nullable=False, default=0),
    Column("new_from_feed", Boolean, nullable=False, default=False),
    Column("data", Text, nullable=False),  # the Finding's every field, JSON
    # The findings list's sort key (migration 0008): finding_priority.priority copied by
    # scoring.apply.reprioritise, 5 until the finding is first prioritised (sorts last).
    Column("priority_rank", SmallInteger, nullable=False, default=5, server_default="5"),
    # Migration 0010: every producer that reports the finding (matcher, host-updates,
    # importer:<format>), sorted and joined with "," -- almost always one.  The key has no
    # producer: one finding, whoever reports it (findings/lifecycle.py).
    Column("producer", String(100), nullable=False, default="matcher",
           server_default="matcher"),
    # Migration 0012_inst: every affected copy of the package on the asset, JSON
    # [[location, installed version, fixed version, command], ...] oldest version first
    # (findings/installations.py); NULL on rows written before (one copy: the columns).
    Column("installations", Text),
    Index("ix_findings_key", "asset_id", "vuln_id", "ecosystem", "package", unique=True),
    Index("ix_findings_vuln", "vuln_id"),
    # (ix_findings_state on (state, severity) until 0008: ix_findings_worklist leads with
    # state, and severity counts come from asset_summary.)
    Index("ix_findings_first_seen", "first_seen"),  # the weekly trend (migration 0007)
    Index("ix_findings_fixed_at", "fixed_at"),
    # Migration 0008: the trend's reopenings; the list's search by package; the list's
    # default order (work order) and "worst first" read straight from an index -- on
    # PostgreSQL the score column is "DESC NULLS LAST", which SQLite's DESC already is.
    # (No index on advisory_id: its random keys cost every insert; the search finds an
    # advisory's findings through its vulnerabilities' ids.)
    Index("ix_findings_reopened_at", "reopened_at"),
    Index("ix_findings_package", "package"),
    Index("ix_findings_worklist", "state", "priority_rank", text("cvss_score DESC"), "id"),
    Index("ix_findings_score", "state", text("cvss_score DESC"), "id"),  # worst first
    # Which assets a producer still reports open findings on, from the index alone.
    Index("ix_findings_producer", "producer", "state", "asset_id"),
    # Migration 0013_techrep: the KEV exposure (reports.data) from the index alone, not
    # every open row; it does not lead with state (see the migration: SQLite's planner
    # before ANALYZE).
    Index("ix_findings_kev", "known_exploited", "state", "vuln_id"),
)

# Migration 0010: one row per lifecycle change (new, reopened, fixed, triaged, priority
# changed, …; findings/events.py), written in the transaction of the change and read in
# id order (GET /api/events?after=ID).
finding_events = Table(
    "finding_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE")),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE")),
    Column("kind", String(40), nullable=False),
    Column("producer", String(100)),
    Column("actor", String(200)),
    Column("detail", Text),  # JSON
    Index("ix_finding_events_kind", "kind", "id"),
    Index("ix_finding_events_asset", "asset_id", "id"),
    Index("ix_finding_events_finding", "finding_id", "id"),
)

# Migration 0010: the active priority configuration (the latest row), one row per change.
priority_config = Table(
    "priority_config", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("config", Text, nullable=False),  # JSON
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200)),
)

triage_decisions = Table(
    "triage_decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(10), nullable=False),  # asset, group, global
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE")),
    Column("group_id", Integer, ForeignKey("asset_groups.id", ondelete="CASCADE")),
    Column("vuln_id", String(200), nullable=False),
    Column("package", String(300)),  # NULL: any package
    Column("decision", String(20), nullable=False),  # accepted, false_positive, not_affected
    Column("reason", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_triage_vuln", "vuln_id"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(300)),
    Column("detail", Text),  # JSON
)

agents = Table(
    "agents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="SET NULL")),
    Column("name", String(300), nullable=False),
    Column("credential_hash", String(64), nullable=False, unique=True),
    Column("version", String(50)),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    # Migration 0009: the asset an agent asked to report for while another agent owns it,
    # held until an admin approves (binds it) or refuses.
    Column("pending_asset_id", Integer,
           ForeignKey("assets.id", ondelete="SET NULL", name="fk_agents_pending_asset")),
    Column("pending_since", DateTime(timezone=True)),
)

enrolment_tokens = Table(
    "enrolment_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("group_id", Integer, ForeignKey("asset_groups.id", ondelete="SET NULL")),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("uses_left", Integer),  # NULL: unlimited until it expires or is revoked
    Column("revoked_at", DateTime(timezone=True)),
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False),  # match, rematch, collect, ssh_scan, …
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(20), nullable=False),  # queued, leased, done, failed, cancelled
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE")),  # agent jobs
    Column("group_id", Integer, ForeignKey("asset_groups.id", ondelete="SET NULL")),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE")),
    Column("priority", Integer, nullable=False, default=0),
    Column("run_after", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True)),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", Text),  # JSON
    Column("error", Text),
    # A chunk of a divided job (queue.split): its parent, and the parent's chunk counts.
    Column("parent_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE",
                                            name="fk_jobs_parent_id")),
    Column("chunks_total", Integer),
    Column("chunks_done", Integer),
    Index("ix_jobs_ready", "state", "agent_id", "run_after"),
    Index("ix_jobs_parent", "parent_id"),
)

schedules = Table(
    "schedules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, ForeignKey("asset_groups.id", ondelete="CASCADE"),
           nullable=False),
    Column("kind", String(10), nullable=False),  # cron or rrule
    Column("expression", Text, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("next_run_at", DateTime(timezone=True)),
    Column("last_run_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

maintenance_windows = Table(
    "maintenance_windows", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, ForeignKey("asset_groups.id", ondelete="CASCADE"),
           nullable=False),
    Column("kind", String(10), nullable=False),  # window (scans only inside) or blackout
    Column("rrule", Text),  # recurring start (RFC 5545), with duration_minutes
    Column("duration_minutes", Integer),
    Column("starts_at", DateTime(timezone=True)),  # or one absolute period
    Column("ends_at", DateTime(timezone=True)),
    Column("timezone", String(64), nullable=False),
    Column("description", Text),
)

sweeps = Table(
    "sweeps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("query", Text, nullable=False),  # JSON: {"vuln": id} or {"ecosystem","package","range"}
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False),  # running, done
    Column("summary", Text),  # JSON counts
)

sweep_results = Table(
    "sweep_results", metadata,
    # No foreign key to sweeps (migration 0021): start_sweep writes every row in the
    # transaction that inserts the sweep, and sweeps are never deleted -- a key checked per
    # row cost a third of the first answer's second at 100,000 assets.
    Column("sweep_id", Integer, primary_key=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("initial", String(20), nullable=False),  # affected, not_affected, unknown
    Column("status", String(20), nullable=False),  # pending, confirmed, not_affected, …
    Column("detail", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The packages of each asset's latest inventory, one row each: what an emergency sweep
# and a re-match after a feed update read (migration 0004).
asset_packages = Table(
    "asset_packages", metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("ecosystem", String(100), nullable=False),
    Column("name", String(300), nullable=False),  # normalised match name (source package)
    Column("version", String(200), nullable=False),  # match version
    Column("installed", Text, nullable=False),  # JSON [[name, version, arch], …] behind it
    Index("ix_asset_packages_key", "ecosystem", "name"),
    Index("ix_asset_packages_asset", "asset_id"),
)

# ---------------------------------------------------------------------------------------
# Prioritisation (migration 0005): the CMDB's view of each asset, and each finding's
# priority with the reason it was derived and its SLA due date.
# ---------------------------------------------------------------------------------------

asset_context = Table(
    "asset_context", metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("criticality", Integer),  # business criticality tier 1 (highest) .. 4
    Column("environment", String(20)),  # production, staging, development
    Column("exposure", String(20)),  # internet-facing, internal, isolated
    Column("data_classification", String(50)),
    Column("owner", String(200)),
    Column("service", String(200)),  # business service
    Column("location", String(200)),  # site / plant
    Column("compensating_control", Text),  # an applied workaround or control, if any
    Column("source", String(50), nullable=False),  # "cmdb-import", "netbox", "default"
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_asset_context_service", "service"),
)

finding_priority = Table(
    "finding_priority", metadata,
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"),
           primary_key=True),
    Column("priority", Integer, nullable=False),  # 1 (P1) .. 4 (P4)
    Column("reason", Text, nullable=False),  # "P1: Critical × tier 1; known exploited; …"
    Column("method", String(10), nullable=False),  # "matrix" or "ssvc"
    Column("due_date", DateTime(timezone=True)),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Index("ix_finding_priority", "priority", "due_date"),
    Index("ix_finding_priority_due", "due_date"),  # overdue since a summary (0008)
)

# ---------------------------------------------------------------------------------------
# The dashboard's per-asset counts (migration 0008): kept by findings.summary in the same
# transaction as every write that changes an asset's findings or priorities, so that the
# overview adds up 10,000 rows instead of aggregating a million.
# ---------------------------------------------------------------------------------------

asset_summary = Table(
    "asset_summary", metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("open_total", Integer, nullable=False),
    Column("p1", Integer, nullable=False),
    Column("p2", Integer, nullable=False),
    Column("p3", Integer, nullable=False),
    Column("p4", Integer, nullable=False),
    Column("critical", Integer, nullable=False),
    Column("high", Integer, nullable=False),
    Column("medium", Integer, nullable=False),
    Column("low", Integer, nullable=False),
    Column("none", Integer, nullable=False),
    Column("unknown", Integer, nullable=False),
    Column("kev", Integer, nullable=False),  # open and known exploited
    Column("risk", Integer, nullable=False),  # sum of the open findings' priority weights
    Column("triaged", Integer, nullable=False),  # accepted, false positive, not affected
    # SLA: open findings past due as of ``as_of``; the earliest due date not yet passed
    # then (after it the count is stale); fixed findings, fixed within their due date,
    # and the days they took in all (MTTR = fix_days / fixed).
    Column("overdue", Integer, nullable=False),
    Column("next_due", DateTime(timezone=True)),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("fixed", Integer, nullable=False),
    Column("fixed_within", Integer, nullable=False),
    Column("fix_days", Float, nullable=False),
    Index("ix_asset_summary_risk", "risk"),
    Index("ix_asset_summary_next_due", "next_due"),
)

# ---------------------------------------------------------------------------------------
# Scheduled reports (migration 0006): a report generated on a cron schedule in a time
# zone and mailed to its recipients by a worker's "report" job.
# ---------------------------------------------------------------------------------------

report_schedules = Table(
    "report_schedules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # executive or technical
    Column("format", String(10), nullable=False),  # pdf, html, csv, xlsx
    Column("lang", String(10), nullable=False),  # en or ja
    Column("group_name", String(200)),  # scope: one asset group …
    Column("service", String(200)),  # … or one business service (NULL: the estate)
    Column("cron", Text, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list of addresses
    Column("enabled", Boolean, nullable=False, default=True),
    Column("next_run_at", DateTime(timezone=True)),
    Column("last_run_at", DateTime(timezone=True)),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# ---------------------------------------------------------------------------------------
# Sign-in state (migration 0009): dashboard sessions kept server-side, so that logout,
# token revocation, user removal and role changes end them; failed sign-ins per user name
# and client address, for throttling shared by every server process.
# ---------------------------------------------------------------------------------------

web_sessions = Table(
    "web_sessions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_hash", String(64), nullable=False, unique=True),  # sha256 of the cookie id
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_id", Integer, ForeignKey("api_tokens.id", ondelete="CASCADE")),
    Column("role", String(20), nullable=False),  # what the session acts with
    Column("user_role", String(20), nullable=False),  # the user's role when it began
    Column("csrf", String(64), nullable=False),
    Column("client", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("ix_web_sessions_user", "user_id"),
)

login_throttle = Table(
    "login_throttle", metadata,
    Column("key", String(300), primary_key=True),  # "user:NAME" or "addr:IP"
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
)

# ---------------------------------------------------------------------------------------
# Coverage (migration 0012_cover): how many advisories the knowledge base holds per
# ecosystem (a distribution's with its release), kept by knowledge.store with every
# advisory write; and how many packages of each ecosystem each asset's latest inventory
# lists, kept by findings.ingest with asset_packages.  Both small, so that "no findings"
# is told from "nothing to judge with" on every page cheaply (knowledge/coverage.py).
# ---------------------------------------------------------------------------------------

knowledge_coverage = Table(
    "knowledge_coverage", metadata,
    Column("ecosystem", String(100), primary_key=True),
    Column("advisories", Integer, nullable=False),  # distinct advisories naming a package
    Column("affected", Integer, nullable=False),  # their affected rows (packages named)
)

asset_ecosystems = Table(
    "asset_ecosystems", metadata,
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("ecosystem", String(100), primary_key=True),
    Column("packages", Integer, nullable=False),  # installed packages of that ecosystem
    Index("ix_asset_ecosystems_ecosystem", "ecosystem"),
)

# ---------------------------------------------------------------------------------------
# The stored patch plan (migration 0013_plan): scans.plan_store writes the plan of the
# whole estate as one *generation* of rows -- one per item and one per (item, host) --
# and flips ``plan_state.generation`` when it is complete, so readers never see half a
# plan and a page of the plan reads 25 items instead of grouping a million findings.
# Rebuilt when the finding events move past ``event_id`` (findings or priorities changed).
# ---------------------------------------------------------------------------------------

plan_state = Table(
    "plan_state", metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("generation", Integer, nullable=False),  # the complete plan readers use; 0: none
    Column("next_generation", Integer, nullable=False),  # handed to the next builder
    Column("event_id", Integer, nullable=False),  # finding_events seen by that plan
    Column("generated_at", DateTime(timezone=True)),
    Column("since", DateTime(timezone=True)),  # verified: fixed since then
    Column("seconds", Float),  # how long the build took
)

plan_items = Table(
    "plan_items", metadata,
    Column("generation", Integer, primary_key=True),
    Column("key", String(32), primary_key=True),  # stable across builds: hash of the change
    Column("rank", Integer, nullable=False),  # by risk removed (unfixed after every fix)
    Column("kind", String(8), nullable=False),  # "fix" or "unfixed"
    Column("ecosystem", String(100), nullable=False),
    Column("package", String(300), nullable=False),
    Column("fixed_version", String(200), nullable=False),  # "" for unfixed
    Column("manager", String(40), nullable=False),
    Column("command", Text),
    Column("reboot", Boolean, nullable=False),
    Column("located", Boolean, nullable=False),
    Column("workaround", Text),  # unfixed: the advisories' workarounds
    Column("vulns", Text, nullable=False),  # JSON list
    Column("n_vulns", Integer, nullable=False),
    Column("p1", Integer, nullable=False),  # open findings per priority
    Column("p2", Integer, nullable=False),
    Column("p3", Integer, nullable=False),
    Column("p4", Integer, nullable=False),
    Column("known_exploited", Integer, nullable=False),  # open known-exploited findings
    Column("risk", Integer, nullable=False),
    Column("pending", Integer, nullable=False),  # hosts to patch
    Column("verified", Integer, nullable=False),  # hosts a later scan found fixed
    Column("hosts_p1", Integer, nullable=False),  # pending hosts by best priority
    Column("hosts_p2", Integer, nullable=False),
    Column("hosts_p3", Integer, nullable=False),
    Column("hosts_p4", Integer, nullable=False),
    Column("windows", Text, nullable=False),  # JSON: pending hosts per set of groups
    Index("ix_plan_items_rank", "generation", "rank"),
)

plan_hosts = Table(
    "plan_hosts", metadata,
    Column("generation", Integer, nullable=False),
    Column("item_key", String(32), nullable=False),
    Column("asset_id", Integer, nullable=False),
    Column("name", String(300), nullable=False),
    Column("status", String(10), nullable=False),  # pending or verified
    Column("best_priority", SmallInteger),
    Column("p1", Integer, nullable=False),  # its open findings in the item per priority
    Column("p2", Integer, nullable=False),
    Column("p3", Integer, nullable=False),
    Column("p4", Integer, nullable=False),
    Column("known_exploited", Integer, nullable=False),
    Column("risk", Integer, nullable=False),
    Column("vulns", Text, nullable=False),  # JSON list: open ones (verified: the fixed)
    Column("installed_version", String(200)),
    Column("binaries", Text, nullable=False),  # JSON list
    Column("groups", Text, nullable=False),  # JSON list of group names
    Column("reboot_pending", Boolean),
    Column("installations", Text, nullable=False),  # JSON [[location, version, command]]
    Index("ix_plan_hosts_item", "generation", "item_key", "status", "best_priority", "name"),
    # A group's or a service's figures are sums over its hosts' rows: read from this
    # index alone (42,000 rows of a 500-host group in milliseconds, not a table lookup each).
    Index("ix_plan_hosts_asset", "generation", "asset_id", "item_key", "status",
          "best_priority", "p1", "p2", "p3", "p4", "known_exploited", "risk"),
)


# ---------------------------------------------------------------------------------------
# Imports of third-party scanner reports (importers).
# ---------------------------------------------------------------------------------------

imports = Table(
    "imports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", String(500), nullable=False),
    Column("format", String(50)),  # detected or given (``--format``)
    Column("producer", String(100)),  # importer:<scanner>[:<scope>]
    Column("scope", String(100)),
    Column("asset", String(300)),  # the asset for items whose report names none
    Column("digest", String(64), nullable=False),  # SHA-256 of the file
    Column("size", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),  # queued, running, done, failed, duplicate
    Column("created_by", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("progress", Integer, nullable=False, default=0, server_default="0"),
    Column("total", Integer),  # the file's size, for progress in bytes read
    Column("spool", String(1000)),  # the uploaded file while the job waits
    Column("summary", Text),  # JSON: ImportSummary
    Column("error", Text),
    Index("ix_imports_digest", "digest", "status"),
)

# A report's informational items: facts about the asset, not findings; replaced per
# (asset, producer) by each import.
asset_facts = Table(
    "asset_facts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", Integer, ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("producer", String(100), nullable=False),
    Column("fact_id", String(200), nullable=False),  # nessus:19506
    Column("title", String(500)),
    Column("port", Integer),
    Column("protocol", String(20)),
    Column("service", String(100)),
    Column("detail", Text),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_asset_facts_asset", "asset_id", "producer"),
)


# ---------------------------------------------------------------------------------------
# Playbooks (migration 0015, automation/): the documents, every version kept, the outbox
# of actions to deliver and the cursor of finding_events already evaluated.
# ---------------------------------------------------------------------------------------

playbooks = Table(
    "playbooks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False),
    Column("version", Integer, nullable=False),  # the current one of playbook_versions
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("next_run_at", DateTime(timezone=True)),  # 0016: a schedule trigger's next run
)

playbook_versions = Table(
    "playbook_versions", metadata,
    Column("playbook_id", Integer, ForeignKey("playbooks.id", ondelete="CASCADE"),
           primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("document", Text, nullable=False),  # the YAML as given
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per (playbook, event, action): the unique key makes each take effect once,
# however often the same events are evaluated.
outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("playbook_id", Integer, ForeignKey("playbooks.id", ondelete="CASCADE"),
           nullable=False),
    Column("playbook_version", Integer, nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("action_type", String(40), nullable=False),
    Column("subject", String(300), nullable=False),  # finding:ID, asset:ID or event:ID
    Column("payload", Text, nullable=False),  # JSON: the event's context
    Column("state", String(10), nullable=False),  # queued, sent, failed, dead
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    # 0016: an escalation chain's next step, where the action went, what it gave (JSON).
    Column("step", Integer, nullable=False, default=0, server_default="0"),
    Column("target", String(500)),
    Column("outcome", Text),
    Index("ux_outbox_once", "playbook_id", "event_id", "action_index", unique=True),
    Index("ix_outbox_due", "state", "next_attempt_at"),
    Index("ix_outbox_playbook_state", "playbook_id", "state"),
)

playbook_cursor = Table(
    "playbook_cursor", metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("event_id", Integer, nullable=False),  # finding_events evaluated up to here
)

# Migration 0016: action secrets, encrypted at rest (Fernet; PATCHPILOT_SECRETS_KEY).
secrets = Table(
    "secrets", metadata,
    Column("name", String(200), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("hint", String(40), nullable=False),  # masked, for show: "…f3a9"
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One ticket per (system, target, subject): opened once, updated, closed when fixed.
tickets = Table(
    "tickets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String(20), nullable=False),  # jira, redmine, github, gitlab
    Column("target", String(500), nullable=False),  # base URL + project
    Column("subject", String(300), nullable=False),  # finding:ID, plan:KEY
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="SET NULL")),
    Column("playbook_id", Integer, ForeignKey("playbooks.id", ondelete="SET NULL")),
    Column("key", String(200), nullable=False),  # PROJ-12, #34
    Column("url", String(1000)),
    Column("state", String(20), nullable=False),  # open, closed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Index("ux_tickets_subject", "system", "target", "subject", unique=True),
    Index("ix_tickets_finding", "finding_id"),
)

# Inbound webhooks (POST /api/hooks/{name}): a token (its SHA-256) and/or an HMAC secret.
hooks = Table(
    "hooks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("token_sha256", String(64)),
    Column("hmac_secret", String(200)),  # a name in ``secrets``
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_received_at", DateTime(timezone=True)),
)

# Sends per action target in the current window (rate limits per target).
action_rates = Table(
    "action_rates", metadata,
    Column("target", String(500), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("sent", Integer, nullable=False),
)

# What a playbook (or a person) set on a finding: a priority re-prioritisation keeps (the
# higher of it and the computed one), an assignee, tags.
finding_overrides = Table(
    "finding_overrides", metadata,
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"),
           primary_key=True),
    Column("priority", Integer),  # 1 (P1) .. 4; NULL: the computed one
    Column("assignee", String(200)),
    Column("tags", Text),  # JSON list
    Column("reason", Text),
    Column("set_by", String(200), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Index("ix_finding_overrides_assignee", "assignee"),
)
