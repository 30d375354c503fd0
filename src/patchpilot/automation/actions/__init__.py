"""Playbook actions: the contract every action module implements.

An action is one module with a :class:`Action` object registered in
:mod:`patchpilot.automation.actions.registry`.  ``validate`` runs when a playbook is
stored (so a bad setting is refused then, naming its key); ``target`` names where the
action goes (the key of its rate limit, shown on the page) and ``deliver`` carries it out
when a worker takes the action's outbox row.  ``payload`` is the event's context as
queued (JSON: event, finding, asset, playbook); the :class:`Delivery` gives the row, the
moment, the database, the process's settings and the secret store.

``deliver`` returns an :class:`Outcome` (or None): what it gave (a ticket's key, for the
audit log and the page), and for an action of several steps (an escalation chain) when
to be delivered again for the next one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from patchpilot.config import Settings
from patchpilot.errors import PatchPilotError
from patchpilot.reports.mail import SmtpSettings

# (key of ``with``, message), or None when the settings are usable.
Problem = tuple[str, str] | None


class DeliveryError(PatchPilotError):
    """An action that could not be delivered now (retried with backoff, then dead)."""


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """What delivering needs from the process's settings."""

    smtp: SmtpSettings
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    timeout: float = 15.0
    rate_limit: int = 30  # sends per action target per minute

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliverySettings:
        """Mail through the SMTP settings; webhooks into the allowed networks only; at
        most ``PATCHPILOT_ACTION_RATE_LIMIT`` sends per target a minute."""
        return cls(SmtpSettings.from_settings(settings),
                   tuple(ipaddress.ip_network(n) for n in settings.webhook_allow_networks),
                   rate_limit=settings.action_rate_limit)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of one outbox row.

    ``step``: the step of a several-step action this delivery is for (0 first);
    ``secret(name)``: the clear value of a stored secret (DeliveryError when there is no
    such secret or no key to read it); ``attempt``: 1 for the first try of this step, 2
    for the first retry after a recorded failure, ….  A worker killed mid-delivery
    recorded nothing, so the next try has the same ``attempt``."""

    outbox_id: int
    playbook: str
    event_id: int
    subject: str
    step: int
    now: datetime
    engine: Engine
    settings: DeliverySettings
    secret: Callable[[str], str]
    attempt: int = 1

    @property
    def id(self) -> str:
        """What a receiver deduplicates on (``X-PatchPilot-Delivery``): the outbox row and
        the step, the same on every attempt of them.  A request that reached the receiver
        before its worker died cannot be taken back; the retry carries the same id."""
        return f"{self.outbox_id}.{self.step}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery gave: ``detail`` (JSON, kept on the outbox row and audited) and,
    for an action with a further step, ``again_at`` (deliver again then, as ``step``)."""

    detail: dict[str, Any] | None = None
    again_at: datetime | None = None
    step: int | None = None


class Action(Protocol):
    """One kind of action (``name``: the ``type`` a playbook gives)."""

    name: str

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """What is wrong with the action's settings (key, message), or None."""
        ...

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """Where the action goes, without secrets (``smtp:owner@example.com``,
        ``https://hooks.example.com``): the key its rate limit counts under."""
        ...

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Carry the action out for one queued event; DeliveryError when it failed."""
        ...
