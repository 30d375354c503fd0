"""Benchmark: matching 10,000 network devices' CPEs against the knowledge base.

The knowledge base holds every shared NVD (API 2.0) and CVE 5 record (their CPE
advisories: FortiOS, PAN-OS, Junos, …) and KEV.  The estate is a realistic mix of 10,000
devices: FortiGates on FortiOS 6.4/7.0/7.2/7.4 patch releases, Palo Alto firewalls on
PAN-OS 10.1-11.1 with hotfixes, Juniper on Junos 20.4-22.4 R/S releases, Cisco IOS trains,
Yamaha routers (Rev.15.02.x) and NEC firmware (1.0.x) -- each device one CPE package.

Target (issue 17): under 5 s for the 10,000 devices.  Prints the estate match (one call,
as a re-match or sweep runs it: each distinct firmware judged once) and, for scale, the
devices matched one by one (as 10,000 inventory uploads would be), on SQLite (and
PostgreSQL with --pg URL).

    python -m bench.bench_cpe_match [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import random
import time

from bench.common import DATA, main_on_databases
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.knowledge.cpe_names import CPE
from patchpilot.knowledge.matcher import match_packages
from patchpilot.knowledge.update import update_from
from patchpilot.models import Package

DEVICES = 10_000
TARGET_S = 5.0


def _firmware(rng: random.Random) -> tuple[str, str]:
    """One device's (CPE vendor:product, firmware as it reports it)."""
    kind = rng.choices(("fortios", "panos", "junos", "ios", "yamaha", "nec"),
                       weights=(35, 20, 15, 15, 10, 5))[0]
    if kind == "fortios":
        major = rng.choice(("6.4", "7.0", "7.2", "7.4"))
        return "fortinet:fortios", f"{major}.{rng.randint(0, 16)}"
    if kind == "panos":
        train = rng.choice(("10.1", "10.2", "11.0", "11.1"))
        base = f"{train}.{rng.randint(0, 13)}"
        return "paloaltonetworks:pan-os", (f"{base}-h{rng.randint(1, 8)}"
                                           if rng.random() < 0.4 else base)
    if kind == "junos":
        release = f"{rng.choice(('20.4', '21.2', '21.4', '22.1', '22.2', '22.4'))}" \
                  f"R{rng.randint(1, 3)}"
        return "juniper:junos", (f"{release}-S{rng.randint(1, 9)}"
                                 if rng.random() < 0.6 else release)
    if kind == "ios":
        return "cisco:ios", f"15.{rng.randint(0, 9)}({rng.randint(1, 7)})" \
                            f"{rng.choice(('M', 'T', 'SE'))}{rng.randint(1, 12)}"
    if kind == "yamaha":
        return "yamaha:rtx1210", f"Rev.14.01.{rng.randint(20, 42)}"
    return "nec:aterm_wx3600hp_firmware", f"1.0.{rng.randint(0, 9)}"


def estate() -> list[Package]:
    """The 10,000 devices' CPE packages (seeded: the same estate every run)."""
    rng = random.Random(17)
    return [Package(CPE, name, version) for name, version in
            (_firmware(rng) for _ in range(DEVICES))]


def run(url: str, label: str) -> None:
    """Load the shared NVD / CVE 5 / KEV records, then match the estate."""
    engine = make_engine(url)
    upgrade_schema(engine)
    roots = [DATA / "nvd" / d for d in ("nvd-api2-dependencytrack", "nvd-api2-osvdev",
                                        "cve5-critical-cvelist", "cve5-osvdev")]
    started = time.perf_counter()
    results = update_from(engine, [*roots, DATA / "kev"])
    load_s = time.perf_counter() - started
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT count(*), count(DISTINCT name) FROM affected WHERE ecosystem = 'CPE'"
        ).one()
    packages = estate()
    print(f"\n== {label}: {DEVICES:,} devices against {rows[0]} CPE rows of {rows[1]} "
          f"products (loaded {sum(r.records for r in results):,} records in {load_s:.1f} s;"
          f" target < {TARGET_S:.0f} s) ==")
    with engine.connect() as conn:
        started = time.perf_counter()
        result = match_packages(conn, packages)
        estate_s = time.perf_counter() - started
        affected = {id(p) for m in result.matches for p in m.packages}
        print(f"  estate match: {estate_s:.2f} s  {result.distinct:,} distinct firmware, "
              f"{len(result.matches):,} (firmware, CVE) matches, {len(affected):,} devices "
              f"affected, {len(result.undetermined):,} undetermined -> "
              f"{'OK' if estate_s < TARGET_S else 'SLOW'}")
        started = time.perf_counter()
        for pkg in packages:
            match_packages(conn, [pkg])
        one_by_one = time.perf_counter() - started
        print(f"  one device at a time: {one_by_one:.2f} s "
              f"({one_by_one / DEVICES * 1000:.2f} ms per device)")
    engine.dispose()


def main() -> None:
    """``--pg URL`` to run on PostgreSQL too."""
    main_on_databases("cpe_match", __doc__, run)


if __name__ == "__main__":
    main()
