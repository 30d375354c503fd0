"""``patchpilot server``: the API under uvicorn, with embedded workers by default."""

from __future__ import annotations

import logging
import threading

import uvicorn
from sqlalchemy import Engine

from patchpilot.scans.worker import run_forever
from patchpilot.server.app import create_app

log = logging.getLogger(__name__)


def serve(engine: Engine, *, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> None:
    """Serve until interrupted.  ``workers`` job workers run inside this process (the
    embedded default); with 0, separate ``patchpilot worker`` processes do the work."""
    stop = threading.Event()
    threads = [threading.Thread(target=run_forever, args=(engine, stop), daemon=True,
                                name=f"worker-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    try:
        uvicorn.run(create_app(engine), host=host, port=port, log_level="warning",
                    timeout_graceful_shutdown=5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
