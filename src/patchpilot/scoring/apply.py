"""Re-prioritise every open finding in one set-based statement.

The statement is generated from a :class:`~patchpilot.scoring.priority.PriorityConfig`:
an ``INSERT INTO finding_priority … SELECT … ON CONFLICT (finding_id) DO UPDATE`` over
``findings ⋈ asset_context ⋈ kev`` whose CASE expressions are the matrix (or the SSVC
deployer table), the modifiers, the reason's code (compact JSON built by string
concatenation, byte for byte what ``prioritise`` gives: :mod:`patchpilot.scoring.reasons`)
and the SLA due date.  No row goes through Python, so a
million findings are re-prioritised in seconds on SQLite and PostgreSQL alike (SQLite
≥ 3.24 for the upsert).  A test checks the SQL against ``prioritise`` on every
combination of inputs.

Findings in every state but *fixed* get a priority (open and triaged ones: an accepted
risk still has a priority, for the day its acceptance expires); a fixed finding keeps the
priority it had when it was fixed, which is what SLA compliance and MTTR are measured by.
Rows whose priority, reason, method and due date are unchanged are not written again.

The configuration in force is the newest row of ``priority_config``, written by
:func:`save_config` -- every server process reads the same one -- or the shipped default.
Each change is also recorded in the audit log (action ``priority.config``), which says
who made it and when.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, Engine, String, bindparam, desc, insert, select, text
from sqlalchemy.engine import Connection

from patchpilot.audit import audit
from patchpilot.clock import now_utc
from patchpilot.db.tables import assets, findings, priority_config
from patchpilot.findings.events import PRIORITY_CHANGED
from patchpilot.findings.lifecycle import FIXED
from patchpilot.findings.summary import refresh as refresh_summary
from patchpilot.scoring import reasons
from patchpilot.scoring.priority import (
    BAND_ORDER,
    DEPLOYER_TABLE,
    HUMAN_IMPACT,
    SSVC_OUTCOMES,
    TIERS,
    PriorityConfig,
    config_from_mapping,
    default_config,
)

CONFIG_ACTION = "priority.config"


def _q(value: str) -> str:
    """A SQL string literal (the values come from a validated config, quoted anyway)."""
    return "'" + value.replace("'", "''") + "'"


def _text_q(value: str) -> str:
    """:func:`_q` for SQL run through ``text()``: a colon before a word ("threshold":0.1)
    would read as a bind parameter, so it is escaped."""
    return re.sub(r":(?=\w)", r"\\:", _q(value))


def _in(column: str, values: tuple[str, ...] | list[str]) -> str:
    """``lower(column) IN (…)``, or false for an empty list."""
    if not values:
        return "1 = 0"
    return f"lower({column}) IN ({', '.join(_q(v.lower()) for v in values)})"


def _real(dialect: str, value: float) -> str:
    return f"CAST({value!r} AS DOUBLE PRECISION)" if dialect == "postgresql" else repr(value)


def _base_columns(config: PriorityConfig) -> str:
    """The inputs of every finding, shared by both methods (level 0 of the query)."""
    tiers = ", ".join(map(str, TIERS))
    dt = config.default_tier
    return f"""
        f.id AS finding_id,
        CASE WHEN f.severity IN ({', '.join(map(_q, BAND_ORDER))}) THEN f.severity
             ELSE 'Unknown' END AS band,
        CASE WHEN c.asset_id IS NULL THEN {dt}
             WHEN c.criticality IN ({tiers}) THEN c.criticality ELSE {dt} END AS tier,
        CASE WHEN c.asset_id IS NULL THEN 1
             WHEN c.criticality IN ({tiers}) THEN 0 ELSE 2 END AS unknown,
        CASE WHEN f.known_exploited THEN 1 ELSE 0 END AS kev,
        f.epss_score AS epss, c.exposure AS exposure, c.environment AS environment,
        c.compensating_control AS control,
        COALESCE(f.reopened_at, f.first_seen) AS detected,
        k.due_date AS kev_due"""


def _known_sql() -> str:
    """``,"asset_known":…,"tier_known":…`` of a reason, from level 0's ``unknown``."""
    return ("""',"asset_known":' || CASE unknown WHEN 1 THEN 'false' ELSE 'true' END """
            """|| ',"tier_known":' || CASE unknown WHEN 0 THEN 'true' ELSE 'false' END""")


