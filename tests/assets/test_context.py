"""CMDB records applied to assets on both databases: matching by each key, unmatched and
ambiguous rows, one transaction, idempotent re-import, unknown assets defaulted."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, insert, select

from patchpilot.assets.cmdb import CmdbFormatError, parse_csv, parse_file, parse_json
from patchpilot.assets.context import (
    apply_records,
    context_of,
    ensure_defaults,
    set_context,
    unknown_assets,
)
from patchpilot.clock import now_utc
from patchpilot.db.tables import asset_context, assets, audit_log
from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory
from patchpilot.models import Ecosystem, Package

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cmdb.csv"
OPENSSL = Package(Ecosystem("Debian:12"), "openssl", "3.0.11-1~deb12u2")


def _scan(engine: Engine, **identity: object) -> int:
    """An asset as a real agent upload creates it."""
    inv = Inventory.from_packages([OPENSSL], asset=AssetIdentity(**identity),  # type: ignore[arg-type]
                                  collector=Collector(name="agent"))
    return ingest_inventory(engine, inv).asset_id


def _insert(engine: Engine, name: str, ips: list[str] | None = None,
            tags: list[str] | None = None) -> int:
    now = now_utc()
    with engine.begin() as conn:
        return int(conn.execute(insert(assets).values(
            name=name, first_seen=now, last_seen=now, ip_addresses=orjson.dumps(ips or []).decode(),
            tags=orjson.dumps(tags or []).decode(), attributes="{}")
            .returning(assets.c.id)).scalar_one())


def _contexts(engine: Engine) -> dict[int, tuple[object, ...]]:
    with engine.connect() as conn:
        return {r.asset_id: (r.criticality, r.environment, r.exposure, r.owner, r.service,
                             r.location, r.source)
                for r in conn.execute(select(asset_context))}


@pytest.fixture
def estate(engine: Engine) -> dict[str, int]:
    """Four plant servers known by different keys, and two hosts sharing a name."""
    return {
        "app": _scan(engine, hostname="plant1-app-07", machine_id="4f0c2a9e",
                     ip_addresses=["10.1.0.17"]),
        "db": _scan(engine, hostname="plant1-db-01", fqdn="plant1-db-01.plant1.example.jp"),
        "ws": _scan(engine, hostname="PLANT2-WS-11", ip_addresses=["10.2.0.111"]),
        "ci": _insert(engine, "ci-runner", ["10.3.0.40", "fe80::1"]),
        "twin1": _insert(engine, "twin"),
        "twin2": _insert(engine, "twin"),
    }


def test_match_by_each_key(engine: Engine, estate: dict[str, int]) -> None:
    records = parse_csv(
        "machine_id,fqdn,hostname,ip,tier,owner\n"
        "4F0C2A9E,,wrong-name,,1,Sato\n"                           # machine-id wins
        ",PLANT1-DB-01.plant1.example.jp,,,2,Ito\n"                # FQDN, any case
        ",,plant2-ws-11,,3,Plant 2 IT\n"                           # hostname, any case
        ",,unknown-name,10.3.0.40/24,4,Dev\n"                      # falls through to IP
        ",,twin,,2,Nobody\n"                                       # two assets: ambiguous
        ",,plant9-x,10.9.9.9,1,Ghost\n"                            # nothing: unmatched
        ",,plant1-app-07,,2,Second\n", "cmdb.csv")                 # asset already taken
    result = apply_records(engine, records, source="cmdb-import", actor="test",
                           label="cmdb.csv")
    assert [(m.record.where, m.asset_id, m.key) for m in result.updated] == [
        ("cmdb.csv:2", estate["app"], "machine_id"), ("cmdb.csv:3", estate["db"], "fqdn"),
        ("cmdb.csv:4", estate["ws"], "hostname"), ("cmdb.csv:5", estate["ci"], "ip")]
    assert [r.where for r in result.unmatched] == ["cmdb.csv:7"]
    assert [(a.record.where, a.asset_ids, a.reason) for a in result.ambiguous] == [
        ("cmdb.csv:6", (estate["twin1"], estate["twin2"]), "hostname matches 2 assets"),
        ("cmdb.csv:8", (estate["app"],), f"asset {estate['app']} already matched by cmdb.csv:2")]
    # The twins are still unknown: given the default context in the same transaction.
    assert result.defaulted == 2
    assert _contexts(engine) == {
        estate["app"]: (1, None, None, "Sato", None, None, "cmdb-import"),
        estate["db"]: (2, None, None, "Ito", None, None, "cmdb-import"),
        estate["ws"]: (3, None, None, "Plant 2 IT", None, None, "cmdb-import"),
        estate["ci"]: (4, None, None, "Dev", None, None, "cmdb-import"),
        estate["twin1"]: (3, None, None, None, None, None, "default"),
        estate["twin2"]: (3, None, None, None, None, None, "default"),
    }
    with engine.connect() as conn:
        entry = conn.execute(select(audit_log).where(
            audit_log.c.action == "assets.import")).one()
    assert (entry.actor, entry.target) == ("test", "cmdb.csv")
    assert orjson.loads(entry.detail)["unmatched"] == ["cmdb.csv:7"]


def test_example_file_reimport_is_idempotent(engine: Engine, estate: dict[str, int]) -> None:
    records = parse_file(EXAMPLE)
    first = apply_records(engine, records, source="cmdb-import", actor="test")
    assert [(m.record.hostname, m.asset_id, m.key, m.changed) for m in first.updated] == [
        ("plant1-app-07", estate["app"], "hostname", True),
        ("plant1-db-01", estate["db"], "fqdn", True),
        ("plant2-ws-11", estate["ws"], "hostname", True),
        ("plant3-ci", estate["ci"], "ip", True)]
    assert [r.hostname for r in first.unmatched] == ["plant3-web-02"]
    with engine.connect() as conn:
        before = conn.execute(select(asset_context).order_by(asset_context.c.asset_id)).all()
        app = context_of(conn, estate["app"])
    assert app is not None and (app["criticality"], app["exposure"], app["service"],
                                app["tags"]) == (1, "internet-facing", "Order portal",
                                                 ["customer-facing", "pci"])
    second = apply_records(engine, records, source="cmdb-import", actor="test")
    assert (len(second.updated), second.changed, second.defaulted) == (4, 0, 0)
    with engine.connect() as conn:
        after = conn.execute(select(asset_context).order_by(asset_context.c.asset_id)).all()
    assert after == before  # not even updated_at moved


def test_partial_columns_tags_and_attributes(engine: Engine) -> None:
    web = _insert(engine, "web1", tags=["by-hand"])
    apply_records(engine, parse_csv("hostname,tier,owner,site,tags,Rack\n"
                                    "web1,2,Sato,Osaka,a;b,R12\n", "c.csv"),
                  source="cmdb-import", actor="test")
    # A file of owners only: other fields stay; the CMDB's old tags give way to the new.
    apply_records(engine, parse_csv("hostname,owner,tags\nweb1,Ito,b;c\n", "d.csv"),
                  source="cmdb-import", actor="test")
    with engine.connect() as conn:
        row = conn.execute(select(assets.c.tags, assets.c.attributes)
                           .where(assets.c.id == web)).one()
    assert orjson.loads(row.tags) == ["by-hand", "b", "c"]
    assert orjson.loads(row.attributes) == {"cmdb_tags": ["b", "c"], "criticality": 2,
                                            "owner": "Ito", "location": "Osaka", "Rack": "R12"}
    assert _contexts(engine)[web] == (2, None, None, "Ito", None, "Osaka", "cmdb-import")
    # An empty cell clears.
    apply_records(engine, parse_csv("hostname,site\nweb1,\n", "e.csv"),
                  source="cmdb-import", actor="test")
    assert _contexts(engine)[web] == (2, None, None, "Ito", None, None, "cmdb-import")


def test_invalid_file_writes_nothing(engine: Engine, estate: dict[str, int]) -> None:
    with pytest.raises(CmdbFormatError) as bad:
        apply_records(engine, parse_json(
            '[{"hostname": "plant1-app-07", "criticality": 1},'
            ' {"hostname": "plant1-db-01", "criticality": "high"}]', "c.json"),
            source="cmdb-import", actor="test")
    assert str(bad.value) == "c.json:record 2: criticality must be 1-4, got 'high'"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(asset_context)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() == 0


def test_failure_while_writing_rolls_back(engine: Engine, estate: dict[str, int],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit entry is written after the contexts and tags: failing there must take
    # every write of the import back with it.
    import patchpilot.assets.context as context

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(context, "audit", broken)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        apply_records(engine, parse_file(EXAMPLE), source="cmdb-import", actor="test",
                      create_missing=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(asset_context)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(assets)).scalar() == 6
        assert {r.tags for r in conn.execute(select(assets.c.tags))} == {"[]"}


def test_create_missing_makes_placeholders(engine: Engine, estate: dict[str, int]) -> None:
    records = parse_file(EXAMPLE)
    result = apply_records(engine, records, source="cmdb-import", actor="test",
                           create_missing=True)
    assert [(m.record.hostname, m.key) for m in result.created] == [("plant3-web-02", "created")]
    new = result.created[0].asset_id
    with engine.connect() as conn:
        row = conn.execute(select(assets).where(assets.c.id == new)).one()
    assert (row.name, row.fqdn, orjson.loads(row.ip_addresses), row.last_inventory_id) == (
        "plant3-web-02", "plant3-web-02.plant3.example.jp", ["10.3.0.12"], None)
    assert _contexts(engine)[new] == (2, "staging", "internal", "Plant 3 IT", "Intranet",
                                      "Plant 3 (Sendai)", "cmdb-import")
    # The first scan of that host fills the placeholder rather than making a second asset.
    assert _scan(engine, hostname="plant3-web-02") == new
    assert apply_records(engine, records, source="cmdb-import", actor="test",
                         create_missing=True).created == []


def test_unknown_assets_flagged_and_defaulted(engine: Engine, estate: dict[str, int]) -> None:
    with engine.connect() as conn:
        unknown = unknown_assets(conn)
    assert len(unknown) == 6 and {u["defaulted"] for u in unknown} == {False}
    apply_records(engine, parse_file(EXAMPLE), source="cmdb-import", actor="test",
                  default_criticality=None)
    with engine.begin() as conn:
        assert [u["name"] for u in unknown_assets(conn)] == ["twin", "twin"]
        assert ensure_defaults(conn, criticality=2, actor="test") == 2
        assert ensure_defaults(conn, criticality=2, actor="test") == 0
        flagged = unknown_assets(conn)
    assert [(u["id"], u["criticality"], u["defaulted"]) for u in flagged] == [
        (estate["twin1"], 2, True), (estate["twin2"], 2, True)]
    # The CMDB describing a defaulted asset takes it off the list, replacing the default.
    late = _scan(engine, hostname="plant3-late")
    with engine.begin() as conn:
        assert ensure_defaults(conn, actor="test") == 1
    assert _contexts(engine)[late] == (3, None, None, None, None, None, "default")
    apply_records(engine, parse_csv("hostname,owner\nplant3-late,Plant 3 IT\n", "c.csv"),
                  source="cmdb-import", actor="test")
    # Only the owner was given: the default criticality does not linger as if the CMDB
    # had said it.
    assert _contexts(engine)[late] == (None, None, None, "Plant 3 IT", None, None,
                                       "cmdb-import")
    with engine.connect() as conn:
        assert len(unknown_assets(conn)) == 2


def test_set_context_by_id(engine: Engine, estate: dict[str, int]) -> None:
    from patchpilot.assets.cmdb import record_from_mapping

    record = record_from_mapping("body", {"criticality": "tier 1", "exposure": "internet"},
                                 require_identity=False)
    stored = set_context(engine, estate["twin2"], record, actor="ana")
    assert (stored["criticality"], stored["exposure"], stored["source"], stored["owner"]) == (
        1, "internet-facing", "manual", None)
    with engine.connect() as conn:
        assert {u["id"] for u in unknown_assets(conn)} == {
            estate[k] for k in ("app", "db", "ws", "ci", "twin1")}
        entry = conn.execute(select(audit_log).where(
            audit_log.c.action == "assets.context")).one()
    assert (entry.actor, orjson.loads(entry.detail)["criticality"]) == ("ana", 1)


def test_cli_import_and_unknown(engine: Engine, database_url: str, estate: dict[str, int],
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from patchpilot.cli import app

    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    done = runner.invoke(app, ["assets", "import", str(EXAMPLE)])
    assert done.exit_code == 0, done.output
    assert "4 updated (4 changed), 0 created, 1 unmatched, 0 ambiguous" in done.output
    assert "cmdb.csv:5" in done.output and "unmatched" in done.output
    listed = runner.invoke(app, ["assets", "unknown", "--json"])
    assert [u["name"] for u in orjson.loads(listed.output)] == ["twin", "twin"]
    bad = tmp_path / "bad.csv"
    bad.write_text("hostname,tier\nplant1-app-07,high\n")
    failed = runner.invoke(app, ["assets", "import", str(bad)])
    assert failed.exit_code == 2
    assert "bad.csv:2: criticality must be 1-4, got 'high'" in failed.output
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    sync = runner.invoke(app, ["assets", "netbox-sync", "--url", "http://127.0.0.1:9",
                               "--token-env", "NO_SUCH_TOKEN_VAR"])
    assert sync.exit_code == 2 and "NO_SUCH_TOKEN_VAR is not set" in sync.output
