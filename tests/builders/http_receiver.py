"""A small HTTP server on loopback standing in for a remote API (a chat webhook, AWX): it
keeps every request and answers what the test set -- one status and body for every
request, or per (method, path) in ``routes``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Request:
    """One request as received (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return orjson.loads(self.body)


class Receiver:
    """Answers ``routes[(method, path)]`` when set, else ``status`` with ``body`` (bytes,
    or a value sent as JSON), with ``headers`` added."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.status = 200
        self.body: Any = b"ok"
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}
        self.headers: dict[str, str] = {}  # added to every answer (Retry-After)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(Request(
                    self.command, self.path,
                    {k.lower(): v for k, v in self.headers.items()}, body))
                status, answer = outer.routes.get((self.command, self.path),
                                                  (outer.status, outer.body))
                data = answer if isinstance(answer, bytes) else orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(answer, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in outer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815 - the stdlib's names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
