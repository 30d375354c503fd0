"""Running the queued jobs in the test's own thread, as the server's worker would."""

from __future__ import annotations

from sqlalchemy import Engine

from patchpilot import worker


def run_jobs(engine: Engine) -> int:
    """Run every queued job (and those they queue) until none is left; how many ran."""
    ran = 0
    while worker.run_once(engine, "test-worker"):
        ran += 1
    return ran
