"""Playbook actions: the contract every action module implements.

An action is one module with a :class:`Action` object registered in
:mod:`patchpilot.automation.actions.registry`.  ``validate`` runs when a playbook is
stored (so a bad setting is refused then, naming its key), ``deliver`` when a worker takes
the action's outbox row.  ``payload`` is the event's context as queued (JSON: event,
finding, asset, playbook); ``settings`` says where mail goes and which networks a webhook
may reach.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliverySettings:
        """Mail through the SMTP settings; webhooks into the allowed networks only."""
        return cls(SmtpSettings.from_settings(settings),
                   tuple(ipaddress.ip_network(n) for n in settings.webhook_allow_networks))


class Action(Protocol):
    """One kind of action (``name``: the ``type`` a playbook gives)."""

    name: str

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """What is wrong with the action's settings (key, message), or None."""
        ...

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                settings: DeliverySettings) -> None:
        """Carry the action out for one queued event; DeliveryError when it failed."""
        ...
