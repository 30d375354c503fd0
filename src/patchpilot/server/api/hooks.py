"""Inbound webhooks: the receiving route, and their administration (admin).

``POST /api/hooks/{name}`` is called by an IDS, a SIEM or a script, not by a user: it is
authenticated by the hook's own credentials -- ``Authorization: Bearer <hook token>`` or
``X-PatchPilot-Signature: sha256=<HMAC-SHA256 of the body>`` -- and by nothing else (a
user's API token is not a hook token).  It answers 202 ``{"event_id"}`` once the
``hook_received`` event is stored; 401 alike for an unknown hook, a disabled one and wrong
credentials (the caller learns nothing about which hooks exist); 413 for a body over
1 MiB; 400 naming the problem for a body that is not JSON (told only to a caller that
authenticated).  :mod:`patchpilot.automation.hooks` does the work and audits each
receipt.

``/api/automation/hooks`` (admin): create one (its token is in the answer, this once),
list them, enable or disable one, remove one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from patchpilot.automation.hooks import (
    HookBodyError,
    HookBodyTooLarge,
    HookRefused,
    create_hook,
    delete_hook,
    list_hooks,
    receive_hook,
    set_hook_enabled,
)
from patchpilot.automation.secrets import key_of
from patchpilot.config import load_settings
from patchpilot.server.deps import Admin, EngineDep
from patchpilot.server.params import Name200, Text

router = APIRouter(tags=["hooks"])


class HookAccepted(BaseModel):
    """The ``hook_received`` event the call became."""

    event_id: int


class HookIn(BaseModel):
    """A new hook: its name (its URL is ``/api/hooks/{name}``) and, optionally, the name
    of a stored secret whose HMAC-SHA256 of the body a caller may send instead of the
    token."""

    name: Text = Field(min_length=1, max_length=200, examples=["ids"])
    hmac_secret: Text | None = Field(None, max_length=200, examples=["ids-hmac"])


class HookOut(BaseModel):
    """A hook as listed (never its token)."""

    name: str
    enabled: bool
    hmac_secret: str | None
    url: str
    created_by: str
    created_at: str | None
    last_received_at: str | None


class HookCreated(HookOut):
    """A new hook with its token, shown this once."""

    token: str


class HookEnabled(BaseModel):
    """Enable or disable a hook."""

    enabled: bool


@router.post("/hooks/{name}", status_code=202, response_model=HookAccepted,
             responses={400: {"description": "the body is not JSON (said once authenticated)"},
                        401: {"description": "unknown or disabled hook, or wrong credentials"},
                        413: {"description": "body larger than 1 MiB"}})
async def hook_receive(name: Name200, request: Request, engine: EngineDep
                       ) -> dict[str, Any]:
    """Receive an event (authenticated by the hook's token or HMAC signature, not by a
    user's credentials): its body becomes a ``hook_received`` event for the playbooks."""
    body = await request.body()  # bounded at 1 MiB by the BodyLimit middleware (413)
    settings = load_settings()
    try:
        receipt = await run_in_threadpool(receive_hook, engine, name, body,
                                          dict(request.headers),
                                          secrets_key=lambda: key_of(settings))
    except HookRefused as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from exc
    except HookBodyTooLarge as exc:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc)) from exc
    except HookBodyError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    return {"event_id": receipt.event_id}


@router.get("/automation/hooks", response_model=list[HookOut])
def hooks_list(who: Admin, engine: EngineDep) -> list[dict[str, Any]]:
    """Every inbound hook (never a token)."""
    with engine.connect() as conn:
        return [h.to_dict() for h in list_hooks(conn)]


@router.post("/automation/hooks", status_code=201, response_model=HookCreated)
def hooks_add(body: HookIn, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Add a hook; its token is in the answer, this once (audited without it)."""
    with engine.begin() as conn:
        hook, token = create_hook(conn, who.name, body.name, hmac_secret=body.hmac_secret)
    return {**hook.to_dict(), "token": token}


@router.patch("/automation/hooks/{name}", response_model=HookOut)
def hooks_enable(name: Name200, body: HookEnabled, who: Admin, engine: EngineDep
                 ) -> dict[str, Any]:
    """Enable or disable a hook (a disabled one refuses every call; audited)."""
    with engine.begin() as conn:
        return set_hook_enabled(conn, who.name, name, body.enabled).to_dict()


@router.delete("/automation/hooks/{name}", status_code=204)
def hooks_remove(name: Name200, who: Admin, engine: EngineDep) -> None:
    """Remove a hook: its token stops working at once (audited)."""
    with engine.begin() as conn:
        delete_hook(conn, who.name, name)
