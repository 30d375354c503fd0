"""Importing a report end to end, on both databases: assets, findings per producer, the
lifecycle on re-import, triage that survives it, duplicates, dry runs, asset facts, and a
malformed file that leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select, update

from patchpilot.db.tables import (
    asset_facts,
    assets,
    audit_log,
    finding_events,
    finding_priority,
    findings,
    imports,
)
from patchpilot.findings.triage import record_decision
from patchpilot.importers.apply import import_file
from patchpilot.importers.model import ReportError
from patchpilot.knowledge.update import update_from

NESSUS = "tenable/nessus__nessus_with_cwe-.nessus"
PHP_CVES = ["CVE-2006-1015", "CVE-2006-1549", "CVE-2006-2660", "CVE-2006-4486",
            "CVE-2006-4625", "CVE-2006-4812", "CVE-2006-5465", "CVE-2006-5706",
            "CVE-2006-7205", "CVE-2007-0448", "CVE-2007-1381", "CVE-2007-1584",
            "CVE-2007-1888", "CVE-2007-2844", "CVE-2007-5424"]


def _sample(shared_data: Path, relative: str) -> Path:
    return shared_data / "reports" / relative


def _copy(src: Path, dst: Path, edit=None) -> Path:  # type: ignore[no-untyped-def]
    text = src.read_text(encoding="utf-8")
    dst.write_text(edit(text) if edit else text, encoding="utf-8")
    return dst


def _rows(engine: Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(findings.c.vuln_id, findings.c.state, findings.c.producer,
                                   findings.c.ecosystem, findings.c.package)
                            .order_by(findings.c.vuln_id)).all()


def test_nessus_import_creates_asset_findings_and_priorities(engine: Engine,
                                                              shared_data: Path) -> None:
    summary = import_file(engine, _sample(shared_data, NESSUS), actor="alice")
    assert (summary.format, summary.producer, summary.assets, summary.assets_created) == (
        "nessus", "importer:tenable", 1, ["testphp"])
    assert (summary.findings, summary.new, summary.fixed, summary.informational) == (
        15, 15, 0, 0)
    with engine.connect() as conn:
        asset = conn.execute(select(assets)).one()
        rows = conn.execute(select(findings).order_by(findings.c.vuln_id)).all()
        ranked = conn.execute(select(func.count()).select_from(finding_priority)).scalar_one()
        record = conn.execute(select(imports)).one()
        audited = conn.execute(select(audit_log.c.actor, audit_log.c.action)
                               .where(audit_log.c.action == "import")).all()
    assert (asset.name, asset.fqdn, orjson.loads(asset.ip_addresses), asset.os,
            asset.discovered_by) == ("testphp", "testphp.vulnweb.com",
                                     ["44.228.249.3"], "Linux Kernel 2.6", "importer:tenable")
    assert [r.vuln_id for r in rows] == PHP_CVES
    assert {(r.state, r.producer, r.ecosystem, r.package, r.severity, r.cvss_score,
             r.advisory_id) for r in rows} == {
        ("open", "importer:tenable", "network", "tcp/80", "High", 7.5, "nessus:31649")}
    data = orjson.loads(rows[0].data)
    assert data["name"] == "PHP 5.x < 5.2 Multiple Vulnerabilities"
    assert data["aliases"] == ["nessus:31649"]
    assert data["sources"] == ["importer:tenable"]
    assert data["cvss"]["vector"] == "AV:N/AC:L/Au:N/C:P/I:P/A:P"
    assert data["cvss"]["version"] == "2.0"
    assert data["solution"] == "Upgrade to PHP version 5.2.0 or later."
    assert data["exploit_reported"] is False
    assert data["cwes"] == ["CWE-94", "CWE-119", "CWE-399"]
    assert data["evidence"]["detail"].startswith(
        "Version source : http://testphp.vulnweb.com/secured/phpinfo.php")
    # No CVE record is loaded: every field is the report's, the exploit evidence none.
    assert data["field_sources"] == {"cvss": "report", "exploit": "report", "fix": "report",
                                     "name": "report", "severity": "report",
                                     "summary": "report"}
    assert ranked == 15
    assert (record.status, record.format, record.producer, record.digest) == (
        "done", "nessus", "importer:tenable", summary.digest)
    assert audited == [("alice", "import")]


def test_same_file_twice_changes_nothing(engine: Engine, shared_data: Path) -> None:
    path = _sample(shared_data, NESSUS)
    import_file(engine, path)
    with engine.connect() as conn:
        events_before = conn.execute(select(func.count()).select_from(finding_events)).scalar()
    again = import_file(engine, path)
    assert again.duplicate and (again.new, again.fixed, again.assets) == (0, 0, 0)
    with engine.connect() as conn:
        events_after = conn.execute(select(func.count()).select_from(finding_events)).scalar()
        statuses = conn.execute(select(imports.c.status).order_by(imports.c.id)).scalars().all()
    assert events_after == events_before
    assert statuses == ["done", "duplicate"]
    # Another scope is another producer: not a duplicate.
    scoped = import_file(engine, path, scope="dmz")
    assert (scoped.duplicate, scoped.producer, scoped.new, scoped.unchanged) == (
        False, "importer:tenable:dmz", 0, 15)
    assert {r.producer for r in _rows(engine)} == {"importer:tenable,importer:tenable:dmz"}


def test_reimport_closes_reopens_and_keeps_triage(engine: Engine, shared_data: Path,
                                                  tmp_path: Path) -> None:
    src = _sample(shared_data, NESSUS)
    import_file(engine, src)
    with engine.begin() as conn:
        asset_id = conn.execute(select(assets.c.id)).scalar_one()
        record_decision(conn, "bob", vuln_id="CVE-2006-1015", package=None, scope="asset",
                        asset_id=asset_id, decision="false_positive",
                        reason="PHP is not served on this host")
    # The next scan of the same host no longer reports the PHP plugin: all fixed.
    cleaned = _copy(src, tmp_path / "next.nessus", lambda t: t[:t.index(
        "<ReportItem ")] + t[t.index("</ReportItem>") + len("</ReportItem>"):])
    second = import_file(engine, cleaned)
    assert (second.assets, second.findings, second.fixed, second.new) == (1, 0, 15, 0)
    assert {r.state for r in _rows(engine)} == {"fixed"}
    # It comes back (a new scan: the same content with a new timestamp): reopened, and
    # the false-positive decision applies again.
    back = _copy(src, tmp_path / "again.nessus", lambda t: t + "\n")
    third = import_file(engine, back)
    assert (third.reopened, third.triaged, third.new) == (15, 1, 0)
    states = {r.vuln_id: r.state for r in _rows(engine)}
    assert states.pop("CVE-2006-1015") == "false_positive"
    assert set(states.values()) == {"open"}


def test_a_report_closes_only_its_own_producer(engine: Engine, shared_data: Path,
                                               tmp_path: Path) -> None:
    import_file(engine, _sample(shared_data, NESSUS))
    # A specialist's assessment (the generic format) reports one of the same CVEs on the
    # same host and port: one finding, both sources.
    generic = tmp_path / "assessment.csv"
    generic.write_text(
        "asset,vulnerability_id,title,port,protocol,severity\n"
        "testphp.vulnweb.com,CVE-2006-1015,PHP 5.1.6 on port 80,80,tcp,High\n"
        "testphp.vulnweb.com,WEB-7,Directory listing on /admin,80,tcp,Low\n",
        encoding="utf-8")
    summary = import_file(engine, generic)
    assert (summary.format, summary.assets_created, summary.new, summary.unchanged) == (
        "generic-csv", [], 1, 1)
    by_id = {r.vuln_id: r.producer for r in _rows(engine)}
    assert by_id["CVE-2006-1015"] == "importer:generic,importer:tenable"
    assert by_id["WEB-7"] == "importer:generic"
    with engine.connect() as conn:
        data = orjson.loads(conn.execute(select(findings.c.data).where(
            findings.c.vuln_id == "CVE-2006-1015")).scalar_one())
    assert data["sources"] == ["importer:generic", "importer:tenable"]
    # The next assessment no longer lists them: the generic producer lets go; Nessus still
    # reports CVE-2006-1015, so it stays open; WEB-7 was only the assessment's: fixed.
    generic.write_text("asset,vulnerability_id,title,port,protocol,severity\n"
                       "testphp.vulnweb.com,WEB-8,Verbose errors,80,tcp,Low\n",
                       encoding="utf-8")
    later = import_file(engine, generic)
    assert (later.new, later.fixed) == (1, 1)
    states = {r.vuln_id: (r.state, r.producer) for r in _rows(engine)}
    assert states["CVE-2006-1015"] == ("open", "importer:tenable")
    assert states["WEB-7"] == ("fixed", "importer:generic")


def test_informational_items_are_asset_facts(engine: Engine, shared_data: Path) -> None:
    summary = import_file(engine, _sample(shared_data, "tenable/nessus__nessus_many_vuln.xml"))
    assert (summary.findings, summary.informational, summary.assets) == (0, 7, 1)
    with engine.connect() as conn:
        facts = conn.execute(select(asset_facts.c.fact_id, asset_facts.c.title,
                                    asset_facts.c.port, asset_facts.c.producer)
                             .order_by(asset_facts.c.id)).all()
        count = conn.execute(select(func.count()).select_from(findings)).scalar_one()
    assert count == 0
    assert facts[0] == ("nessus:19506", "Nessus Scan Information", 0, "importer:tenable")
    assert [f.fact_id for f in facts] == ["nessus:19506", "nessus:54615", "nessus:45590",
                                          "nessus:11936", "nessus:12053", "nessus:11219",
                                          "nessus:11219"]


def test_dry_run_stores_nothing(engine: Engine, shared_data: Path) -> None:
    summary = import_file(engine, _sample(shared_data, NESSUS), dry_run=True)
    assert (summary.dry_run, summary.new, summary.assets_created) == (
        True, 15, ["testphp"])
    with engine.connect() as conn:
        for table in (assets, findings, imports, finding_events):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_malformed_report_is_refused_with_its_line_and_nothing_stored(
        engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    import_file(engine, _sample(shared_data, NESSUS))
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(findings)).scalar_one()
    text = _sample(shared_data, NESSUS).read_text(encoding="utf-8")
    broken = tmp_path / "cut.nessus"
    # A later export cut off inside the PHP item: no half of it may be applied (it would
    # close the 15 findings the item still reports).
    broken.write_text(text[:text.index("<cwe>CWE-399</cwe>")] + "<cwe>CWE-3", encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        import_file(engine, broken)
    assert caught.value.source == "cut.nessus"
    assert caught.value.line is not None and caught.value.line > 7676
    assert "malformed XML" in str(caught.value)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(findings).where(
            findings.c.state == "open")).scalar_one() == before == 15
        assert conn.execute(select(func.count()).select_from(imports)).scalar_one() == 1


def test_fields_completed_from_the_knowledge_base(engine: Engine, shared_data: Path) -> None:
    update_from(engine, [shared_data / "kev"])
    summary = import_file(engine, _sample(shared_data, "cyclonedx/log4j.json"))
    assert summary.format == "cyclonedx"
    with engine.connect() as conn:
        row = conn.execute(select(findings).where(
            findings.c.vuln_id == "CVE-2021-44228")).one()
    data = orjson.loads(row.data)
    assert (row.ecosystem, row.package, row.installed_version, row.known_exploited) == (
        "Maven", "org.apache.logging.log4j:log4j-core", "2.13.2", True)
    assert data["exploit"]["known_exploited"] is True
    assert data["field_sources"]["exploit"] == "knowledge base"


def test_unknown_asset_names_for_reports_without_one(engine: Engine,
                                                     shared_data: Path) -> None:
    summary = import_file(engine, _sample(shared_data, "npm_audit/many_vuln.json"),
                          asset="shop-frontend")
    assert (summary.assets_created, summary.new) == (["shop-frontend"], 5)
    with engine.begin() as conn:
        conn.execute(update(assets).values(name="renamed"))
    # The asset is found again by its artifact name, not duplicated.
    again = import_file(engine, _sample(shared_data, "npm_audit/one_vuln.json"),
                        asset="shop-frontend")
    assert (again.assets_created, again.assets, again.new, again.fixed) == ([], 1, 1, 5)


def test_a_sweep_answers_from_imported_reports(engine: Engine, shared_data: Path) -> None:
    from patchpilot.scans.sweeps import SweepQuery, start_sweep

    import_file(engine, _sample(shared_data, NESSUS))
    sweep = start_sweep(engine, SweepQuery(vuln="cve-2006-4486"), created_by="alice")
    assert sweep.vulns == ("CVE-2006-4486",)
    [result] = sweep.results
    assert (result.name, result.initial) == ("testphp", "affected")
    assert result.packages == [{"ecosystem": "network", "package": "tcp/80", "version": "",
                                "fixed": None, "vulns": ["CVE-2006-4486"], "installed": [],
                                "reported_by": ["importer:tenable"]}]