def _matrix_levels(config: PriorityConfig, dialect: str) -> tuple[str, str, str]:
    """(level-1 columns, priority expression over level 2, reason expression)."""
    base = "CASE band " + " ".join(
        f"WHEN {_q(band)} THEN CASE tier "
        + " ".join(f"WHEN {t} THEN {row[t - 1]}" for t in TIERS) + " END"
        for band, row in config.matrix.items()) + " END"
    epss = f"CASE WHEN epss IS NOT NULL AND epss > {_real(dialect, config.epss_threshold)} " \
           "THEN 1 ELSE 0 END"
    inet = f"CASE WHEN {_in('exposure', config.internet_facing)} THEN 1 ELSE 0 END"
    ctrl = ("CASE WHEN control IS NOT NULL AND trim(control) <> '' THEN 1 ELSE 0 END"
            if config.compensating_control else "0")
    dev = f"CASE WHEN {_in('environment', config.development)} THEN 1 ELSE 0 END"
    level1 = (f"{base} AS base, {epss} AS m_epss, {inet} AS m_inet, {ctrl} AS m_ctrl, "
              f"{dev} AS m_dev")
    raw = "(base - m_epss - m_inet + m_ctrl + m_dev)"
    clamped = f"CASE WHEN {raw} < 1 THEN 1 WHEN {raw} > 4 THEN 4 ELSE {raw} END"
    top = ", ".join(map(str, config.kev_top_tiers)) or "0"
    floor = config.kev_floor
    priority = (f"CASE WHEN kev = 1 AND tier IN ({top}) THEN 1 "
                f"WHEN kev = 1 AND {clamped} > {floor} THEN {floor} ELSE {clamped} END")
    # The code of the reason as compact JSON, byte for byte what reasons.dumps writes of
    # priority._matrix's code; each adjustment brings its leading comma, the first dropped.
    adjustments = " || ".join(
        f"CASE WHEN {flag} = 1 THEN {_text_q(',' + reasons.dumps(code))} ELSE '' END"
        for flag, code in (("kev", {"code": reasons.KEV}),
                           ("m_epss", {"code": reasons.EPSS,
                                       "threshold": config.epss_threshold}),
                           ("m_inet", {"code": reasons.INTERNET_FACING}),
                           ("m_ctrl", {"code": reasons.COMPENSATING_CONTROL}),
                           ("m_dev", {"code": reasons.DEVELOPMENT})))
    reason = " || ".join([
        """'{"code":"matrix","priority":' || CAST(priority AS VARCHAR)""",
        """',"severity":"' || band || '","tier":' || CAST(tier AS VARCHAR)""",
        _known_sql(),
        f"""',"adjustments":[' || substr({adjustments}, 2) || ']}}'"""])
    return level1, priority, reason


def _ssvc_levels(config: PriorityConfig, dialect: str) -> tuple[str, str, str]:
    """(level-1 columns, priority expression over level 2, reason expression)."""
    exploitation = (
        "CASE WHEN kev = 1 THEN 'active' WHEN epss IS NOT NULL AND epss > "
        f"{_real(dialect, config.ssvc_poc_epss_threshold)} THEN 'PoC' ELSE 'none' END")
    exposure = "CASE " + " ".join(
        f"WHEN lower(exposure) = {_q(key)} THEN {_q(value)}"
        for key, value in sorted(config.ssvc_exposure.items())) \
        + f" ELSE {_q(config.ssvc_default_exposure)} END"
    if not config.ssvc_exposure:
        exposure = _q(config.ssvc_default_exposure)
    automatable = (f"CASE WHEN band IN ({', '.join(map(_q, config.ssvc_automatable_severities))})"
                   " THEN 'yes' ELSE 'no' END" if config.ssvc_automatable_severities
                   else "'no'")
    impact = "CASE tier " + " ".join(
        f"WHEN {t} THEN {_q(config.ssvc_human_impact[t])}" for t in TIERS) + " END"
    level1 = (f"{exploitation} AS s_e, {exposure} AS s_x, {automatable} AS s_a, "
              f"{impact} AS s_h")
    outcome_priority = {name: p for p, name in SSVC_OUTCOMES.values()}
    priority = "CASE s_e || '|' || s_x || '|' || s_a || '|' || s_h " + " ".join(
        f"WHEN {_q('|'.join(key))} THEN {outcome_priority[name]}"
        for key, name in sorted(DEPLOYER_TABLE.items())) + " END"
    outcome = "CASE priority " + " ".join(
        f"WHEN {p} THEN {_q(name)}" for p, name in SSVC_OUTCOMES.values()) + " END"
    reason = " || ".join([
        """'{"code":"ssvc","priority":' || CAST(priority AS VARCHAR)""",
        f"""',"outcome":"' || {outcome} || '","exploitation":"' || s_e""",
        """'","exposure":"' || s_x || '","automatable":"' || s_a""",
        """'","human_impact":"' || s_h || '"'""", _known_sql(), "'}'"])
    assert set(HUMAN_IMPACT) >= set(config.ssvc_human_impact.values())
    return level1, priority, reason


