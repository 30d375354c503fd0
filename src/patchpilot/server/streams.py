"""Server-Sent Events streams, shared by the API and the dashboard's pages (which must not
call each other's routes): the API authorises with a bearer token, a page with its
session, and both answer with the same stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import HTTPException, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine

from patchpilot.assets.groups import Reach
from patchpilot.scans.sweeps import DONE, close_sweeps, progress
from patchpilot.server.security import Principal, reach

# How often the event stream looks at the database, and how long it stays silent before
# a comment line keeps proxies from closing an idle connection.
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


def _event(name: str, data: dict[str, Any]) -> bytes:
    # https://html.spec.whatwg.org/multipage/server-sent-events.html: one "data:" line of
    # compact JSON, an empty line ends the event.
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _reach_of(engine: Engine, who: Principal) -> Reach:
    with engine.connect() as conn:
        return reach(conn, who)


async def sweep_event_stream(engine: Engine, sweep_id: int, request: Request,
                             who: Principal) -> StreamingResponse:
    """A sweep's counts as Server-Sent Events: ``progress`` whenever they change, ``done``
    at the end, then the stream closes (404 for an unknown sweep, before streaming).
    The counts are those of the assets ``who`` may see (issue 18's scopes)."""
    seen = await asyncio.to_thread(_reach_of, engine, who)
    if await asyncio.to_thread(progress, engine, sweep_id, seen) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sweep {sweep_id}")

    async def stream() -> AsyncIterator[bytes]:
        last: dict[str, Any] | None = None
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while True:
            # Deadlines pass with nobody writing: settle them on every look.
            await asyncio.to_thread(close_sweeps, engine, sweep_id=sweep_id)
            now = await asyncio.to_thread(progress, engine, sweep_id, seen)
            if now is None:
                return  # deleted meanwhile
            if now != last:
                yield _event("progress", now)
                last, quiet_since = now, loop.time()
            if now["state"] == DONE:
                yield _event("done", now)
                return
            if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                quiet_since = loop.time()
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
