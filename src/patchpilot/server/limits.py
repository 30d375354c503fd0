"""Request bodies bounded while they stream, and content codings the server cannot read
refused before a byte of them is read.

A pure ASGI middleware (no ``BaseHTTPMiddleware``: that one would buffer and hide the
stream).  It counts the bytes of every ``http.request`` message an application pulls,
chunked or not, and stops the request the moment the count passes the route's limit; a
``Content-Length`` above the limit stops it at the first pull, before a byte is read.  The
stop is :class:`BodyTooLarge`, an HTTP 413 raised inside ``receive``: the application's
own error handlers answer it (JSON ``{"detail": …}`` under ``/api``, the dashboard's HTML
error page elsewhere), after the route has authenticated the caller; the middleware answers
it itself only when it escapes the application.  Either way the rest of the body is never
read: an answer sent before the body's end says ``Connection: close``, so the server
drops the connection instead of draining the rest to keep it alive.

Limits per path (see :func:`body_limit`): the upload limit (``PATCHPILOT_MAX_UPLOAD_MB``)
for the routes that take files, the import limit (``PATCHPILOT_MAX_IMPORT_MB``) for the
scanner reports, a small one for the unauthenticated enrolment and login
forms, and one for every other JSON or form body.
"""

from __future__ import annotations

import html

import orjson
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Enrolment and login are reached without a credential: a few hundred bytes are legit.
SMALL_BODY = 64 << 10
# Every other JSON / form body.  The largest legit one is POST /api/groups/{id}/members
# with its 10,000 asset ids (~70 KB of JSON), above the small limit.
DEFAULT_BODY = 1 << 20
# What a multipart form adds around its file (boundaries, part headers, the other fields),
# with a chunk's worth of slack: the form's own check, which names the file, speaks first.
FORM_OVERHEAD = 1 << 20

SMALL_PATHS = frozenset({"/api/agents/enrol", "/login", "/logout", "/language"})
# The routes that read an upload (an inventory, a CMDB export, an SBOM / lock file); each
# also checks its own limit on what it decodes.
UPLOAD_PATHS = frozenset({"/api/inventories", "/api/assets/import", "/assets/upload",
                          "/assets/import"})
# The routes that take a scanner report (``POST /api/imports``, the imports page): a
# Nessus export of a large estate is hundreds of MB, so they have their own limit, and the
# report is spooled to disk as it arrives, never held in memory.
IMPORT_PATHS = frozenset({"/api/imports", "/imports"})
# Where a gzip-compressed body is read (an agent's inventory); everywhere else a body must
# be sent as it is (identity).
GZIP_PATHS = frozenset({"/api/inventories"})


def body_limit(path: str, max_upload: int, max_import: int | None = None) -> int:
    """The most bytes (as sent, before any decompression) a request to ``path`` may carry
    (``max_import``: the import routes' file limit, ``max_upload`` when not given)."""
    if path in IMPORT_PATHS:
        return (max_upload if max_import is None else max_import) + FORM_OVERHEAD
    if path in UPLOAD_PATHS:
        return max_upload + FORM_OVERHEAD
    if path in SMALL_PATHS:
        return SMALL_BODY
    return DEFAULT_BODY


def unsupported_encoding(path: str, content_encoding: str | None) -> str | None:
    """The content coding of a request to ``path`` the server cannot read, or None."""
    coding = (content_encoding or "").strip().lower()
    if coding in ("", "identity") or (coding == "gzip" and path in GZIP_PATHS):
        return None
    return coding


class BodyTooLarge(HTTPException):
    """A request body over its route's limit (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {_size(limit)}")
        self.limit = limit


class BodyLimit:
    """Bound every request body while it streams (see the module's docstring)."""

    def __init__(self, app: ASGIApp, max_upload: int, max_import: int | None = None) -> None:
        self.app = app
        self.max_upload = max_upload
        self.max_import = max_import

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request with a counting ``receive``."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        coding = unsupported_encoding(path, headers.get("content-encoding"))
        if coding is not None:
            # Before the application: nothing it could do reads such a body (a client that
            # deflates would else be told its body is not valid UTF-8).
            accepted = "identity or gzip" if path in GZIP_PATHS else "identity"
            await _answer(scope, send, 415,
                          f"Content-Encoding {coding!r} is not supported here: send "
                          f"{accepted}")
            return
        limit = body_limit(path, self.max_upload, self.max_import)
        declared = headers.get("content-length", "")
        received = 0
        # The first refusal is remembered: an application that asks again is refused again.
        refused = declared.isdigit() and int(declared) > limit

        # Whether the body has been read to its end (a request without one has).
        complete = not ((declared.isdigit() and int(declared) > 0)
                        or "chunked" in headers.get("transfer-encoding", "").lower())

        async def bounded() -> Message:
            nonlocal received, refused, complete
            if refused:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                complete = complete or not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise BodyTooLarge(limit)
            return message

        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    # Answered before the body was read in full (a 413, a 401 or 403 before
                    # an upload): else uvicorn would keep reading and discarding the rest
                    # to keep the connection alive; a closed one stops the client sending.
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, bounded, watch)
        except BodyTooLarge as exc:
            if started:
                raise  # half an answer sent: the server can only drop the connection
            await _answer(scope, send, 413, str(exc.detail))


async def _answer(scope: Scope, send: Send, status: int, detail: str) -> None:
    """A short answer of the middleware's own: JSON for the API, a page for a browser."""
    if scope["path"] == "/api" or scope["path"].startswith("/api/"):
        body = orjson.dumps({"detail": detail})
        kind = b"application/json"
    else:
        body = (f"<!doctype html><title>{status}</title><h1>{status}</h1>"
                f"<p>{html.escape(detail)}</p><p><a href=\"/overview\">PatchPilot</a></p>"
                ).encode()
        kind = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
