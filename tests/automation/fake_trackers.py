"""Small issue trackers on loopback that answer like the documented APIs: Jira (REST v2
and v3), Redmine, GitHub and GitLab -- their paths, their JSON, their error bodies, and a
429 with ``Retry-After`` when a test queues one.

Each runs a real HTTP server in a thread, keeps its issues in memory and logs every
request, so a test asserts what PatchPilot sent and what the tracker holds.
"""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson

Answer = tuple[int, dict[str, str], Any]


@dataclass
class Issue:
    """One issue of a fake tracker."""

    number: int
    key: str
    title: str
    body: Any
    labels: list[str]
    closed: bool = False
    comments: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


class FakeTracker:
    """The server, the issues, the request log and queued failures."""

    def __init__(self, token: str, project: str) -> None:
        self.token = token
        self.project = project
        self.issues: list[Issue] = []
        self.seen: list[Seen] = []
        self.queued: list[Answer] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                outer._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = _any  # noqa: N815 - the stdlib's names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status: int, body: Any = None,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next request with this (a 429, a 500 …) instead of serving it."""
        self.queued.append((status, headers or {}, body))

    def issue(self, key: str) -> Issue:
        """The issue of that key."""
        return next(i for i in self.issues if i.key == key)

    def add(self, title: str, body: Any, labels: list[str]) -> Issue:
        """Store a new issue (as the API's create does, or as a test seeds one)."""
        n = len(self.issues) + 1
        issue = Issue(n, self.key_of(n), title, body, labels)
        self.issues.append(issue)
        return issue

    def requests(self, method: str | None = None) -> list[Seen]:
        """The requests received (of one method)."""
        return [s for s in self.seen if method is None or s.method == method]

    # to implement -----------------------------------------------------------------------

    def key_of(self, number: int) -> str:
        """The key a new issue gets."""
        raise NotImplementedError

    def authorised(self, headers: dict[str, str]) -> bool:
        """Whether the request carries the right credentials."""
        raise NotImplementedError

    def unauthorised(self) -> Answer:
        """The tracker's 401."""
        raise NotImplementedError

    def route(self, seen: Seen) -> Answer:
        """Serve one authorised request."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        seen = Seen(h.command, parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in h.headers.items()},
                    orjson.loads(raw) if raw else None)
        with self.lock:
            self.seen.append(seen)
            if self.queued:
                status, headers, body = self.queued.pop(0)
            elif not self.authorised(seen.headers):
                status, headers, body = self.unauthorised()
            else:
                status, headers, body = self.route(seen)
        payload = (body if isinstance(body, bytes) else
                   body.encode() if isinstance(body, str) else
                   orjson.dumps(body) if body is not None else b"")
        h.send_response(status)
        kind = "text/plain" if isinstance(body, str) else "application/json"
        for k, v in {"Content-Type": kind, **headers}.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)


class FakeJira(FakeTracker):
    """Jira: ``/rest/api/2`` (text descriptions, ``search``) and ``/rest/api/3`` (ADF
    documents, ``search/jql``); bearer tokens, or basic auth with ``user``."""

    def __init__(self, token: str, project: str = "PROJ", user: str | None = None) -> None:
        self.user = user
        super().__init__(token, project)

    def key_of(self, number: int) -> str:
        return f"{self.project}-{number}"

    def authorised(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if self.user:
            return auth == "Basic " + base64.b64encode(
                f"{self.user}:{self.token}".encode()).decode()
        return auth == f"Bearer {self.token}"

    def unauthorised(self) -> Answer:
        return 401, {}, {"errorMessages": ["You are not authenticated. Authentication "
                                           "required to perform this operation."],
                         "errors": {}}

    @staticmethod
    def _is_adf(value: Any) -> bool:
        return (isinstance(value, dict) and value.get("type") == "doc"
                and value.get("version") == 1 and isinstance(value.get("content"), list))

    def _text_ok(self, version: str, value: Any) -> bool:
        return self._is_adf(value) if version == "3" else isinstance(value, str)

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        category = "done" if issue.closed else "new"
        return {"id": str(10000 + issue.number), "key": issue.key,
                "fields": {"status": {"name": "Done" if issue.closed else "To Do",
                                      "statusCategory": {"key": category}}}}

    def route(self, seen: Seen) -> Answer:
        m = re.fullmatch(r"/rest/api/([23])(/.*)", seen.path)
        if m is None:
            return 404, {}, {"errorMessages": ["Not found"], "errors": {}}
        version, rest = m.groups()
        search = "/search/jql" if version == "3" else "/search"
        if seen.method == "GET" and rest == search:
            label = re.search(r'labels = "([^"]*)"', seen.query.get("jql", ""))
            project = re.search(r'project = "([^"]*)"', seen.query.get("jql", ""))
            hits = [self._issue_json(i) for i in self.issues
                    if label and label.group(1) in i.labels
                    and project and project.group(1) == self.project]
            return 200, {}, {"issues": hits, "isLast": True}
        if seen.method == "POST" and rest == "/issue":
            fields = (seen.json or {}).get("fields") or {}
            if (fields.get("project") or {}).get("key") != self.project:
                return 400, {}, {"errorMessages": [],
                                 "errors": {"project": "valid project is required"}}
            if not self._text_ok(version, fields.get("description")):
                return 400, {}, {"errorMessages": [], "errors": {
                    "description": "Operation value must be an Atlassian Document"
                    if version == "3" else "Operation value must be a string"}}
            if not fields.get("summary"):
                return 400, {}, {"errorMessages": [],
                                 "errors": {"summary": "You must specify a summary of the "
                                                       "issue."}}
            issue = self.add(fields["summary"], fields["description"], fields.get("labels", []))
            issue.extra = {"issuetype": fields.get("issuetype")}
            return 201, {}, {"id": str(10000 + issue.number), "key": issue.key,
                             "self": f"{self.url}/rest/api/{version}/issue/{issue.number}"}
        m = re.fullmatch(r"/issue/([A-Z]+-\d+)(/comment|/transitions)?", rest)
        if m is None:
            return 404, {}, {"errorMessages": ["Not found"], "errors": {}}
        key, sub = m.groups()
        try:
            issue = self.issue(key)
        except StopIteration:
            return 404, {}, {"errorMessages": ["Issue does not exist or you do not have "
                                               "permission to see it."], "errors": {}}
        if sub is None and seen.method == "GET":
            return 200, {}, self._issue_json(issue)
        if sub == "/comment" and seen.method == "POST":
            body = (seen.json or {}).get("body")
            if not self._text_ok(version, body):
                return 400, {}, {"errorMessages": [], "errors": {
                    "comment": "Comment body is not valid"}}
            issue.comments.append(body)
            return 201, {}, {"id": str(len(issue.comments)), "body": body}
        offered = ([{"id": "41", "name": "Reopen Issue",
                     "to": {"statusCategory": {"key": "new"}}}] if issue.closed else
                   [{"id": "21", "name": "In Progress",
                     "to": {"statusCategory": {"key": "indeterminate"}}},
                    {"id": "31", "name": "Done", "to": {"statusCategory": {"key": "done"}}}])
        if sub == "/transitions" and seen.method == "GET":
            return 200, {}, {"transitions": offered}
        if sub == "/transitions" and seen.method == "POST":
            wanted = ((seen.json or {}).get("transition") or {}).get("id")
            chosen = next((t for t in offered if t["id"] == wanted), None)
            if chosen is None:
                return 400, {}, {"errorMessages": [f"Transition id '{wanted}' is not valid "
                                                   "for this issue."], "errors": {}}
            issue.closed = chosen["to"]["statusCategory"]["key"] == "done"
            return 204, {}, None
        return 405, {}, {"errorMessages": ["Method not allowed"], "errors": {}}


class FakeRedmine(FakeTracker):
    """Redmine: ``/issues.json``, ``/issues/N.json``; ``X-Redmine-API-Key``; statuses 1
    (New) and 5 (Closed)."""

    def key_of(self, number: int) -> str:
        return f"#{number}"

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("x-redmine-api-key") == self.token

    def unauthorised(self) -> Answer:
        return 401, {}, None  # Redmine answers an unknown key with an empty 401

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        return {"id": issue.number, "project": {"id": 1, "name": self.project},
                "subject": issue.title, "description": issue.body,
                "status": {"id": 5 if issue.closed else 1,
                           "name": "Closed" if issue.closed else "New",
                           "is_closed": issue.closed}}

    def route(self, seen: Seen) -> Answer:
        if seen.path == "/issues.json" and seen.method == "GET":
            if seen.query.get("project_id") != self.project:
                return 404, {}, None
            subject = seen.query.get("subject", "")
            assert seen.query.get("status_id") == "*"
            needle = subject[1:] if subject.startswith("~") else None
            hits = [self._issue_json(i) for i in self.issues
                    if needle is not None and needle in i.title]
            return 200, {}, {"issues": hits, "total_count": len(hits), "offset": 0,
                             "limit": 25}
        if seen.path == "/issues.json" and seen.method == "POST":
            issue_in = (seen.json or {}).get("issue") or {}
            if issue_in.get("project_id") != self.project:
                return 422, {}, {"errors": ["Project cannot be blank"]}
            if not issue_in.get("subject"):
                return 422, {}, {"errors": ["Subject cannot be blank"]}
            issue = self.add(issue_in["subject"], issue_in.get("description"), [])
            issue.extra = {k: v for k, v in issue_in.items()
                           if k not in ("subject", "description")}
            return 201, {}, {"issue": self._issue_json(issue)}
        m = re.fullmatch(r"/issues/(\d+)\.json", seen.path)
        if m is None:
            return 404, {}, None
        try:
            issue = self.issue(f"#{m.group(1)}")
        except StopIteration:
            return 404, {}, None
        if seen.method == "GET":
            return 200, {}, {"issue": self._issue_json(issue)}
        if seen.method == "PUT":
            issue_in = (seen.json or {}).get("issue") or {}
            if "status_id" in issue_in:
                if issue_in["status_id"] not in (1, 5):
                    return 422, {}, {"errors": ["Status is not included in the list"]}
                issue.closed = issue_in["status_id"] == 5
            if issue_in.get("notes"):
                issue.comments.append(issue_in["notes"])
            return 204, {}, None
        return 405, {}, None


class FakeGitHub(FakeTracker):
    """GitHub: ``/repos/{owner}/{repo}/issues…``; bearer tokens; labels made on use."""

    def key_of(self, number: int) -> str:
        return f"#{number}"

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def unauthorised(self) -> Answer:
        return 401, {}, {"message": "Bad credentials",
                         "documentation_url": "https://docs.github.com/rest", "status": "401"}

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        return {"number": issue.number, "title": issue.title, "body": issue.body,
                "state": "closed" if issue.closed else "open",
                "state_reason": issue.extra.get("state_reason"),
                "labels": [{"name": n} for n in issue.labels],
                "html_url": f"https://github.example/{self.project}/issues/{issue.number}"}

    def route(self, seen: Seen) -> Answer:
        base = f"/repos/{self.project}/issues"
        if not seen.path.startswith(base):
            return 404, {}, {"message": "Not Found",
                             "documentation_url": "https://docs.github.com/rest"}
        rest = seen.path[len(base):]
        if rest == "" and seen.method == "GET":
            label = seen.query.get("labels")
            state = seen.query.get("state", "open")
            hits = [self._issue_json(i) for i in self.issues
                    if (label is None or label in i.labels)
                    and (state == "all" or (state == "closed") == i.closed)]
            return 200, {}, hits
        if rest == "" and seen.method == "POST":
            data = seen.json or {}
            if not data.get("title"):
                return 422, {}, {"message": "Validation Failed", "errors": [
                    {"resource": "Issue", "code": "missing_field", "field": "title"}]}
            issue = self.add(data["title"], data.get("body"), list(data.get("labels", [])))
            return 201, {}, self._issue_json(issue)
        m = re.fullmatch(r"/(\d+)(/comments)?", rest)
        if m is None:
            return 404, {}, {"message": "Not Found"}
        try:
            issue = self.issue(f"#{m.group(1)}")
        except StopIteration:
            return 404, {}, {"message": "Not Found"}
        if m.group(2) and seen.method == "POST":
            issue.comments.append((seen.json or {}).get("body"))
            return 201, {}, {"id": len(issue.comments), "body": issue.comments[-1]}
        if seen.method == "PATCH":
            data = seen.json or {}
            if data.get("state") not in ("open", "closed"):
                return 422, {}, {"message": "Validation Failed"}
            issue.closed = data["state"] == "closed"
            issue.extra["state_reason"] = data.get("state_reason")
            return 200, {}, self._issue_json(issue)
        if seen.method == "GET" and not m.group(2):
            return 200, {}, self._issue_json(issue)
        return 404, {}, {"message": "Not Found"}


class FakeGitLab(FakeTracker):
    """GitLab: ``/api/v4/projects/{id or url-encoded path}/issues…``; ``PRIVATE-TOKEN``;
    states ``opened``/``closed``."""

    def key_of(self, number: int) -> str:
        return f"#{number}"

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("private-token") == self.token

    def unauthorised(self) -> Answer:
        return 401, {}, {"message": "401 Unauthorized"}

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        return {"id": 500 + issue.number, "iid": issue.number, "title": issue.title,
                "description": issue.body, "state": "closed" if issue.closed else "opened",
                "labels": issue.labels,
                "web_url": f"https://gitlab.example/{self.project}/-/issues/{issue.number}"}

    def route(self, seen: Seen) -> Answer:
        # The raw path: a project path must come URL-encoded ("group%2Fproject").
        base = f"/api/v4/projects/{quote(self.project, safe='')}/issues"
        if not seen.path.startswith(base):
            return 404, {}, {"message": "404 Project Not Found"}
        rest = seen.path[len(base):]
        if rest == "" and seen.method == "GET":
            label = seen.query.get("labels")
            state = seen.query.get("state")
            hits = [self._issue_json(i) for i in self.issues
                    if (label is None or label in i.labels)
                    and (state is None or (state == "closed") == i.closed)]
            return 200, {}, hits
        if rest == "" and seen.method == "POST":
            data = seen.json or {}
            if not data.get("title"):
                return 400, {}, {"error": "title is missing"}
            issue = self.add(data["title"], data.get("description"),
                             [x for x in str(data.get("labels", "")).split(",") if x])
            return 201, {}, self._issue_json(issue)
        m = re.fullmatch(r"/(\d+)(/notes)?", rest)
        if m is None:
            return 404, {}, {"message": "404 Not found"}
        try:
            issue = self.issue(f"#{m.group(1)}")
        except StopIteration:
            return 404, {}, {"message": "404 Not found"}
        if m.group(2) and seen.method == "POST":
            issue.comments.append((seen.json or {}).get("body"))
            return 201, {}, {"id": len(issue.comments), "body": issue.comments[-1]}
        if seen.method == "PUT":
            event = (seen.json or {}).get("state_event")
            if event not in ("close", "reopen"):
                return 400, {}, {"error": "state_event does not have a valid value"}
            issue.closed = event == "close"
            return 200, {}, self._issue_json(issue)
        if seen.method == "GET" and not m.group(2):
            return 200, {}, self._issue_json(issue)
        return 404, {}, {"message": "404 Not found"}