def _due(config: PriorityConfig, dialect: str, column: str = "priority") -> str:
    """The due date: detection + the SLA days of the priority (``column``), or the KEV
    date if earlier."""
    days = f"CASE {column} " + " ".join(
        f"WHEN {p} THEN {config.sla_days[p]}" for p in sorted(config.sla_days)) + " END"
    has_kev = "kev_due IS NOT NULL AND kev_due <> ''"
    if dialect == "postgresql":
        sla = f"(detected + make_interval(days => {days}))"
        # The end of the KEV due date: midnight UTC after it (priority.kev_deadline).
        kev = "(CAST(CAST(kev_due AS DATE) + 1 AS TIMESTAMP) AT TIME ZONE 'UTC')"
    else:
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'; datetime()
        # drops the fraction, so it is carried over to keep the exact instant.
        sla = f"(datetime(detected, '+' || ({days}) || ' days') || substr(detected, 20))"
        kev = "(datetime(kev_due, '+1 day') || '.000000')"
    if not config.kev_due_date:
        return sla
    return f"CASE WHEN {has_kev} AND {kev} < {sla} THEN {kev} ELSE {sla} END"


def reprioritise_sql(config: PriorityConfig, dialect: str, *, one_asset: bool = False,
                     some_assets: bool = False, one_finding: bool = False,
                     asset_range: bool = False) -> str:
    """The one statement that writes ``finding_priority`` for every unfixed finding (of
    ``:asset_id``, of the expanding ``:asset_ids``, of the assets with ids from ``:lo`` to
    ``:hi``, or the one ``:finding_id``).

    A priority set on the finding by hand or by a playbook (``finding_overrides``) is
    kept when it is more urgent than the computed one: the stored priority is the lower
    number of the two, its SLA due date follows it, and the reason -- the computed one,
    which still explains the finding -- gets ``"override": P`` appended (rendered as
    "raised to P1 by override")."""
    level1, priority, reason = (_ssvc_levels if config.method == "ssvc"
                                else _matrix_levels)(config, dialect)
    where = f"f.state <> {_q(FIXED)}" + (" AND f.asset_id = :asset_id" if one_asset else "") \
        + (" AND f.asset_id IN :asset_ids" if some_assets else "") \
        + (" AND f.id = :finding_id" if one_finding else "") \
        + (" AND f.asset_id BETWEEN :lo AND :hi" if asset_range else "")
    distinct = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    # Level 3 picks the more urgent of the computed priority and the override; level 4
    # (the outer SELECT) appends the override to the reason's JSON when it decided.
    return f"""
INSERT INTO finding_priority (finding_id, priority, reason, method, due_date, computed_at)
SELECT finding_id, final,
       CASE WHEN final < priority
            THEN substr(reason0, 1, length(reason0) - 1) || ',"override":'
                 || CAST(final AS VARCHAR) || '}}'
            ELSE reason0 END,
       {_q(config.method)}, {_due(config, dialect, "final")}, :now
FROM (SELECT l2.*, {reason} AS reason0,
             CASE WHEN o_priority IS NOT NULL AND o_priority < priority THEN o_priority
                  ELSE priority END AS final
      FROM (SELECT l1.*, {priority} AS priority
            FROM (SELECT l0.*, {level1}
                  FROM (SELECT {_base_columns(config)}, o.priority AS o_priority
                        FROM findings f
                        LEFT JOIN asset_context c ON c.asset_id = f.asset_id
                        LEFT JOIN kev k ON k.cve = f.vuln_id
                        LEFT JOIN finding_overrides o ON o.finding_id = f.id
                        WHERE {where}) l0) l1) l2) l3
WHERE 1 = 1
ON CONFLICT (finding_id) DO UPDATE SET
    priority = excluded.priority, reason = excluded.reason, method = excluded.method,
    due_date = excluded.due_date, computed_at = excluded.computed_at
WHERE finding_priority.priority <> excluded.priority
   OR finding_priority.reason <> excluded.reason
   OR finding_priority.method <> excluded.method
   OR finding_priority.due_date {distinct} excluded.due_date
"""


