"""``patchpilot server``: the API under uvicorn, with embedded workers by default."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine

from patchpilot.errors import PatchPilotError
from patchpilot.server.app import create_app
from patchpilot.worker import run_scheduler, start_pool

log = logging.getLogger(__name__)


def serve(engine: Engine, *, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> None:
    """Serve until interrupted.  ``workers`` job workers run inside this process (the
    embedded default), plus one for the long jobs (``worker.start_pool``); with 0,
    separate ``patchpilot worker`` processes do the work.

    A scheduler thread ticks whatever ``workers`` is (so the embedded workers need not):
    due scan and report schedules, and the knowledge base's own update every
    ``PATCHPILOT_FEED_UPDATE_INTERVAL`` hours (a ``feed_update`` job, see
    ``pipeline.tick``); ticks from here and from worker processes may overlap safely.
    """
    stop = threading.Event()
    # The workers, and one more for the long jobs (a feed update: worker.start_pool), so
    # that the daily feed update never holds the worker uploads are matched by.
    threads = start_pool(engine, stop, workers, tick_seconds=None) if workers else []
    scheduler = threading.Thread(target=run_scheduler, args=(engine, stop), daemon=True,
                                 name="scheduler")
    scheduler.start()
    threads.append(scheduler)
    try:
        # proxy_headers=False: the application believes forwarded headers from
        # PATCHPILOT_TRUSTED_PROXIES only (server.app); uvicorn's own default trusts
        # 127.0.0.1, where any local process could claim to be any client.
        uvicorn.run(create_app(engine), host=host, port=port, log_level="warning",
                    timeout_graceful_shutdown=5, proxy_headers=False)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def up(engine: Engine, home: Path, *, host: str = "127.0.0.1", port: int = 8000,
       announce: Callable[[str], None] = print,
       show_scan: Callable[[Any], None] | None = None) -> None:
    """The main job on one machine: server, embedded worker, and a local agent.

    Creates a first admin token (printed once), enrols an agent for this machine against
    the server it starts, lets it upload its inventory, prints this machine's findings and
    the URL, then serves until interrupted.
    """
    from patchpilot.agent.runtime import Agent, AgentConfig
    from patchpilot.server.security import Role, create_api_token, create_enrolment_token

    token, _ = create_api_token(engine, user="admin", role=Role.ADMIN, name="make run")
    enrol = create_enrolment_token(engine, created_by="make run", uses=1, ttl_hours=1)
    url = f"http://{host}:{port}"
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host=host, port=port,
                                           log_level="warning", proxy_headers=False))
    stop = threading.Event()
    agent = Agent(AgentConfig(server=url, state_dir=home / "agent", enrol_token=enrol,
                              poll_wait=25.0))

    def local_agent() -> None:
        while not server.started and not stop.is_set():
            time.sleep(0.1)
        try:
            agent.ensure_enrolled()
            agent.collect()
            agent.flush()
        except (PatchPilotError, OSError) as exc:
            log.error("local agent: %s", exc)
            return
        if show_scan is not None:
            show_scan(agent)
        announce(f"\nPatchPilot is running at {url}  (API docs: {url}/api/docs)\n"
                 f"First admin token (shown once): {token}\n"
                 "Stop with Ctrl-C.")
        agent.stop = stop
        agent.run(initial_upload=False)

    # An embedded worker (and its lane for the long jobs), then the local agent.
    start_pool(engine, stop)
    threading.Thread(target=local_agent, daemon=True, name="local-agent").start()
    try:
        server.run()
    finally:
        stop.set()
