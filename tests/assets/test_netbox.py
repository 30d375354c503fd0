"""NetBox sync against recorded NetBox 4 API responses served on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from sqlalchemy import Engine, insert, select

from patchpilot.assets.cmdb import CmdbFormatError
from patchpilot.assets.netbox import NetboxError, NetboxFields, records_from_netbox, sync
from patchpilot.clock import now_utc
from patchpilot.db.tables import asset_context, assets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "netbox"
RECORDED_BASE = "https://netbox.example.jp"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


class NetboxServer:
    """Serves the recorded responses; remembers the requests it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
                url = urlsplit(self.path)
                owner.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Token {TOKEN}":
                    return self._send(403, {"detail": "Invalid token"})
                offset = parse_qs(url.query).get("offset", ["0"])[0]
                name = {"/api/status/": "status.json",
                        "/api/dcim/devices/": f"dcim_devices.offset-{offset}.json",
                        "/api/virtualization/virtual-machines/":
                            f"virtualization_virtual-machines.offset-{offset}.json",
                        }.get(url.path)
                if name is None or not (FIXTURES / name).is_file():
                    return self._send(404, {"detail": "Not found."})
                text = (FIXTURES / name).read_text().replace(RECORDED_BASE, owner.base)
                return self._send(200, json.loads(text))

            def _send(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("API-Version", "4.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def netbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetboxServer]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # the loopback server, never a proxy
    server = NetboxServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _recorded(name: str) -> list[dict[str, object]]:
    return json.loads((FIXTURES / name).read_text())["results"]  # type: ignore[no-any-return]


def test_records_from_recorded_json() -> None:
    devices = _recorded("dcim_devices.offset-0.json") + _recorded("dcim_devices.offset-2.json")
    vms = _recorded("virtualization_virtual-machines.offset-0.json")
    records = records_from_netbox(devices, vms)
    got = [(r.where, r.hostname, r.fqdn, r.ip, r.criticality, r.environment, r.exposure,
            r.owner, r.service, r.location, r.tags) for r in records]
    assert got == [
        ("netbox:dcim.devices/17", "plant1-db-01", None, "10.1.0.21", 1, "production",
         "internal", "Kenji Ito", "Production Control", "Plant 1 (Nagoya)",
         ("pci", "role:database-server")),
        ("netbox:dcim.devices/23", "plant2-ws-11", "plant2-ws-11.plant2.example.jp",
         "10.2.0.111", 3, "production", "internal", "Plant 2 IT", "MES",
         "Plant 2 (Kobe) / Building B", ("role:workstation",)),
        ("netbox:dcim.devices/31", "plant3-fw-01", None, "203.0.113.10", 1, "production",
         "internet-facing", "Network team", None, "Plant 3 (Sendai)",
         ("perimeter", "role:firewall")),
        ("netbox:virtualization.virtual_machines/5", "plant1-app-07", None, "10.1.0.17", 2,
         "production", "internet-facing", "Sato", "Order portal", "Plant 1 (Nagoya)",
         ("customer-facing", "role:application-server")),
        ("netbox:virtualization.virtual_machines/9", "build01", None, "10.3.0.40", 4,
         "development", "isolated", "Dev team", "Build", "Plant 3 (Sendai)",
         ("role:ci-runner",)),
    ]


def test_custom_field_names_are_configurable_and_validated() -> None:
    vm = dict(_recorded("virtualization_virtual-machines.offset-0.json")[0])
    vm["custom_fields"] = {"biz_tier": "high", "exposure": "internal"}
    with pytest.raises(CmdbFormatError) as bad:
        records_from_netbox([], [vm], NetboxFields(criticality="biz_tier"))
    assert bad.value.problems == [
        "netbox:virtualization.virtual_machines/5 (plant1-app-07): "
        "criticality must be 1-4, got 'high'"]


def test_sync_through_pynetbox(engine: Engine, netbox: NetboxServer) -> None:
    now = now_utc()
    with engine.begin() as conn:
        ids = {name: int(conn.execute(insert(assets).values(
            name=name, fqdn=fqdn, ip_addresses=orjson.dumps(ips).decode(), tags="[]",
            attributes="{}", first_seen=now, last_seen=now).returning(assets.c.id)).scalar_one())
            for name, fqdn, ips in (("plant1-db-01", None, []),
                                    ("plant2-ws-11", "plant2-ws-11.plant2.example.jp", []),
                                    ("plant1-app-07", None, []),
                                    ("ci-runner", None, ["10.3.0.40"]),
                                    ("scanned-only", None, []))}
    done = sync(engine, netbox.base, TOKEN, actor="test")
    assert (done.netbox_version, done.devices, done.virtual_machines) == ("4.1.6", 3, 2)
    assert [(m.record.where, m.asset_id, m.key) for m in done.result.updated] == [
        ("netbox:dcim.devices/17", ids["plant1-db-01"], "hostname"),
        ("netbox:dcim.devices/23", ids["plant2-ws-11"], "fqdn"),
        ("netbox:virtualization.virtual_machines/5", ids["plant1-app-07"], "hostname"),
        ("netbox:virtualization.virtual_machines/9", ids["ci-runner"], "ip")]
    assert [r.where for r in done.result.unmatched] == ["netbox:dcim.devices/31"]
    assert done.result.defaulted == 1  # scanned-only
    with engine.connect() as conn:
        stored = {r.asset_id: (r.criticality, r.exposure, r.service, r.source)
                  for r in conn.execute(select(asset_context))}
    assert stored == {ids["plant1-db-01"]: (1, "internal", "Production Control", "netbox"),
                      ids["plant2-ws-11"]: (3, "internal", "MES", "netbox"),
                      ids["plant1-app-07"]: (2, "internet-facing", "Order portal", "netbox"),
                      ids["ci-runner"]: (4, "isolated", "Build", "netbox"),
                      ids["scanned-only"]: (3, None, None, "default")}
    paths = [p for p, _ in netbox.requests]
    # Both device pages were read, the second by pynetbox's offset follow-up.
    assert paths[0] == "/api/status/" and len(paths) == 4
    assert any("offset=2" in p for p in paths if p.startswith("/api/dcim/devices/"))
    assert {auth for _, auth in netbox.requests} == {f"Token {TOKEN}"}
    again = sync(engine, netbox.base, TOKEN, actor="test")
    assert again.result.changed == 0


def test_wrong_token_is_one_clear_error(engine: Engine, netbox: NetboxServer) -> None:
    with pytest.raises(NetboxError, match=r"answered 403: .*Invalid token"):
        sync(engine, netbox.base, "wrong", actor="test")
