"""An estate with real finding events: the Nessus report of one web server imported through
the importers (15 ``new`` events and one ``import_finished``), the server given a CMDB
context (tier 1, its owner) and put in a group -- after the playbooks of a test are stored,
since a playbook acts on the events from its storing on."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from patchpilot.automation.actions import DeliverySettings
from patchpilot.reports.mail import SmtpSettings
from tests.builders.playbook_estate import build_estate


@pytest.fixture
def estate_with(engine: Engine, shared_data: Path) -> Callable[..., Engine]:
    """``estate_with(*documents)``: store the playbooks (by ``sato``), then build the
    estate (asset 1 ``testphp``, findings 1-15, events 1-16)."""

    def build(*documents: str) -> Engine:
        return build_estate(engine, shared_data, *documents)

    return build


@pytest.fixture
def estate(estate_with: Callable[..., Engine]) -> Engine:
    """The estate without playbooks."""
    return estate_with()


class Mailbox:
    """A real SMTP server (aiosmtpd) on a loopback port, keeping what it receives."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.messages: list[EmailMessage] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's name
        data = envelope.content  # type: ignore[attr-defined]
        self.messages.append(email.message_from_bytes(  # type: ignore[arg-type]
            data if isinstance(data, bytes) else data.encode(), policy=email.policy.default))
        return "250 OK"

    @property
    def env(self) -> dict[str, str]:
        """The settings' variables that mail through it."""
        return {"PATCHPILOT_SMTP_HOST": "127.0.0.1", "PATCHPILOT_SMTP_PORT": str(self.port),
                "PATCHPILOT_SMTP_FROM": "patchpilot@plant.example"}

    def settings(self, **kwargs: object) -> DeliverySettings:
        """Delivery settings that mail through it."""
        return DeliverySettings(SmtpSettings(host="127.0.0.1", port=self.port,
                                             sender="patchpilot@plant.example"),
                                **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A started :class:`Mailbox` (stopped after the test)."""
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()
