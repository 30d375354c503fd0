"""A write to a database that refuses writes answers 503 naming why, not a 500 traceback.

A read-only SQLite file (a full or read-only mount, wrong ownership after a restore) or a
PostgreSQL standby / ``default_transaction_read_only`` session fails every write the same
way; the server cannot do anything about it per request, so the client is told the
service is unavailable (RFC 9110 §15.6.4) and ``/api/health`` says "degraded" for the
load balancer.  Registered after ``busy`` and wrapping its handler: a locked database
stays busy's 503 with Retry-After, any other database error stays a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InternalError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from patchpilot.db.engine import is_read_only
from patchpilot.server.web.render import error_page

Handler = Callable[[Request, Exception], Awaitable[Response]]


def detail(exc: Exception) -> str:
    """The answer's text: what the database said, and that nothing was changed."""
    said = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return f"the database is read-only ({said}); nothing was changed"


def install(app: FastAPI) -> None:
    """Answer a refused write with 503 on every route of ``app`` (API: JSON; pages: the
    HTML error page)."""

    def wrap(previous: Handler | None) -> Handler:
        async def read_only(request: Request, exc: Exception) -> Response:
            if not is_read_only(exc):
                if previous is not None:
                    return await previous(request, exc)
                raise exc  # not ours: the server's 500, as before
            path = request.url.path
            if path == "/api" or path.startswith("/api/"):
                return JSONResponse({"detail": detail(exc)}, status_code=503)
            return await run_in_threadpool(
                error_page, request, StarletteHTTPException(503, detail(exc)))

        return read_only

    for kind in (OperationalError, InternalError):
        app.add_exception_handler(kind, wrap(app.exception_handlers.get(kind)))  # type: ignore[arg-type]
