"""``patchpilot server``: the API under uvicorn, with embedded workers by default."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from patchpilot.config import load_settings
from patchpilot.db import connect
from patchpilot.errors import PatchPilotError
from patchpilot.server.app import create_app
from patchpilot.worker import run_scheduler, start_pool

log = logging.getLogger(__name__)


def serve(engine: Engine, *, host: str = "127.0.0.1", port: int = 8000,
          job_workers: int = 1, processes: int = 1) -> None:
    """Serve until interrupted.  ``job_workers`` job workers run inside this process (the
    embedded default), plus one for the long jobs (``worker.start_pool``); with 0,
    separate ``patchpilot worker`` processes do the work.

    ``processes`` above 1: that many server processes answer on the one port (uvicorn's
    workers, each with its own engine from the settings: :func:`app_from_settings`); this
    process supervises them (a dead one is replaced) and runs the job workers and the
    scheduler, so they are not multiplied by the processes.

    A scheduler thread ticks whatever ``job_workers`` is (so the embedded workers need
    not): due scan and report schedules, and the knowledge base's own update every
    ``PATCHPILOT_FEED_UPDATE_INTERVAL`` hours (a ``feed_update`` job, see
    ``pipeline.tick``); ticks from here and from worker processes may overlap safely.
    """
    stop = threading.Event()
    # The workers, and one more for the long jobs (a feed update: worker.start_pool), so
    # that the daily feed update never holds the worker uploads are matched by.
    threads = start_pool(engine, stop, job_workers, tick_seconds=None) if job_workers else []
    scheduler = threading.Thread(target=run_scheduler, args=(engine, stop), daemon=True,
                                 name="scheduler")
    scheduler.start()
    threads.append(scheduler)
    try:
        # proxy_headers=False: the application believes forwarded headers from
        # PATCHPILOT_TRUSTED_PROXIES only (server.app); uvicorn's own default trusts
        # 127.0.0.1, where any local process could claim to be any client.
        if processes > 1:
            # An import string and a factory: uvicorn starts each process afresh (spawn),
            # and an engine is never shared across processes.
            uvicorn.run(f"{__name__}:app_from_settings", factory=True, workers=processes,
                        host=host, port=port, log_level="warning",
                        timeout_graceful_shutdown=5, proxy_headers=False)
        else:
            uvicorn.run(create_app(engine), host=host, port=port, log_level="warning",
                        timeout_graceful_shutdown=5, proxy_headers=False)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def app_from_settings() -> FastAPI:
    """The application of one server process among several (``serve(processes=N)``): an
    engine of its own on the configured database, whose schema the supervising process
    has brought up to date already."""
    return create_app(connect(load_settings().database_url))


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