def reprioritise(conn: Connection, config: PriorityConfig | None = None, *,
                 asset_id: int | None = None, finding_id: int | None = None,
                 asset_range: tuple[int, int] | None = None,
                 now: datetime | None = None, summary: bool = True,
                 actor: str | None = None) -> int:
    """Write the priority of every unfixed finding (of ``asset_id``, of the assets with ids
    in ``asset_range`` -- both ends included: a chunk of a divided re-prioritisation -- or
    the one ``finding_id``); rows changed.

    One statement, inside the caller's transaction; then the per-asset summary rows,
    unless ``summary`` is false (a caller that refreshes them itself, once, after more
    work: ``pipeline.process_inventory``).  ``actor`` goes on the ``priority_changed``
    events (a playbook that raised the priority: ``playbook:<name>``; None when the
    configuration or the evidence moved it).
    """
    config = config or active_config(conn)
    sql = reprioritise_sql(config, conn.dialect.name, one_asset=asset_id is not None,
                           one_finding=finding_id is not None,
                           asset_range=asset_range is not None)
    params: dict[str, Any] = {"now": now or now_utc()}
    where: dict[str, Any] = {}
    one = ""
    if asset_id is not None:
        where["asset_id"] = asset_id
        one += " AND findings.asset_id = :asset_id"
    if finding_id is not None:
        where["finding_id"] = finding_id
        one += " AND findings.id = :finding_id"
    if asset_range is not None:
        where["lo"], where["hi"] = asset_range
        one += " AND findings.asset_id BETWEEN :lo AND :hi"
    # Typed so that SQLite gets SQLAlchemy's own datetime text, as in every other column.
    typed = bindparam("now", type_=DateTime(timezone=True))
    result = conn.execute(text(sql).bindparams(typed), {**params, **where})
    # The moves, as priority_changed events (read from the old rank before it follows),
    # then the list's sort key, then the dashboard's per-asset counts.
    events = text(PRIORITY_EVENTS_SQL + one).bindparams(
        typed, bindparam("actor", type_=String(200)))
    conn.execute(events, {**params, **where, "actor": actor})
    conn.execute(text(rank_sql(conn.dialect.name, one)), where)
    if summary:
        if finding_id is not None and asset_id is None:
            asset_id = conn.execute(select(findings.c.asset_id)
                                    .where(findings.c.id == finding_id)).scalar()
        if asset_range is not None:
            # The range's rows only: the chunks of a division refresh every row between them.
            ids: list[int] | None = list(conn.execute(
                select(assets.c.id).where(assets.c.id.between(*asset_range))).scalars())
        else:
            ids = None if asset_id is None else [asset_id]
        refresh_summary(conn, ids, now=params["now"])
    return int(result.rowcount or 0)


# How many assets one statement of reprioritise_assets binds.
_ASSET_CHUNK = 1000


