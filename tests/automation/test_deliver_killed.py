"""A worker killed mid-delivery: what the outbox guarantees, asserted as it is.

A real worker process (``python -c`` running :func:`deliver_due`) POSTs two webhook
deliveries to a loopback receiver that holds the first request open until the process is
SIGKILLed.  That request reached the receiver and cannot be taken back, so the network
sees it twice: the guarantee is at-least-once delivery, with an ``X-PatchPilot-Delivery``
id that is the same on the retry, so a receiver that keeps the ids it acted on acts once.
The row the dead worker never sent is delivered exactly once, by the next worker at once;
the claimed one only after its claim lapsed (``deliver.CLAIM``).  Both databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

import patchpilot
from patchpilot.automation.deliver import CLAIM
from patchpilot.automation.evaluate import evaluate_events
from patchpilot.clock import aware, now_utc
from patchpilot.db.tables import outbox

SRC = str(Path(patchpilot.__file__).resolve().parents[1])
PLAYBOOK = """\
name: two-findings-to-the-soc
trigger: {{events: [new]}}
condition: finding.vuln_id in ["CVE-2006-1015", "CVE-2007-5424"]
actions:
  - type: webhook
    with: {{url: "{url}", secret_env: PP_TEST_HOOK_KEY}}
"""
# One round of a worker's delivery, ``sys.argv[2]`` seconds from now; prints its counts.
WORKER = """\
import ipaddress, json, sys
from datetime import timedelta
from patchpilot.automation.actions import DeliverySettings
from patchpilot.automation.deliver import deliver_due
from patchpilot.clock import now_utc
from patchpilot.db.engine import make_engine
from patchpilot.reports.mail import SmtpSettings

engine = make_engine(sys.argv[1])
settings = DeliverySettings(SmtpSettings(),
                            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
done = deliver_due(engine, settings, now_utc() + timedelta(seconds=float(sys.argv[2])))
print(json.dumps({"sent": done.sent, "failed": done.failed, "dead": done.dead}))
"""


class DedupingReceiver:
    """A webhook receiver that acts on each delivery id once (``acted``), keeps every
    request it got (``requests``: id, attempt), and holds the first one open -- after
    acting on it, as a real receiver that got the whole request would -- until
    ``release`` is set."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.acted: list[str] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        outer = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                self.rfile.read(int(self.headers["Content-Length"]))
                delivery = str(self.headers["X-PatchPilot-Delivery"])
                with lock:
                    first = not outer.requests
                    outer.requests.append((delivery, str(self.headers["X-PatchPilot-Attempt"])))
                    if delivery not in outer.acted:
                        outer.acted.append(delivery)
                if first:
                    outer.holding.set()
                    outer.release.wait(60)
                try:
                    self.send_response(200)
                    self.end_headers()
                except OSError:
                    pass  # the worker is gone

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[DedupingReceiver]:
    r = DedupingReceiver()
    yield r
    r.stop()


def _worker(database_url: str, seconds_ahead: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "PP_TEST_HOOK_KEY": "k-42"}
    return subprocess.Popen([sys.executable, "-c", WORKER, database_url, str(seconds_ahead)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _round(database_url: str, seconds_ahead: float = 0) -> dict[str, int]:
    worker = _worker(database_url, seconds_ahead)
    out, errors = worker.communicate(timeout=120)
    assert worker.returncode == 0, errors
    return json.loads(out)  # type: ignore[no-any-return]


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(
            outbox.c.id, outbox.c.state, outbox.c.attempts).order_by(outbox.c.id))]


def test_a_killed_worker_delivers_once_per_row_after_restart(
        estate_with: Callable[..., Engine], database_url: str,
        receiver: DedupingReceiver) -> None:
    estate = estate_with(PLAYBOOK.format(url=receiver.url))
    assert evaluate_events(estate).queued == 2
    (first, _, _), (second, _, _) = _rows(estate)
    started = now_utc()
    worker = _worker(database_url, 0)
    try:
        assert receiver.holding.wait(60), "the worker never reached the receiver"
        worker.send_signal(signal.SIGKILL)  # mid-delivery: the answer never comes
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL
    receiver.release.set()
    # The first row reached the receiver (and was acted on there); nothing was recorded:
    # the row is still queued, claimed until its claim lapses.  The second was never sent.
    assert receiver.requests == [(f"{first}.0", "1")]
    assert _rows(estate) == [(first, "queued", 0), (second, "queued", 0)]
    with estate.connect() as conn:
        claimed_until = conn.execute(select(outbox.c.next_attempt_at)
                                     .where(outbox.c.id == first)).scalar_one()
    lapse = aware(claimed_until) - started  # type: ignore[operator]
    assert CLAIM - timedelta(seconds=1) <= lapse <= CLAIM + timedelta(seconds=60)
    # A worker started at once delivers the row nobody sent; the claimed one waits.
    assert _round(database_url) == {"sent": 1, "failed": 0, "dead": 0}
    assert receiver.requests == [(f"{first}.0", "1"), (f"{second}.0", "1")]
    assert _rows(estate) == [(first, "queued", 0), (second, "sent", 1)]
    # Past the claim, the first row is delivered again: the same delivery id and attempt
    # (the dead worker recorded nothing), so the receiver does not act a second time.
    past_claim = (CLAIM + timedelta(seconds=5)).total_seconds()
    assert _round(database_url, past_claim) == {"sent": 1, "failed": 0, "dead": 0}
    assert receiver.requests == [(f"{first}.0", "1"), (f"{second}.0", "1"),
                                 (f"{first}.0", "1")]
    assert receiver.acted == [f"{first}.0", f"{second}.0"]  # once per outbox row
    assert _rows(estate) == [(first, "sent", 1), (second, "sent", 1)]
    # Nothing is due any more, however late.
    assert _round(database_url, timedelta(days=1).total_seconds()) == {
        "sent": 0, "failed": 0, "dead": 0}
    assert len(receiver.requests) == 3
