"""``patchpilot server``, ``up``, ``worker`` and ``agent``: the long-running processes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patchpilot import __version__
from patchpilot.cli.common import console, err, fail, writable_engine
from patchpilot.cli.scan import OutputFormat, scan_and_emit
from patchpilot.config import load_settings
from patchpilot.errors import PatchPilotError


def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Server processes answering on the one port (stateless; about one "
                    "per CPU core).")] = 1,
    job_workers: Annotated[int, typer.Option(
        min=0, help="Job workers inside the server (0: run `patchpilot worker` "
                    "separately).")] = 1,
) -> None:
    """Run the management server (API at /api, docs at /api/docs)."""
    from patchpilot.server.run import serve

    try:
        engine = writable_engine()
    except PatchPilotError as exc:
        fail(exc)
        return
    err.print(f"PatchPilot {__version__} listening on http://{host}:{port} "
              f"(API docs: http://{host}:{port}/api/docs)"
              + (f" with {workers} server processes" if workers > 1 else ""))
    serve(engine, host=host, port=port, job_workers=job_workers, processes=workers)


def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """The main job: server with a worker and a local agent; scans this machine and prints
    the URL and a first admin token (`make run` runs this)."""
    from patchpilot.inventory.transports.local import collect_local
    from patchpilot.server.run import up as run_up
    from patchpilot.server.security import TokenRoleError

    settings = load_settings()
    try:
        engine = writable_engine()
        # The local agent keeps its credential under the home: refuse now, not later.
        (settings.home / "agent").mkdir(parents=True, exist_ok=True)
    except PatchPilotError as exc:
        fail(exc)
        return
    except OSError as exc:
        fail(PatchPilotError(f"PATCHPILOT_HOME {settings.home} is not writable: "
                              f"{exc.strerror or exc.__class__.__name__}"
                              f"{f' ({exc.filename})' if exc.filename else ''}"))
        return

    def show_scan(_agent: object) -> None:
        console.rule("This machine")
        scan_and_emit(collect_local(), OutputFormat.table, None, None)

    try:
        run_up(engine, settings.home, host=host, port=port,
               announce=lambda text: console.print(text, soft_wrap=True),
               show_scan=show_scan)
    except TokenRoleError as exc:
        # An "admin" user demoted earlier: never raise it back silently; say how.
        fail(PatchPilotError(f"{exc}; to make it an admin again: "
                             "`patchpilot user role admin admin`"))


def worker(
    threads: Annotated[int, typer.Option(
        help="Jobs to run at once in this process (and as many chunks of a divided "
             "re-match or re-prioritisation).")] = 1,
) -> None:
    """Take jobs from the database and run them, until interrupted."""
    import signal
    import threading

    from patchpilot.worker import start_pool

    try:
        engine = writable_engine()
    except PatchPilotError as exc:
        fail(exc)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # ``threads`` for the quick jobs and ``threads`` for chunks, one more for the long ones
    # (feed update, re-match), one for the reports.
    pool = start_pool(engine, stop, threads)
    err.print(f"worker running ({threads} thread(s), {threads} for chunks of divided jobs, "
              "one for feed updates, one for reports); Ctrl-C to stop")
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        stop.set()
    for t in pool:
        t.join(timeout=30)


def agent(
    server_url: Annotated[str, typer.Option("--server", help="The server's URL.")],
    enrol: Annotated[str | None, typer.Option(
        help="Enrolment token (first start only; the credential is kept afterwards).")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        help="Where the credential and the spool live.")] = None,
    name: Annotated[str | None, typer.Option(help="This host's name for the server.")] = None,
    poll_wait: Annotated[float, typer.Option(help="Long-poll seconds.")] = 25.0,
    ca_file: Annotated[Path | None, typer.Option(
        help="CA certificates (PEM) the server's TLS certificate is checked against "
             "(default: PATCHPILOT_AGENT_CA_FILE, else the system's trusted CAs).")] = None,
    once: Annotated[bool, typer.Option(help="Upload, take one poll, exit (for tests).")
                    ] = False,
) -> None:
    """Run the agent: enrol, upload this host's inventory, poll for jobs."""
    import logging
    import socket

    from patchpilot.agent.runtime import Agent, AgentConfig, default_state_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = AgentConfig(server=server_url, state_dir=state_dir or default_state_dir(),
                             enrol_token=enrol, name=name or socket.gethostname(),
                             poll_wait=poll_wait,
                             ca_file=ca_file or load_settings().agent_ca_file)
        runner = Agent(config)
    except PatchPilotError as exc:
        fail(exc)
        return
    try:
        runner.run(once=once)
    except PatchPilotError as exc:
        fail(exc)
    except KeyboardInterrupt:
        runner.stop.set()
