"""Playbooks at scale: 100,000 finding events against 50 enabled playbooks evaluated and
their outbox rows written (target: under 10 s on each database), and a digest over 10,000
collected findings read and rendered (target: under 2 s).

The estate is the dashboard benchmark's generator at 2,000 assets × 50 findings (CMDB
context, site groups, tags, priorities), set-based; the 100,000 events are written with one
``INSERT … SELECT`` over the findings (new, reopened, priority changed, SLA breached, KEV
added).  The 50 playbooks vary their triggers and their CEL conditions over the finding
and the asset (severity, scores, KEV, priority, tier, exposure, environment, groups, tags,
CVE prefixes, packages, host names); four of them are digests.  Run::

    python -m bench.bench_playbooks [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine

from bench.common import main_on_databases, sql_now
from bench.dashboard_data import populate
from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.actions.digest import collected, render
from patchpilot.automation.conditions import forget_conditions
from patchpilot.automation.deliver import deliver_due
from patchpilot.automation.evaluate import condition_of, evaluate_events
from patchpilot.automation.schedule import fire_due
from patchpilot.automation.store import list_playbooks, save_playbook
from patchpilot.clock import now_utc
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import finding_events, outbox, playbooks
from patchpilot.reports.mail import SmtpSettings

ASSETS = 2_000
PER_ASSET = 50  # 100,000 findings, one event each
DIGEST_SIZE = 10_000
KINDS = ("[new]", "[new, reopened]", "[priority_changed]", "[sla_breached]",
         "[known_exploited_added]", "[new, known_exploited_added]")
# Each selects a few in a hundred to a few in a thousand of its events, as rules that
# mail people do; the digests collect more (about 10,000 each).
CONDITIONS = (
    'finding.severity == "Critical" && asset.criticality == {c} '
    '&& asset.exposure == "internet-facing"',
    'finding.known_exploited && asset.exposure == "internet-facing"',
    'finding.epss_score >= 0.9{e} && finding.severity == "Critical"',
    '"site-{g}" in asset.groups && finding.severity == "Critical"',
    'asset.environment == "production" && finding.priority == 1 && asset.criticality == {c}',
    "finding.cvss_score >= 9.{s} && asset.criticality == {c}",
    'finding.vuln_id.startsWith("CVE-2024-{d}99")',
    '"pci" in asset.tags && finding.priority == 1 && finding.known_exploited',
    'finding.package == "pkg-{k}"',
    'asset.name.endsWith("{d}7") && finding.severity == "High"',
)
DIGEST = 'finding.severity == "Critical" && asset.criticality <= {c}'


def _document(n: int) -> str:
    condition = CONDITIONS[n % len(CONDITIONS)].format(
        c=1 + n % 3, e=5 + n % 4, g=1 + n % 20, s=n % 8, d=n % 10,
        k=n % 300)
    if n % 12 == 5:  # a digest: collects, sent on its schedule
        condition = DIGEST.format(c=2 + n % 2)
        return (f"name: digest-{n}\ntrigger:\n  events: [new]\n  schedule: "
                f'{{cron: "0 8 * * *", timezone: Asia/Tokyo}}\n'
                f"condition: '{condition}'\nactions:\n  - type: digest\n"
                f"    with: {{to: [soc@plant.example]}}\n")
    return (f"name: playbook-{n}\ntrigger: {{events: {KINDS[n % len(KINDS)]}}}\n"
            f"condition: '{condition}'\nactions:\n  - type: email\n"
            f'    with: {{to: ["{{{{ asset.owner }}}}"]}}\n'
            + ("  - type: webhook\n    with: {url: \"https://soc.example.com/h\", "
               "secret_env: SOC_HOOK_KEY}\n" if n % 3 == 0 else ""))


def _write_events(engine: Engine, now: datetime) -> int:
    with engine.begin() as conn:
        conn.execute(sql_now("""
            INSERT INTO finding_events (at, finding_id, asset_id, kind, producer, detail)
            SELECT :now, id, asset_id,
                   CASE WHEN id % 10 < 7 THEN 'new' WHEN id % 10 = 7 THEN 'reopened'
                        WHEN id % 10 = 8 THEN 'priority_changed'
                        WHEN id % 20 = 9 THEN 'sla_breached'
                        ELSE 'known_exploited_added' END,
                   'matcher', NULL
            FROM findings ORDER BY id
            """), {"now": now})
        return int(conn.execute(select(func.count()).select_from(finding_events)).scalar_one())


def run(url: str, label: str) -> None:
    """Build the estate, store the playbooks, write the events, evaluate, render a digest."""
    engine = make_engine(url)
    upgrade_schema(engine)
    started = time.perf_counter()
    now = populate(engine, assets=ASSETS, per_asset=PER_ASSET)
    with engine.begin() as conn:
        for n in range(50):
            save_playbook(conn, "bench", _document(n))
    events = _write_events(engine, now)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("ANALYZE finding_events; ANALYZE findings"))
    print(f"{label}: {ASSETS * PER_ASSET:,} findings on {ASSETS:,} assets and {events:,} "
          f"events written in {time.perf_counter() - started:.1f} s")

    forget_conditions()  # cold: nothing kept from the other database's run
    started = time.perf_counter()
    done = evaluate_events(engine)
    evaluate_s = time.perf_counter() - started
    with engine.connect() as conn:
        stored = list_playbooks(conn, enabled_only=True)
        rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    conditions = {id(c): c for c in (condition_of(sp.playbook) for sp in stored) if c}
    worked = sum(len(c.memo) for c in conditions.values())
    print(f"{label}: {done.events:,} events × {len(stored)} playbooks evaluated, "
          f"{done.queued:,} outbox rows written ({done.collected:,} collected for digests; "
          f"{rows:,} stored), {worked:,} distinct field combinations worked out "
          f"({sum(len(c.paths) for c in conditions.values()) / len(conditions):.1f} fields "
          f"a condition), in {evaluate_s:.2f} s (target < 10 s)")
    errors = sum(done.condition_errors.values())
    if errors or done.invalid:
        print(f"{label}: condition errors {errors}, invalid {sorted(done.invalid)}")

    digest_s, size = _digest(engine, label)
    engine.dispose()
    _figures.append((label, done.events, done.queued, evaluate_s, size, digest_s))


_figures: list[tuple[str, int, int, float, int, float]] = []


class _Inbox:
    """An SMTP server's handler keeping the sizes of what it receives."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.sizes.append(len(envelope.content))
        return "250 OK"


