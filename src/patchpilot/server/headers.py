"""Security headers on every answer (OWASP Secure Headers Project, HTTP headers cheat sheet).

* ``Content-Security-Policy``: scripts only from this server (hx.js, plotly.js and the pages'
  own ``/static/*.js``; no inline script, no ``eval``), no plugins, no framing, forms post
  only here.  The pages hold no inline script or event handler: data a script needs is
  embedded as ``<script type="application/json">``, which is never executed, and a form
  that asks before it is sent says so in ``data-confirm`` (``static/confirm.js``).
* ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``.
* ``Cache-Control: no-store`` on every page and API answer (they show a logged-in user's
  data, and pages carry a CSRF token), but not on ``/static``: those files are public.
* ``Strict-Transport-Security`` only on an answer to an https request: over plain http a
  browser ignores it, and a server behind a TLS-terminating proxy sees https only when
  the proxy is in ``PATCHPILOT_TRUSTED_PROXIES`` (its ``X-Forwarded-Proto`` is then
  believed: ``server.app``).  packaging/nginx/patchpilot.conf sends the same header on
  every answer of its own.

A pure ASGI middleware: it adds headers to ``http.response.start`` and never buffers a body,
so streamed answers (a sweep's event stream, report downloads) stay streamed.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    # plotly.js inserts its own stylesheet rules at run time (Lib.addRelatedStyleRule, a
    # <style> element) and the plotly wheel ships no stylesheet to serve instead: under
    # style-src 'self' Chromium blocks them ("Cannot addRelatedStyleRule, probably due to
    # strict CSP") and the charts lose their hover labels, legend and modebar styling.
    # Inline styles cannot run code; scripts stay strict.
    "style-src 'self' 'unsafe-inline'",
    # plotly draws some marks as data: images.
    "img-src 'self' data:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
))
# FastAPI's /api/docs page loads Swagger UI from its CDN and starts it with an inline script
# whose text holds no user data; only that page gets a policy that allows them.
DOCS_CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
    "style-src 'self' https://cdn.jsdelivr.net",
    "img-src 'self' data: https://fastapi.tiangolo.com",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
))
HSTS = "max-age=31536000"  # one year, the usual preload-list minimum; no includeSubDomains:
# other hosts of the organisation's domain may not serve https.
STATIC = "/static/"


def security_headers(path: str, scheme: str) -> dict[str, str]:
    """The security headers of an answer to a request for ``path`` over ``scheme``
    (Cache-Control is added separately: a route's own choice is kept)."""
    headers = {
        "Content-Security-Policy": DOCS_CSP if path.startswith("/api/docs") else CSP,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if scheme == "https":
        headers["Strict-Transport-Security"] = HSTS
    return headers


class SecurityHeaders:
    """Add :func:`security_headers` (and ``Cache-Control: no-store`` off ``/static``) to
    every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, adding the headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = security_headers(path, scope.get("scheme", "http"))
        static = path.startswith(STATIC)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
                if not static and "cache-control" not in headers:
                    # A route that chose its own (the sweep stream's no-cache) keeps it.
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
