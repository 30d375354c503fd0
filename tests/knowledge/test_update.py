"""``db update``: loading real feed files, incrementally, one transaction per source."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from sqlalchemy import Engine, func, select

from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.db.tables import (
    advisories,
    advisory_aliases,
    advisory_vulns,
    affected,
    cve_records,
    epss,
    feed_state,
    kev,
)
from patchpilot.knowledge import update
from patchpilot.knowledge.status import knowledge_status
from patchpilot.knowledge.update import discover, update_from

PYGMENTS = {f"pypi/pygments/{n}.yaml": f"osv/pypi/pygments/{n}.yaml"
            for n in ("PYSEC-2016-32", "PYSEC-2021-140", "PYSEC-2021-141", "PYSEC-2023-117")}
GO = {f"go/{n}.json": f"osv/go/{n}.json" for n in ("GO-2020-0001", "GO-2020-0003")}


def _count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _snapshot(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(advisories.c.pk, advisories.c.id, advisories.c.source, advisories.c.digest)
            .order_by(advisories.c.pk))]


def test_load_counts_and_sources(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir({**PYGMENTS, **GO})
    results = update_from(engine, [root])
    assert [(r.source, r.status, r.records, r.written) for r in results] == [
        ("osv:feeds/go", "loaded", 2, 2), ("osv:feeds/pypi", "loaded", 4, 4)]
    assert _count(engine, advisories) == 6
    # GO-2020-0001 names one module; GO-2020-0003 one; each PYSEC names pygments once.
    assert _count(engine, affected) == 6
    with engine.connect() as conn:
        vulns = dict(conn.execute(select(advisories.c.id, advisory_vulns.c.vuln_id).join(
            advisory_vulns, advisory_vulns.c.advisory_pk == advisories.c.pk)).all())
        aliases = set(conn.execute(select(advisory_aliases.c.alias)).scalars())
    assert vulns["GO-2020-0001"] == "CVE-2020-36567"
    assert vulns["PYSEC-2023-117"] == "CVE-2022-40896"
    assert {"GHSA-6vm3-jj99-7229", "GO-2020-0001", "PYSEC-2023-117"} <= aliases
    status = knowledge_status(engine)
    assert status.advisories == 6
    assert {(e["feed"], e["ecosystem"], e["advisories"]) for e in status.ecosystems} == {
        ("osv", "Go", 2), ("osv", "PyPI", 4)}


def test_second_run_is_unchanged_and_force_rewrites_nothing(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir(PYGMENTS)
    update_from(engine, [root])
    before = _snapshot(engine)
    assert [r.status for r in update_from(engine, [root])] == ["unchanged"]
    forced = update_from(engine, [root], force=True)
    assert [(r.status, r.records, r.written, r.removed) for r in forced] == [
        ("loaded", 4, 0, 0)]
    assert _snapshot(engine) == before  # same rows, same primary keys


def test_only_changed_advisories_are_rewritten(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir(PYGMENTS)
    update_from(engine, [root])
    before = {row[1]: row for row in _snapshot(engine)}
    changed = root / "pypi/pygments/PYSEC-2021-140.yaml"
    changed.write_text(changed.read_text().replace("details:", "summary: Updated upstream\n"
                                                   "details:", 1))
    (root / "pypi/pygments/PYSEC-2016-32.yaml").unlink()
    (result,) = update_from(engine, [root])
    assert (result.status, result.records, result.written, result.removed) == (
        "loaded", 3, 1, 1)
    after = {row[1]: row for row in _snapshot(engine)}
    assert set(after) == {"PYSEC-2021-140", "PYSEC-2021-141", "PYSEC-2023-117"}
    assert after["PYSEC-2021-141"] == before["PYSEC-2021-141"]  # untouched
    assert after["PYSEC-2021-140"][3] != before["PYSEC-2021-140"][3]
    assert _count(engine, affected) == 3


def test_corrupt_file_fails_its_source_and_keeps_what_was_there(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir({**PYGMENTS, **GO})
    update_from(engine, [root])
    before = _snapshot(engine)
    # A truncated JSON record in go/, and a good change in pypi/.
    good = root / "go/GO-2020-0003.json"
    good.write_bytes(good.read_bytes()[:200])
    os.utime(good, ns=(1, 1))
    (root / "pypi/pygments/PYSEC-2016-32.yaml").unlink()
    go, pypi = update_from(engine, [root])
    assert go.status == "failed"
    assert "GO-2020-0003.json" in go.error and "invalid JSON" in go.error
    assert (pypi.status, pypi.removed) == ("loaded", 1)
    after = _snapshot(engine)
    assert [r for r in after if r[2] == "osv:feeds/go"] == [
        r for r in before if r[2] == "osv:feeds/go"]
    assert len(after) == len(before) - 1


def test_yaml_syntax_error_names_the_file(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir(PYGMENTS)
    broken = root / "pypi/pygments/PYSEC-2023-117.yaml"
    broken.write_text(broken.read_text() + "\naffected: [unclosed\n")
    (result,) = update_from(engine, [root])
    assert result.status == "failed"
    assert "PYSEC-2023-117.yaml" in result.error
    assert _count(engine, advisories) == 0  # nothing half-written
    assert _count(engine, feed_state) == 0


def test_a_zip_is_a_source_of_its_own(engine: Engine, feed_dir, shared_data: Path,  # type: ignore[no-untyped-def]
                                      tmp_path: Path) -> None:
    root = feed_dir(GO)
    with zipfile.ZipFile(root / "Go-all.zip", "w") as zf:
        for name in ("GO-2021-0078", "GO-2020-0014"):
            zf.write(shared_data / f"osv/go/{name}.json", f"{name}.json")
    sources = discover([root])
    assert [(s.key, len(s.files)) for s in sources] == [
        ("osv:feeds/Go-all.zip", 1), ("osv:feeds/go", 2)]
    results = update_from(engine, [root])
    assert [(r.source, r.records) for r in results] == [
        ("osv:feeds/Go-all.zip", 2), ("osv:feeds/go", 2)]


def test_alpine_secdb_files_are_sources_of_their_own(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir({"alpine/v3.10/main.yaml": "osv/alpine-secdb/v3.10/main.yaml",
                     "alpine/v3.11/main.yaml": "osv/alpine-secdb/v3.11/main.yaml"})
    results = update_from(engine, [root])
    assert [r.source for r in results] == [
        "alpine-secdb:feeds/alpine/v3.10/main.yaml", "alpine-secdb:feeds/alpine/v3.11/main.yaml"]
    with engine.connect() as conn:
        ecosystems = set(conn.execute(select(affected.c.ecosystem).distinct()).scalars())
        n = conn.execute(select(func.count()).select_from(advisories)
                         .where(advisories.c.id == "CVE-2019-1543")).scalar_one()
    assert ecosystems == {"Alpine:3.10", "Alpine:3.11"}
    assert n == 2  # the same CVE once per release, neither replacing the other


def test_cve_records_kev_and_epss(engine: Engine, feed_dir) -> None:  # type: ignore[no-untyped-def]
    root = feed_dir({
        "kev/known_exploited_vulnerabilities.json": "kev/known_exploited_vulnerabilities.json",
        "epss/CVE_2021_EPSS.csv": "epss/CVE_2021_EPSS.csv",
        "cve5/CVE-2024-3094.json": "nvd/cve5-critical-cvelist/CVE-2024-3094.json",
    })
    results = {r.source: r for r in update_from(engine, [root])}
    assert {k: v.status for k, v in results.items()} == {
        "cve5:feeds/cve5": "loaded", "epss:feeds/epss": "loaded", "kev:feeds/kev": "loaded"}
    assert _count(engine, kev) == 1404
    assert _count(engine, cve_records) == 1
    with engine.connect() as conn:
        row = conn.execute(select(kev).where(kev.c.cve == "CVE-2021-44228")).one()
        assert (row.date_added, row.due_date, row.ransomware) == ("2021-12-10", "2021-12-24",
                                                                   True)
        n_epss = conn.execute(select(func.count()).select_from(epss)).scalar_one()
    with (root / "epss/CVE_2021_EPSS.csv").open() as fh:
        assert n_epss == sum(1 for line in fh if line.strip())


def _rows(engine: Engine) -> list[tuple]:
    """Every advisory with its digest and affected rows, by id (keys aside)."""
    with engine.connect() as conn:
        rows = conn.execute(select(advisories.c.source, advisories.c.id, advisories.c.digest,
                                   func.count(affected.c.advisory_pk))
                            .join(affected, affected.c.advisory_pk == advisories.c.pk)
                            .group_by(advisories.c.source, advisories.c.id,
                                      advisories.c.digest)
                            .order_by(advisories.c.source, advisories.c.id))
        return [tuple(r) for r in rows]


def test_worker_processes_load_what_one_process_does(engine: Engine, feed_dir,  # type: ignore[no-untyped-def]
                                                     monkeypatch) -> None:
    files = {**PYGMENTS, **GO,
             "alpine/v3.10/main.yaml": "osv/alpine-secdb/v3.10/main.yaml"}
    root = feed_dir(files)
    # A pool for any number of files, one file per unit of work.
    monkeypatch.setattr(update, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(update, "_BATCH", 1)
    pooled = update_from(engine, [root])
    assert [(r.status, r.records) for r in pooled] == [
        ("loaded", 1111), ("loaded", 2), ("loaded", 4)]
    loaded = _rows(engine)
    # The same input read in this process: every digest equal, nothing to write.
    monkeypatch.setattr(update, "PARALLEL_MIN_FILES", 10**9)
    again = update_from(engine, [root], force=True)
    assert [(r.status, r.written, r.removed) for r in again] == [("loaded", 0, 0)] * 3
    assert _rows(engine) == loaded
    # A corrupt file read by a worker fails its source alone, and nothing of it is written.
    monkeypatch.setattr(update, "PARALLEL_MIN_FILES", 0)
    bad = root / "go/GO-2020-0001.json"
    bad.write_bytes(b'{"id": "GO-2020-0001", "affected": [')
    alpine, go, pypi = update_from(engine, [root], force=True)
    assert (alpine.status, pypi.status, go.status) == ("loaded", "loaded", "failed")
    assert "GO-2020-0001.json" in (go.error or "") and "invalid JSON" in (go.error or "")
    assert _rows(engine) == loaded


def test_a_load_leaves_sqlite_checkpointing_as_it_was(engine: Engine, feed_dir,  # type: ignore[no-untyped-def]
                                                       monkeypatch) -> None:
    # Automatic checkpoints are off while a load writes (a thread copies the log after
    # each source here, and the load once more at its end): the connection it wrote with
    # goes back to the pool with the setting it had, and the whole log is copied.
    monkeypatch.setattr(update, "_COPY_AFTER", 1)
    root = feed_dir({**PYGMENTS, **GO})
    assert [r.status for r in update_from(engine, [root])] == ["loaded", "loaded"]
    assert _count(engine, advisories) == 6
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert busy == 0 and log == done  # nothing left in the log to copy


def test_a_database_without_a_log_loads_too(feed_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # An in-memory SQLite database has no write-ahead log: nothing to copy, same load.
    monkeypatch.setattr(update, "_COPY_AFTER", 1)
    engine = make_engine("sqlite:///:memory:")
    upgrade_schema(engine)
    try:
        results = update_from(engine, [feed_dir({**PYGMENTS, **GO})])
        assert [(r.status, r.records) for r in results] == [("loaded", 2), ("loaded", 4)]
        assert _count(engine, advisories) == 6
    finally:
        engine.dispose()


def test_an_id_read_twice_by_workers_keeps_the_last_files_advisory(  # type: ignore[no-untyped-def]
        engine: Engine, feed_dir, monkeypatch) -> None:
    # Workers hand over each unit's advisories as rows keyed from 0; on a first load the
    # writer inserts them as they are.  GO-2020-0001 comes twice, the second copy (a later
    # file) with another summary: that one is kept, under a key of its own.
    root = feed_dir({"go/a/GO-2020-0001.json": "osv/go/GO-2020-0001.json",
                     "go/a/GO-2020-0003.json": "osv/go/GO-2020-0003.json",
                     "go/b/GO-2020-0001.json": "osv/go/GO-2020-0001.json"})
    later = root / "go/b/GO-2020-0001.json"
    later.write_bytes(later.read_bytes().replace(b"Arbitrary log line injection",
                                                 b"Log line injection"))
    monkeypatch.setattr(update, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(update, "_BATCH", 1)
    [first] = update_from(engine, [root])
    assert (first.status, first.records, first.written) == ("loaded", 2, 2)
    with engine.connect() as conn:
        summaries = dict(conn.execute(select(advisories.c.id, advisories.c.record)).all())
        keys = conn.execute(select(affected.c.advisory_pk, affected.c.advisory_id)
                            .order_by(affected.c.advisory_id)).all()
    assert sorted(summaries) == ["GO-2020-0001", "GO-2020-0003"]
    assert '"summary":"Log line injection in github.com/gin-gonic/gin"' in summaries[
        "GO-2020-0001"]
    assert [adv_id for _, adv_id in keys] == ["GO-2020-0001", "GO-2020-0003"]
    assert len({pk for pk, _ in keys}) == 2
    status = knowledge_status(engine)
    assert status.advisories == 2
    assert {(e["ecosystem"], e["advisories"]) for e in status.ecosystems} == {("Go", 2)}
    loaded = _rows(engine)
    # Read again by the workers, now that the source is stored: compared by digest, the
    # same advisories, nothing written.
    [again] = update_from(engine, [root], force=True)
    assert (again.status, again.records, again.written, again.removed) == ("loaded", 2, 0, 0)
    assert _rows(engine) == loaded
    # The first copy changed: the source's advisory is still the last file's.
    first_copy = root / "go/a/GO-2020-0001.json"
    first_copy.write_bytes(first_copy.read_bytes().replace(b"gin-gonic", b"gin-tonic"))
    [third] = update_from(engine, [root], force=True)
    assert (third.written, third.removed) == (0, 0)
    assert _rows(engine) == loaded