def _digest(engine: Engine, label: str) -> tuple[float, int]:
    """The digest that collected most, cut to 10,000 rows: render them alone, then the
    whole round (schedule due, its event evaluated, gathered, rendered, mailed to a real
    SMTP server on loopback, the rows settled); (round seconds, rows)."""
    with engine.begin() as conn:
        playbook_id, count = max(conn.execute(
            select(outbox.c.playbook_id, func.count()).where(outbox.c.state == "collected")
            .group_by(outbox.c.playbook_id)).all(), key=lambda r: r[1])
        # Exactly DIGEST_SIZE collected: the rest as if sent by an earlier digest.
        cut = conn.execute(select(outbox.c.id).where(
            outbox.c.playbook_id == playbook_id, outbox.c.state == "collected")
            .order_by(outbox.c.id).offset(DIGEST_SIZE).limit(1)).scalar()
        if cut is not None:
            conn.execute(update(outbox).where(outbox.c.playbook_id == playbook_id,
                                              outbox.c.state == "collected",
                                              outbox.c.id >= cut).values(state="sent"))
        name = conn.execute(select(playbooks.c.name)
                            .where(playbooks.c.id == playbook_id)).scalar_one()
        conn.execute(update(playbooks).where(playbooks.c.id == playbook_id)
                     .values(next_run_at=now_utc() - timedelta(seconds=1)))
        # The other playbooks' mails and webhooks are not what is measured here.
        conn.execute(update(outbox).where(outbox.c.state == "queued")
                     .values(state="sent"))
    started = time.perf_counter()
    with engine.connect() as conn:
        payloads, _ = collected(conn, playbook_id, 0)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    subject, body = render(payloads, playbook=name, due="2026-03-02T23:00:00+00:00",
                           lang="en")
    render_s = time.perf_counter() - started
    print(f"{label}: digest {name}: {len(payloads):,} of {count:,} collected findings read "
          f"in {read_s:.2f} s, rendered in {render_s:.2f} s ({len(body.splitlines()):,} "
          f"lines, {len(body.encode()) // 1024:,} KiB)")
    inbox = _Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        started = time.perf_counter()
        fired = fire_due(engine)
        evaluate_events(engine)
        sent = deliver_due(engine, DeliverySettings(SmtpSettings(
            host="127.0.0.1", port=port, sender="patchpilot@plant.example"))).sent
        round_s = time.perf_counter() - started
    finally:
        smtp.stop()
    with engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.playbook_id == playbook_id, outbox.c.state == "collected")).scalar()
    print(f"{label}: digest round: {fired} schedule fired, {sent} digest mailed "
          f"({inbox.sizes[0] // 1024 if inbox.sizes else 0:,} KiB), {left} rows left "
          f"collected, in {round_s:.2f} s (target < 2 s)")
    return round_s, len(payloads)


def main() -> None:
    """Entry point: both databases, then the table of figures."""
    main_on_databases("playbooks", __doc__, run)
    print()
    print(f"{'database':<12}{'events':>10}{'outbox rows':>13}{'evaluate s':>12}"
          f"{'digest rows':>13}{'digest s':>10}")
    # (evaluate: events read, matched and their outbox rows written; digest: the whole
    # round of one digest -- gathered, rendered, mailed, settled.)
    for label, n, queued, seconds, size, digest_s in _figures:
        print(f"{label:<12}{n:>10,}{queued:>13,}{seconds:>12.2f}{size:>13,}{digest_s:>10.2f}")


if __name__ == "__main__":
    main()
