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

import time
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from bench.common import main_on_databases, sql_now
from bench.dashboard_data import populate
from patchpilot.automation.actions.digest import collected, render
from patchpilot.automation.evaluate import condition_of, evaluate_events
from patchpilot.automation.store import list_playbooks, save_playbook
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import finding_events, outbox, playbooks

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

    started = time.perf_counter()
    done = evaluate_events(engine)
    evaluate_s = time.perf_counter() - started
    with engine.connect() as conn:
        stored = list_playbooks(conn, enabled_only=True)
        rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    conditions = {id(c): c for c in (condition_of(sp.playbook) for sp in stored) if c}
    evaluations = sum(len(c.memo) for c in conditions.values())
    print(f"{label}: {done.events:,} events × {len(stored)} playbooks evaluated, "
          f"{done.queued:,} outbox rows written ({done.collected:,} collected for digests; "
          f"{rows:,} stored), {evaluations:,} CEL evaluations for "
          f"{sum(len(c.paths) for c in conditions.values()) / len(conditions):.1f} fields "
          f"a condition, in {evaluate_s:.2f} s (target < 10 s)")
    errors = sum(done.condition_errors.values())
    if errors or done.invalid:
        print(f"{label}: condition errors {errors}, invalid {sorted(done.invalid)}")

    with engine.connect() as conn:
        digest = max(((pid, n) for pid, n in conn.execute(
            select(outbox.c.playbook_id, func.count()).where(outbox.c.state == "collected")
            .group_by(outbox.c.playbook_id))), key=lambda r: r[1])
        name = conn.execute(select(playbooks.c.name)
                            .where(playbooks.c.id == digest[0])).scalar_one()
    started = time.perf_counter()
    with engine.connect() as conn:
        payloads, _ = collected(conn, digest[0], 0)
    payloads = payloads[:DIGEST_SIZE]
    read_s = time.perf_counter() - started
    subject, body = render(payloads, playbook=name, due="2026-03-02T23:00:00+00:00",
                           lang="en")
    render_s = time.perf_counter() - started - read_s
    print(f"{label}: digest {name} over {len(payloads):,} collected findings "
          f"({digest[1]:,} collected): read {read_s:.2f} s + rendered {render_s:.2f} s = "
          f"{read_s + render_s:.2f} s (target < 2 s), {len(body.splitlines()):,} lines, "
          f"{subject!r}")
    engine.dispose()
    _figures.append((label, done.events, done.queued, evaluate_s, len(payloads),
                     read_s + render_s))


_figures: list[tuple[str, int, int, float, int, float]] = []


def main() -> None:
    """Entry point: both databases, then the table of figures."""
    main_on_databases("playbooks", __doc__, run)
    print()
    print(f"{'database':<12}{'events':>10}{'outbox rows':>13}{'evaluate s':>12}"
          f"{'digest rows':>13}{'digest s':>10}")
    for label, n, queued, seconds, size, digest_s in _figures:
        print(f"{label:<12}{n:>10,}{queued:>13,}{seconds:>12.2f}{size:>13,}{digest_s:>10.2f}")


if __name__ == "__main__":
    main()
