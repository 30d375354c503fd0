"""``awx``: launch an Ansible AWX / Automation Controller (Tower) job template on the hosts
of the patch-plan item that fixes the event's finding.

``with``: ``url`` (the controller, ``https://awx.example.com``), ``job_template`` (its
id), ``token_secret`` (the name of the stored secret holding an OAuth2 token with execute
permission on the template: ``patchpilot secret set NAME``), optional ``extra_vars`` (a
mapping added to, and overriding, PatchPilot's).

The plan item is the one of the stored plan (:mod:`patchpilot.scans.plan_store`) whose
host row for the finding's asset holds the finding's vulnerability: one package upgraded
to one version, with every host still pending it.  The launch is::

    POST {url}/api/v2/job_templates/{id}/launch/
    Authorization: Bearer <token>
    {"limit": "host1,host2",
     "extra_vars": {"patchpilot_item": key, "patchpilot_title": "openssl → … on 3 hosts",
                    "patchpilot_commands": ["dnf upgrade …"], "patchpilot_vulns": [...],
                    **extra_vars}}

A controller ignores ``limit`` and ``extra_vars`` of a template that does not prompt for
them on launch -- and would then run the job on the template's whole inventory.  So the
template's launch settings are read first (``GET …/launch/``) and a template without
"Prompt on launch" for both is refused, before anything runs.  See
https://docs.ansible.com/automation-controller/latest/html/controllerapi/api_ref.html
(Job Templates: launch).

A finding that is no longer open, or that no fix item holds (no fixed version published),
launches nothing: the outcome says why.  A finding the stored plan does not hold yet
while the plan is stale (a large estate's plan is rebuilt by the workers) is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions._http import request
from patchpilot.automation.secrets import NAME as SECRET_NAME
from patchpilot.db.tables import findings, plan_hosts, plan_items
from patchpilot.scans import plan_store
from patchpilot.scans.plan_store import FIX, ItemView, PlanStatus

KEYS = ("url", "job_template", "token_secret", "extra_vars")
# Hosts of one item read per page while collecting the pending ones.
_PAGE = 1000


def _base(with_: Mapping[str, Any]) -> str:
    return str(with_["url"]).rstrip("/")


def launch_url(with_: Mapping[str, Any]) -> str:
    """The template's launch endpoint."""
    return f"{_base(with_)}/api/v2/job_templates/{int(with_['job_template'])}/launch/"


def find_item(conn: Connection, state: PlanStatus, finding_id: int) -> str | None:
    """The key of the fix item of ``state``'s plan that holds the finding (its asset's
    host row lists the finding's vulnerability), or None.  One finding is in at most one
    such item: each of its installations is upgraded to one version, and an item is one
    (ecosystem, package, version)."""
    finding = conn.execute(select(findings.c.asset_id, findings.c.vuln_id,
                                  findings.c.ecosystem, findings.c.package)
                           .where(findings.c.id == finding_id)).first()
    if finding is None or not state.generation:
        return None
    pi, ph = plan_items, plan_hosts
    rows = conn.execute(
        select(pi.c.key, ph.c.vulns)
        .join(ph, and_(ph.c.generation == pi.c.generation, ph.c.item_key == pi.c.key))
        .where(pi.c.generation == state.generation, pi.c.kind == FIX,
               pi.c.ecosystem == finding.ecosystem, pi.c.package == finding.package,
               ph.c.asset_id == finding.asset_id)
        .order_by(pi.c.rank))
    for key, vulns in rows:
        if finding.vuln_id in orjson.loads(vulns or "[]"):
            return str(key)
    return None


def pending_hosts(conn: Connection, state: PlanStatus, key: str
                  ) -> tuple[ItemView, list[str], list[str]]:
    """The item, the names of its pending hosts (by name) and its upgrade commands (the
    item's, and each located installation's own, each once, in host order)."""
    item = plan_store.read_item(conn, state, key)
    names: list[str] = []
    commands: dict[str, None] = {}
    cursor: str | None = None
    while True:
        page = plan_store.read_hosts(conn, state, key, limit=_PAGE, cursor=cursor)
        for host in page.hosts:
            if host.status != "pending":
                continue
            names.append(host.name)
            for copy in host.installations or ():
                command = copy.command or item.command
                if command:
                    commands.setdefault(command)
        cursor = page.next_cursor
        if cursor is None:
            break
    if not commands and item.command:
        commands.setdefault(item.command)
    return item, sorted(names), list(commands)


def _errors(answer: httpx.Response) -> str:
    """What an AWX error answer names: ``detail``, else each field with its messages
    (``limit: …; extra_vars: …``, ``variables_needed_to_start: …``)."""
    try:
        data = orjson.loads(answer.content) if answer.content else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
        parts = []
        for key, value in data.items():
            values = value if isinstance(value, list) else [value]
            parts.append(f"{key}: {' '.join(str(v) for v in values)}")
        if parts:
            return "; ".join(parts)[:300]
    return " ".join(answer.text.split())[:200]