def reprioritise_assets(conn: Connection, asset_ids: Sequence[int], *,
                        config: PriorityConfig | None = None,
                        now: datetime | None = None) -> int:
    """:func:`reprioritise` for the unfixed findings of ``asset_ids`` only (an import's
    assets), a few thousand assets a statement; the summary rows are the caller's."""
    config = config or active_config(conn)
    sql = reprioritise_sql(config, conn.dialect.name, some_assets=True)
    when = now or now_utc()
    typed = (bindparam("now", type_=DateTime(timezone=True)),)
    some = " AND findings.asset_id IN :asset_ids"
    changed = 0
    for start in range(0, len(asset_ids), _ASSET_CHUNK):
        ids = list(asset_ids[start:start + _ASSET_CHUNK])
        expanding: Any = bindparam("asset_ids", value=ids, expanding=True)
        result = conn.execute(text(sql).bindparams(*typed, expanding), {"now": when})
        changed += int(result.rowcount or 0)
        conn.execute(text(PRIORITY_EVENTS_SQL + some).bindparams(*typed, expanding),
                     {"now": when, "actor": None})
        conn.execute(text(rank_sql(conn.dialect.name, some)).bindparams(expanding))
    return changed


# findings.priority_rank is the rank before this re-prioritisation: 5 until a finding was
# first prioritised, which is no change of priority (and writes no event).
PRIORITY_EVENTS_SQL = f"""
INSERT INTO finding_events (at, finding_id, asset_id, kind, actor, detail)
SELECT :now, findings.id, findings.asset_id, '{PRIORITY_CHANGED}', :actor,
       '{{"from": ' || CAST(findings.priority_rank AS VARCHAR) || ', "to": '
       || CAST(fp.priority AS VARCHAR) || '}}'
FROM findings JOIN finding_priority fp ON fp.finding_id = findings.id
WHERE findings.state <> 'fixed' AND findings.priority_rank <> fp.priority
  AND findings.priority_rank <> 5"""

RANK_SQL = """
UPDATE findings SET priority_rank = fp.priority FROM finding_priority fp
WHERE fp.finding_id = findings.id AND findings.state <> 'fixed'
  AND findings.priority_rank <> fp.priority"""

# SQLite runs UPDATE … FROM by first copying every joined row -- the findings' whole JSON
# included -- into a temporary table (140 MB and half a second for an import of 27,000
# findings); this form copies only the ids of the rows to change.
_RANK_SQL_SQLITE = """
UPDATE findings SET priority_rank = (
    SELECT fp.priority FROM finding_priority fp WHERE fp.finding_id = findings.id)
WHERE findings.id IN (
    SELECT findings.id FROM findings JOIN finding_priority fp ON fp.finding_id = findings.id
    WHERE findings.state <> 'fixed' AND findings.priority_rank <> fp.priority{where})"""


def rank_sql(dialect: str, where: str = "") -> str:
    """The statement that copies each unfixed finding's priority to its sort key
    (``where``: more conditions on ``findings``, " AND findings.asset_id = :asset_id")."""
    if dialect == "sqlite":
        return _RANK_SQL_SQLITE.format(where=where)
    return RANK_SQL + where


def active_config(conn: Connection) -> PriorityConfig:
    """The configuration in force: the newest ``priority_config`` row, else the shipped
    default."""
    row = conn.execute(select(priority_config.c.config)
                       .order_by(desc(priority_config.c.id)).limit(1)).scalar()
    if row is None:
        return default_config()
    return config_from_mapping(orjson.loads(row))


def save_config(conn: Connection, config: PriorityConfig, actor: str) -> int:
    """Put ``config`` in force (a ``priority_config`` row, and an audit row saying who) and
    re-prioritise every unfixed finding; rows changed."""
    # JSON keys are text: the SLA's and SSVC's numeric keys are read back by the parser.
    mapping = orjson.loads(orjson.dumps(config.to_mapping(), option=orjson.OPT_NON_STR_KEYS))
    conn.execute(insert(priority_config).values(
        config=orjson.dumps(mapping).decode(), created_at=now_utc(), created_by=actor))
    audit(conn, actor, CONFIG_ACTION, config.method, {"config": mapping})
    return reprioritise(conn, config)


def reprioritise_engine(engine: Engine, *, asset_id: int | None = None) -> int:
    """:func:`reprioritise` with the configuration in force, in its own transaction."""
    with engine.begin() as conn:
        return reprioritise(conn, asset_id=asset_id)


def run_prioritise(engine: Engine, job: Any) -> dict[str, Any]:
    """The ``prioritise`` worker job: payload ``{"asset_id": n}`` or ``{}`` for all."""
    asset_id = job.payload.get("asset_id")
    changed = reprioritise_engine(engine, asset_id=int(asset_id) if asset_id else None)
    return {"asset_id": asset_id, "changed": changed}
