"""``github``: a GitHub issue per finding (or plan item), through the REST API.

``with``: ``url`` (the API's base: ``https://api.github.com``, or
``https://ghe.example.com/api/v3`` for GitHub Enterprise Server), ``project``
(``owner/repo``), ``token_secret`` (the stored secret holding a token allowed to write
issues, sent as ``Bearer``), ``labels`` (more labels), and the settings every ticket
action has (:mod:`patchpilot.automation.tickets`).

The issue carries the labels ``patchpilot`` and ``patchpilot-finding-<id>`` (GitHub
creates a label the repository lacks); the repository's issues with that label, open or
closed, are listed before one is created.  Closing sets ``state: closed`` with
``state_reason: completed``; reopening ``state: open``.

API: https://docs.github.com/en/rest/issues/issues
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions import Problem
from patchpilot.automation.tickets import RemoteTicket, Session, TicketAction, call

REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
API_VERSION = "2022-11-28"


def message_of(body: Any) -> str:
    """GitHub's error text: ``message``, and the ``errors`` of a 422."""
    parts = [str(body.get("message") or "")]
    parts += [str(e.get("message") or e.get("code") or e) if isinstance(e, dict) else str(e)
              for e in body.get("errors") or []]
    return "; ".join(p for p in parts if p)


def _number(key: str) -> str:
    return key.lstrip("#")


class GitHub:
    """GitHub's REST API for issues."""

    system = "github"
    settings: tuple[str, ...] = ("labels",)

    def check(self, with_: Mapping[str, Any]) -> Problem:
        """``project`` is ``owner/repo``; ``labels`` a list of text."""
        if not REPO.match(str(with_.get("project", ""))):
            return "project", "must be the repository as owner/repo"
        labels = with_.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            return "labels", "must be a list of labels"
        return None

    def _headers(self, s: Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {s.token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION}

    def _remote(self, issue: Mapping[str, Any]) -> RemoteTicket:
        return RemoteTicket(f"#{issue['number']}", str(issue["html_url"]),
                            issue.get("state") == "closed")

    def find(self, s: Session, marker: str) -> RemoteTicket | None:
        """The repository's issue (open or closed) labelled with the marker."""
        found = call(s, self.system, "GET", f"/repos/{s.project}/issues", message_of,
                     headers=self._headers(s),
                     params={"labels": marker, "state": "all", "per_page": 5})
        issues = [i for i in found or [] if "pull_request" not in i]
        return self._remote(issues[0]) if issues else None

    def create(self, s: Session, summary: str, description: str, marker: str
               ) -> RemoteTicket:
        """POST the issue with the marker among its labels."""
        made = call(s, self.system, "POST", f"/repos/{s.project}/issues", message_of,
                    headers=self._headers(s),
                    json={"title": summary, "body": description,
                          "labels": ["patchpilot", marker, *s.with_.get("labels", [])]})
        return self._remote(made)

    def comment(self, s: Session, key: str, text: str) -> None:
        """POST a comment."""
        call(s, self.system, "POST", f"/repos/{s.project}/issues/{_number(key)}/comments",
             message_of, headers=self._headers(s), json={"body": text})

    def set_closed(self, s: Session, key: str, closed: bool, text: str) -> None:
        """Comment, then PATCH the state."""
        self.comment(s, key, text)
        state = ({"state": "closed", "state_reason": "completed"} if closed
                 else {"state": "open"})
        call(s, self.system, "PATCH", f"/repos/{s.project}/issues/{_number(key)}",
             message_of, headers=self._headers(s), json=state)

    def fetch(self, s: Session, key: str) -> RemoteTicket:
        """GET the issue."""
        return self._remote(call(s, self.system, "GET",
                                 f"/repos/{s.project}/issues/{_number(key)}", message_of,
                                 headers=self._headers(s)))


ACTION = TicketAction(GitHub())