def _json(answer: httpx.Response, host: str | None) -> dict[str, Any]:
    """A success answer's JSON object; DeliveryError when it is none (a proxy's page)."""
    try:
        data = orjson.loads(answer.content)
    except orjson.JSONDecodeError as exc:
        raise DeliveryError(f"awx: {host} answered {answer.status_code} without JSON: "
                            "is the url the controller's?") from exc
    if not isinstance(data, dict):
        raise DeliveryError(f"awx: {host} answered {answer.status_code} with JSON that "
                            "is not an object")
    return data


class AwxAction:
    """Launch a job template on a plan item's pending hosts."""

    name = "awx"

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``url`` http(s) with a host, ``job_template`` a positive id, ``token_secret``
        a secret's name (a ``token`` in clear is refused), ``extra_vars`` a mapping."""
        if "token" in with_:
            return "token", ("a token is never stored in a playbook: store it with "
                             "`patchpilot secret set NAME` and give token_secret: NAME")
        unknown = sorted(set(with_) - set(KEYS))
        if unknown:
            return unknown[0], f"unknown setting (settings: {', '.join(KEYS)})"
        url = with_.get("url")
        if not isinstance(url, str):
            return "url", "required: the controller's http(s) URL (https://awx.example.com)"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "url", f"{url!r} is not an http(s) URL with a host"
        template = with_.get("job_template")
        if isinstance(template, bool) or not isinstance(template, int) or template < 1:
            return "job_template", "required: the job template's id (a positive number)"
        name = with_.get("token_secret")
        if not isinstance(name, str) or not SECRET_NAME.match(name):
            return "token_secret", ("required: the name of the stored secret that holds "
                                    "the controller's OAuth2 token")
        extra = with_.get("extra_vars", {})
        if not isinstance(extra, dict) or not all(isinstance(k, str) for k in extra):
            return "extra_vars", "must be a mapping of variable names to values"
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """The controller and the template (no secret in either)."""
        parts = urlsplit(str(with_["url"]))
        return f"awx:{parts.scheme}://{parts.netloc}/job_templates/{with_['job_template']}"

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Find the plan item, check the template prompts for limit and variables,
        launch; the job's id and API URL as the outcome."""
        finding = payload.get("finding") or {}
        finding_id = finding.get("id")
        if finding_id is None:
            return Outcome({"skipped": "the event names no finding"})
        with delivery.engine.connect() as conn:
            state_now = conn.execute(select(findings.c.state)
                                     .where(findings.c.id == finding_id)).scalar()
        if state_now != "open":
            return Outcome({"skipped": f"finding {finding_id} is "
                                       f"{state_now or 'no longer stored'}"})
        # A small estate's stale plan is rebuilt here; a large one's by the workers.
        state = plan_store.ensure_current(delivery.engine)
        with delivery.engine.connect() as conn:
            key = find_item(conn, state, int(finding_id))
            if key is None:
                if state.stale:
                    raise DeliveryError(f"awx: the patch plan does not hold finding "
                                        f"{finding_id} yet (it is being rebuilt)")
                return Outcome({"skipped": f"no plan item upgrades finding {finding_id} "
                                           "(no fixed version published)"})
            item, hosts, commands = pending_hosts(conn, state, key)
        if not hosts:
            return Outcome({"skipped": f"plan item {key} has no pending host"})
        token = delivery.secret(str(with_["token_secret"]))
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = launch_url(with_)
        host = urlsplit(url).hostname
        template = int(with_["job_template"])

        # What the template takes on launch: never launch one that would drop the limit.
        asked = request("GET", url, delivery.settings, what="awx", headers=headers)
        if asked.status_code != 200:
            raise DeliveryError(f"awx: {host} answered {asked.status_code} for job "
                                f"template {template}: {_errors(asked)}")
        prompts = _json(asked, host)
        missing = [label for field, label in (("ask_limit_on_launch", "Limit"),
                                              ("ask_variables_on_launch", "Variables"))
                   if not prompts.get(field)]
        if missing:
            raise DeliveryError(
                f"awx: job template {template} does not prompt on launch for "
                f"{' and '.join(missing)}; refused (the job would run on the template's "
                "whole inventory or without PatchPilot's variables): tick 'Prompt on "
                "launch' for them")

        body = {"limit": ",".join(hosts),
                "extra_vars": {"patchpilot_item": key, "patchpilot_title": item.summary,
                               "patchpilot_commands": commands,
                               "patchpilot_vulns": list(item.vulns),
                               **dict(with_.get("extra_vars") or {})}}
        answer = request("POST", url, delivery.settings, what="awx",
                         content=orjson.dumps(body),
                         headers={**headers, "Content-Type": "application/json"})
        if answer.status_code not in (200, 201):
            raise DeliveryError(f"awx: {host} answered {answer.status_code} for job "
                                f"template {template}: {_errors(answer)}")
        launched = _json(answer, host)
        job = launched.get("job", launched.get("id"))
        detail: dict[str, Any] = {
            "job": job, "url": urljoin(_base(with_) + "/",
                                       str(launched.get("url") or f"/api/v2/jobs/{job}/")),
            "item": key, "hosts": len(hosts)}
        if launched.get("ignored_fields"):
            detail["ignored_fields"] = sorted(launched["ignored_fields"])
        return Outcome(detail)


ACTION = AwxAction()
