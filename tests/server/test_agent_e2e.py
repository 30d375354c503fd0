"""A real server process and real agent processes over loopback HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.builders.processes import ServerProcess, env_for, patchpilot, wait_for

FEEDS = {"osv/PYSEC-2023-117.yaml": "osv/pypi/pygments/PYSEC-2023-117.yaml"}


@pytest.fixture
def setup(database_url: str, tmp_path: Path, feed_dir):  # type: ignore[no-untyped-def]
    env = env_for(database_url, tmp_path / "home")
    patchpilot("db", "update", "--from", str(feed_dir(FEEDS)), env=env)
    admin = patchpilot("token", "create", "--role", "admin", env=env).stdout.strip()
    enrol = patchpilot("enrol-token", "create", env=env).stdout.strip()
    server = ServerProcess(env).start()
    yield env, server, admin, enrol
    server.stop()


def _api(server: ServerProcess, token: str, path: str, **params):  # type: ignore[no-untyped-def]
    answer = httpx.get(f"{server.url}{path}", params=params,
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def _venv_with_old_pygments(root: Path) -> Path:
    """A real virtual environment holding Pygments 2.14.0 (its installed metadata, as pip
    leaves it): a Python service on the host, vulnerable to CVE-2022-40896 (PYSEC-2023-117:
    fixed in 2.15.1)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                   timeout=60)
    [site] = root.glob("lib/python3*/site-packages")
    info = site / "Pygments-2.14.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: Pygments\nVersion: 2.14.0\n")
    return root / "bin"


def test_agent_enrols_uploads_and_findings_appear(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, server, admin, enrol = setup
    state = tmp_path / "agent"
    # The agent reads every Python on the host's PATH: this one holds the old Pygments.
    service_bin = _venv_with_old_pygments(tmp_path / "service-venv")
    env = {**env, "PATH": f"{service_bin}:{env.get('PATH', '')}"}
    result = patchpilot("agent", "--server", server.url, "--enrol", enrol, "--state-dir",
                        str(state), "--name", "plant1-web-01", "--poll-wait", "0", "--once",
                        env=env)
    assert result.returncode == 0, result.stderr
    assert (state / "credential.json").stat().st_mode & 0o777 == 0o600
    assert list((state / "spool").glob("*.json.gz")) == []  # uploaded and acknowledged
    agents = _api(server, admin, "/api/agents")
    assert [(a["name"], a["asset_id"] is not None) for a in agents] == [("plant1-web-01", True)]
    asset = _api(server, admin, f"/api/assets/{agents[0]['asset_id']}")
    assert asset["inventories"][0]["collector"] == "agent"
    assert asset["inventories"][0]["packages"] > 100  # this machine's dpkg + Python packages
    # The embedded worker matches it in the background: the finding appears, with the
    # installed version and the fix the advisory names.
    asset_id = agents[0]["asset_id"]

    def pygments_findings():  # type: ignore[no-untyped-def]
        items = _api(server, admin, "/api/findings", asset_id=asset_id, package="pygments")
        return items["items"]

    wait_for(pygments_findings)
    [found] = pygments_findings()
    assert (found["vuln_id"], found["package"], found["state"], found["installed_version"],
            found["fixed_version"]) == ("CVE-2022-40896", "pygments", "open", "2.14.0",
                                        "2.15.1")
    # A second run uses the stored credential (no enrolment token needed).
    again = patchpilot("agent", "--server", server.url, "--state-dir", str(state),
                       "--poll-wait", "0", "--once", env=env)
    assert again.returncode == 0, again.stderr
    assert len(_api(server, admin, "/api/agents")) == 1
    assert len(_api(server, admin, f"/api/assets/{agents[0]['asset_id']}")["inventories"]) == 2


def test_agent_spools_while_the_server_is_down(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env, server, admin, enrol = setup
    state = tmp_path / "agent"
    patchpilot("agent", "--server", server.url, "--enrol", enrol, "--state-dir", str(state),
               "--poll-wait", "0", "--once", env=env)
    server.stop(kill=True)
    # The agent cannot reach the server: its inventory waits in the spool.
    agent = subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "agent", "--server",
                              server.url, "--state-dir", str(state), "--poll-wait", "1"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        wait_for(lambda: list((state / "spool").glob("*.json.gz")))
        server.start()
        # Back up: the spooled inventory is uploaded exactly once.
        wait_for(lambda: not list((state / "spool").glob("*.json.gz")), timeout=60)
        asset_id = _api(server, admin, "/api/agents")[0]["asset_id"]
        inventories = _api(server, admin, f"/api/assets/{asset_id}")["inventories"]
        assert len(inventories) == 2
    finally:
        agent.terminate()
        agent.wait(timeout=20)
