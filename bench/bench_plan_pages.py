"""The patch plan at estate scale: 10,000 assets, 1,000,000 findings (issue 13).

Targets: the plan page and ``GET /api/plan``'s first page p95 < 300 ms; the full plan CSV
< 10 s at flat server memory.  The estate is bench/dashboard_data.py (20 site groups,
225-odd plan items, the first on thousands of hosts).  Measured as a user meets it:

* the plan's rebuild, as the worker runs it after findings changed (time, peak memory);
* each page and API call through the application (FastAPI's test client: the server's
  whole time for the request, 20 warm calls, median and p95);
* the plan page loaded in headless Chromium from a real ``patchpilot server`` (SQLite;
  skipped when no chromium is installed), and the full CSV downloaded from that server
  with the server's peak RSS (``VmHWM``) before and after.

    python -m bench.bench_plan_pages [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from bench.common import free_port, main_on_databases, page_csrf, stop_process, timed
from bench.dashboard_data import ASSETS, PER_ASSET, populate
from patchpilot.db.engine import make_engine, upgrade_schema
from patchpilot.scans import plan_store
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token, set_password

RUNS = 20
PASSWORD = "bench-password"


def _rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def _server(url: str, home: Path) -> Iterator[tuple[str, int]]:
    """``patchpilot server`` on ``url``'s database (no workers: nothing rebuilds the plan
    underneath the measurement); its base URL and process id."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHPILOT_")}
    env.update(PATCHPILOT_DATABASE_URL=url, PATCHPILOT_HOME=str(home),
               PATCHPILOT_FEED_UPDATE_INTERVAL="off",
               PATCHPILOT_SESSION_SECRET="bench-" + "s" * 40)
    proc = subprocess.Popen([sys.executable, "-m", "patchpilot.cli", "server", "--port",
                             str(port), "--job-workers", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base, proc.pid
    finally:
        stop_process(proc)


def _chromium(base: str) -> None:
    """The plan page loaded in Chromium, and an item's hosts expanded (hx.js)."""
    binary = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        binary = None
    if not binary:
        print("  Chromium: not installed, page load not measured")
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/login")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/overview")
        for path in ("/plan", "/plan?group=site-1"):
            started = time.perf_counter()
            page.goto(base + path, wait_until="load")
            loaded = time.perf_counter() - started
            rows = page.locator("tr.plan-item").count()
            print(f"  Chromium: {path:<22} loaded in {loaded * 1000:7.0f} ms ({rows} items shown)")
        button = page.locator("tr.plan-item button.more-hosts").first
        started = time.perf_counter()
        button.click()
        page.locator("tr.plan-item").first.locator("ul.hosts li.host").nth(99).wait_for()
        shown = page.locator("tr.plan-item").first.locator("ul.hosts li.host").count()
        print(f"  Chromium: first item's hosts expanded in "
              f"{(time.perf_counter() - started) * 1000:7.0f} ms ({shown} hosts shown)")
        browser.close()


def run(url: str, label: str) -> None:
    """Populate, rebuild the plan, then time the pages, the API and the downloads."""
    engine = make_engine(url)
    upgrade_schema(engine)
    started = time.perf_counter()
    populate(engine)
    print(f"{label}: {ASSETS * PER_ASSET:,} findings on {ASSETS:,} assets in "
          f"{time.perf_counter() - started:.0f} s")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    state = plan_store.rebuild(engine)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with engine.connect() as conn:
        page = plan_store.read_page(conn, state, limit=1)
    print(f"  plan rebuilt (the worker's job) in {state.seconds:.1f} s, peak RSS "
          f"{max(before, after):.0f} MB: {page.total} items; top: {page.items[0].summary}")
    set_password(engine, "bench", Role.VIEWER, PASSWORD)
    os.environ.setdefault("PATCHPILOT_SESSION_SECRET", "bench-" + "s" * 40)
    key = page.items[0].key
    calls = {
        "GET /api/plan (first page)": "/api/plan",
        "GET /api/plan?group=site-1": "/api/plan?group=site-1",
        "GET /api/plan?kev=true&priority=1": "/api/plan?kev=true&priority=1",
        "GET /api/plan/items/{key}/hosts": f"/api/plan/items/{key}/hosts",
        "plan page": "/plan",
        "plan page, group site-1": "/plan?group=site-1",
        "plan page, page 5": "/plan?page=5",
        "item hosts fragment (hx.js)": f"/plan/items/{key}/hosts",
    }
    token = create_api_token(engine, user="bench", role=Role.VIEWER)[0]
    with TestClient(create_app(engine), follow_redirects=False) as client:
        answer = client.post("/login", data={"username": "bench", "password": PASSWORD,
                                             "csrf": page_csrf(client.get("/login").text),
                                             "next": "/overview"})
        assert answer.status_code == 303, answer.text
        for name, path in calls.items():
            headers = {}
            if path.startswith("/api/"):
                path = path + ("&" if "?" in path else "?") + "limit=25"
                headers = {"Authorization": f"Bearer {token}"}
            answer = client.get(path, headers=headers)
            assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
            median, p95 = timed(partial(client.get, path, headers=headers), RUNS)
            print(f"  {name:<36} median {median:7.1f} ms   p95 {p95:7.1f} ms   "
                  f"{len(answer.content) / 1024:7.0f} KiB   (target p95 < 300 ms)")
    if engine.dialect.name == "sqlite":
        with tempfile.TemporaryDirectory() as home, _server(url, Path(home)) as (base, pid):
            with httpx.Client(base_url=base, timeout=600) as http:
                page_text = http.get("/login").text
                http.post("/login", data={"username": "bench", "password": PASSWORD,
                                          "csrf": page_csrf(page_text), "next": "/overview"})
                idle = _rss_mb(pid)
                for path, target in (("/plan.csv", "< 10 s"),
                                     ("/plan/ansible", "no target")):
                    started = time.perf_counter()
                    size = 0
                    with http.stream("GET", path) as response:
                        assert response.status_code == 200, path
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                    print(f"  {path:<14} from the server: {time.perf_counter() - started:6.2f} s,"
                          f" {size / 1e6:6.1f} MB; server peak RSS {idle:.0f} → "
                          f"{_rss_mb(pid):.0f} MB   (target {target}, memory flat)")
            _chromium(base)
    else:
        with TestClient(create_app(engine), follow_redirects=False) as client:
            token_page = client.get("/login").text
            client.post("/login", data={"username": "bench", "password": PASSWORD,
                                        "csrf": page_csrf(token_page), "next": "/overview"})
            started = time.perf_counter()
            size = sum(len(c) for c in client.get("/plan.csv").iter_bytes())
            print(f"  /plan.csv through the application: {time.perf_counter() - started:6.2f} s,"
                  f" {size / 1e6:6.1f} MB   (target < 10 s)")
    engine.dispose()


def main() -> None:
    """Entry point."""
    main_on_databases("plan_pages", __doc__, run)


if __name__ == "__main__":
    main()
