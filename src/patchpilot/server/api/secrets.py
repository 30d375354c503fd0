"""The playbooks' action secrets (admin): list masked, set, delete -- never read back.

A value goes in once (``PUT /api/secrets/{name}`` with ``{"value": …}``) and only its mask
(``…f3a9``) ever comes out.  The body is read without a typed validator on ``value``:
FastAPI's 422 answer echoes the rejected input, so a value of the wrong type or a body with
a misspelt key would be shown back in full; the checks are made here instead, and their
messages never quote the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, WithJsonSchema

from patchpilot.automation.secrets import (
    SecretError,
    SecretInfo,
    delete_secret,
    key_of,
    list_secrets,
    set_secret,
)
from patchpilot.config import load_settings
from patchpilot.server.deps import Admin, EngineDep

router = APIRouter(tags=["secrets"])

# Far above an API token, a webhook URL or a PEM key; the body limit bounds it anyway.
MAX_VALUE = 64 * 1024
SecretName = Annotated[str, Path(max_length=200)]


class SecretValue(BaseModel):
    """The value to store (a non-empty string; never answered back)."""

    value: Annotated[Any, WithJsonSchema({"type": "string", "minLength": 1,
                                          "maxLength": MAX_VALUE})] = None


class SecretOut(BaseModel):
    """A stored secret: its name and mask, who set it and when."""

    name: str
    hint: str
    updated_by: str
    updated_at: datetime


def _out(info: SecretInfo) -> SecretOut:
    return SecretOut(name=info.name, hint=info.hint, updated_by=info.updated_by,
                     updated_at=info.updated_at)


@router.get("/secrets", response_model=list[SecretOut])
def get_secrets(who: Admin, engine: EngineDep) -> list[SecretOut]:
    """Every stored secret, by name, masked."""
    with engine.connect() as conn:
        return [_out(s) for s in list_secrets(conn)]


@router.put("/secrets/{name}", response_model=SecretOut)
def put_secret(name: SecretName, body: SecretValue, who: Admin,
               engine: EngineDep) -> SecretOut:
    """Store (or replace) a secret, encrypted; answered masked.  422 naming the field for
    a bad name or value (without quoting the value)."""
    value = body.value
    if not isinstance(value, str):
        raise SecretError("value: required, a string", field="value")
    if len(value) > MAX_VALUE or "\x00" in value:
        raise SecretError(f"value: at most {MAX_VALUE} characters, without NUL",
                          field="value")
    key = key_of(load_settings())
    with engine.begin() as conn:
        return _out(set_secret(conn, who.name, name, value, key))


@router.delete("/secrets/{name}", status_code=204)
def remove_secret(name: SecretName, who: Admin, engine: EngineDep) -> None:
    """Forget a secret; 404 when there is none of that name."""
    with engine.begin() as conn:
        delete_secret(conn, who.name, name)
