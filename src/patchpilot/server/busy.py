"""A write that cannot get SQLite's lock answers 503 with Retry-After, not a bare 500.

SQLite has one writer at a time: while a feed import or another process holds the write
lock, a request that must write waits for the busy timeout and then fails with
``OperationalError: database is locked``.  That is a temporary condition of the server,
so the client is told to come back (RFC 9110 §15.6.4, 503 Service Unavailable, and
§10.2.3 Retry-After) instead of being shown an internal error.  Reads never need the lock
(WAL; authentication records a credential's use best-effort, see ``security``), so only
writes meet this.  Any other database error stays a 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from patchpilot.server.security import is_lock_timeout
from patchpilot.server.web.render import error_page

RETRY_AFTER = 5  # seconds; a feed import's write transactions are short batches
DETAIL = "the database is busy with another writer; retry shortly"


def install(app: FastAPI) -> None:
    """Answer a locked database with 503 and Retry-After on every route of ``app``."""

    async def locked(request: Request, exc: Exception) -> Response:
        if not is_lock_timeout(exc):
            raise exc  # not ours: the server's 500, as before
        headers = {"Retry-After": str(RETRY_AFTER)}
        path = request.url.path
        if path == "/api" or path.startswith("/api/"):
            return JSONResponse({"detail": DETAIL}, status_code=503, headers=headers)
        # A dashboard page: its HTML error page, in the user's language.
        return await run_in_threadpool(
            error_page, request, StarletteHTTPException(503, DETAIL, headers=headers))

    app.add_exception_handler(OperationalError, locked)
