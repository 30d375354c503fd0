"""Knowledge fixtures: a real HTTP server on loopback standing in for the feeds' hosts.

The feed-download tests serve the real captured files of ../shared/data from it, with
real status lines, redirects and conditional requests (ETag / If-None-Match and
Last-Modified / If-Modified-Since answered with 304 as RFC 9110 section 13 says), so
the client code under test runs over a real socket exactly as it does against the
upstream hosts.  No test reaches the internet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the server received: path (without query), query, headers."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        """A request header by name, whatever its case."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server sends back: a status, headers and a body."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Seen], Answer]


def _not_modified(seen: Seen, etag: str | None, last_modified: str | None) -> bool:
    """Whether a GET with these validators is answered 304 (RFC 9110 section 13.2.2)."""
    if_none_match = seen.header("If-None-Match")
    if if_none_match is not None:
        # When If-None-Match is sent, If-Modified-Since is ignored.
        tags = [t.strip() for t in if_none_match.split(",")]
        return etag is not None and ("*" in tags or etag in tags)
    if_modified_since = seen.header("If-Modified-Since")
    if if_modified_since is not None and last_modified is not None:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(
                if_modified_since)
        except (TypeError, ValueError):
            return False  # an unreadable date is ignored, as the RFC says
    return False


class FeedServer:
    """A loopback HTTP server answering GETs from a table of routes (path -> answer).

    A path not in the table is 404.  ``requests`` lists every request received, in order.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []

    def file(self, path: str, body: bytes, *, etag: str | None = None,
             last_modified: str | None = None, headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` at ``path`` with these validators; the full URL is returned."""
        validators = {k: v for k, v in (("ETag", etag), ("Last-Modified", last_modified))
                      if v is not None}

        def answer(seen: Seen) -> Answer:
            if _not_modified(seen, etag, last_modified):
                return Answer(304, b"", validators)
            return Answer(200, body, {**validators, **(headers or {})})

        self.routes[path] = answer
        return self.url + path

    def answers(self, path: str, *answers: Answer) -> str:
        """Serve ``answers`` at ``path`` one per request, the last one from then on."""
        queue = list(answers)

        def answer(seen: Seen) -> Answer:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        self.routes[path] = answer
        return self.url + path

    def route(self, path: str, route: Route) -> str:
        """Serve whatever ``route`` answers to each request at ``path``."""
        self.routes[path] = route
        return self.url + path


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            seen = Seen(parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                        dict(self.headers.items()))
            server.requests.append(seen)
            route = server.routes.get(parts.path)
            answer = route(seen) if route is not None else Answer(404, b"not found")
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: object) -> None:
            pass  # keep the test output clean

    return Handler


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A fresh FeedServer on a free loopback port, shut down after the test."""
    state = FeedServer("")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()
