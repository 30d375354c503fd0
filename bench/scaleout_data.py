"""The scale-out benchmark's estate: bench/dashboard_data.py's findings plus stored
inventories, so that a re-match of the estate has real work.

The findings (``populate``: a year of scans, 20 groups, CMDB context, prioritised) are
reported by a network scanner's imports (producer ``importer:nessus``): a re-match neither
confirms nor closes them, as on an estate scanned by both.  Beside them every asset has an
agent's complete inventory, stored as ``asset_packages`` rows the way a sweep and a
re-match read them.  The package sets are :data:`PROFILES` hosts of bench/bench_sweep.py's
``estate_rows`` (the real Debian 12 dpkg status with one package in ten at another real
version, packages of the real npm and Python lock files, PyPI packages at versions real
OSV advisories name, Pygments at one of five releases), each cut to a host-sized sample;
asset ``n`` gets profile ``n % PROFILES``.  Only the profiles go through Python (a few
thousand rows, COPY); the assets' rows are one ``INSERT … SELECT`` over a generated series
joined to them.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, text
from sqlalchemy.engine import Engine

from bench.bench_sweep import estate_rows
from bench.common import series, sql_now
from patchpilot.clock import now_utc
from patchpilot.db.dialect import bulk_insert

PROFILES = 199  # prime: profiles do not line up with the 20 groups (asset n: group n % 20)
DEBIAN_PER_HOST = 60  # source packages of the Debian 12 status kept per profile
OTHER_PER_HOST = 12  # lock-file and PyPI packages kept per profile (plus Pygments)

_profiles = Table(
    "bench_profile_packages", MetaData(),
    Column("profile", Integer, nullable=False),
    Column("ecosystem", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("version", String(200), nullable=False),
    Column("installed", Text, nullable=False),
)
_COLUMNS = ("profile", "ecosystem", "name", "version", "installed")


def profile_rows(profiles: int = PROFILES, seed: int = 11
                 ) -> list[tuple[int, str, str, str, str]]:
    """The ``asset_packages`` rows of each profile, numbered 0..profiles-1."""
    rng = random.Random(seed)
    hosts, _ = estate_rows(profiles, seed=seed, windows_share=0.0)
    out = []
    for number, rows in enumerate(hosts):
        debian = [r for r in rows if r[0].startswith("Debian")]
        pygments = [r for r in rows if r[0] == "PyPI" and r[1] == "pygments"]
        other = [r for r in rows if not r[0].startswith("Debian") and r not in pygments]
        kept = (rng.sample(debian, k=min(DEBIAN_PER_HOST, len(debian))) + pygments
                + rng.sample(other, k=min(OTHER_PER_HOST, len(other))))
        out.extend((number, *r) for r in kept)
    return out


def store_inventories(engine: Engine, assets: int, profiles: int = PROFILES,
                      now: datetime | None = None) -> int:
    """One complete agent inventory per asset 1..assets (populate's), its
    ``asset_packages`` rows from the profiles; the rows stored."""
    d = engine.dialect.name
    now = now or now_utc()
    rows = profile_rows(profiles)
    with engine.begin() as conn:
        _profiles.create(conn)
        bulk_insert(conn, _profiles, _COLUMNS, rows)
        conn.execute(sql_now(f"""
            INSERT INTO inventories (id, asset_id, collected_at, received_at, collector,
                                     complete, packages, document)
            SELECT n, n, :now, :now, 'agent', true, c.rows, '{{}}'
            FROM ({series(d, assets)}) s
            JOIN (SELECT profile, COUNT(*) AS rows FROM bench_profile_packages
                  GROUP BY profile) c ON c.profile = n % {profiles}
            """), {"now": now})
        conn.execute(text("UPDATE assets SET last_inventory_id = id, ecosystem = 'Debian:12'"))
        stored = conn.execute(text(f"""
            INSERT INTO asset_packages (asset_id, ecosystem, name, version, installed)
            SELECT n, p.ecosystem, p.name, p.version, p.installed
            FROM ({series(d, assets)}) s
            JOIN bench_profile_packages p ON p.profile = n % {profiles}
            """)).rowcount
        if d == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('inventories', 'id'), "
                              f"{assets})"))
        _profiles.drop(conn)
    with engine.connect() as conn:
        if d == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE assets, inventories, asset_packages"))
        else:
            conn.execute(text("ANALYZE"))
    return int(stored)
