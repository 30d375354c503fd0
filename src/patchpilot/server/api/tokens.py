"""API tokens and enrolment tokens (admin)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from patchpilot.audit import audit
from patchpilot.clock import aware
from patchpilot.db.tables import api_tokens, asset_groups, users
from patchpilot.server.deps import Admin, EngineDep
from patchpilot.server.params import MAX_DB_ID, DbId, Text, require_row
from patchpilot.server.security import (
    Role,
    create_api_token,
    create_enrolment_token,
    revoke_api_token,
)

router = APIRouter(tags=["tokens"])


class TokenRequest(BaseModel):
    """A new API token for a user (created with ``role`` if new); for an existing user
    ``role`` may not be above the user's own."""

    user: Text = Field(min_length=1, max_length=200)
    role: Role = Role.VIEWER
    name: Text = Field("api", max_length=200)
    ttl_days: int | None = Field(None, ge=1, le=3650)


class TokenCreated(BaseModel):
    """The token, shown this once."""

    id: int
    token: str


class TokenInfo(BaseModel):
    """A token as listed (never the secret)."""

    id: int
    user: str
    role: str  # the token's own role
    user_role: str  # its user's role now (the token acts with the lower of the two)
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


@router.post("/tokens", status_code=201, response_model=TokenCreated)
def create_token(body: TokenRequest, who: Admin,
                 engine: EngineDep) -> TokenCreated:
    """Create an API token (shown once); 409 when ``role`` is above its user's role."""
    # TokenRoleError is a Conflict: the one handler answers 409 with its message.
    token, token_id = create_api_token(engine, user=body.user, role=body.role,
                                       name=body.name, ttl_days=body.ttl_days)
    with engine.begin() as conn:
        audit(conn, who.name, "token.create", body.user,
              {"token_id": token_id, "role": body.role.value})
    return TokenCreated(id=token_id, token=token)


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(who: Admin,
                engine: EngineDep) -> list[TokenInfo]:
    """Every API token, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(api_tokens, users.c.name.label("user"),
                                   users.c.role.label("user_role"))
                            .join(users, users.c.id == api_tokens.c.user_id)
                            .order_by(api_tokens.c.id.desc())).all()
    return [TokenInfo(id=r.id, user=r.user, role=r.role, user_role=r.user_role, name=r.name,
                      prefix=r.prefix,
                      # SQLite gives naive datetimes: they are UTC, say so (RFC 3339).
                      created_at=aware(r.created_at) or r.created_at,
                      last_used_at=aware(r.last_used_at),
                      expires_at=aware(r.expires_at), revoked_at=aware(r.revoked_at))
            for r in rows]


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: DbId, who: Admin,
                 engine: EngineDep) -> None:
    """Revoke a token: it, and every dashboard session opened with it, stop at once."""
    with engine.begin() as conn:
        if not revoke_api_token(conn, token_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active token {token_id}")
        audit(conn, who.name, "token.revoke", str(token_id))


class EnrolmentRequest(BaseModel):
    """A token agents enrol with."""

    group_id: DbId | None = None
    uses: int | None = Field(None, ge=1, le=MAX_DB_ID)
    ttl_hours: int = Field(24 * 7, ge=1, le=24 * 365)


class EnrolmentCreated(BaseModel):
    """The enrolment token, shown this once."""

    token: str


@router.post("/enrolment-tokens", status_code=201, response_model=EnrolmentCreated)
def create_enrolment(body: EnrolmentRequest, who: Admin,
                     engine: EngineDep) -> dict[str, str]:
    """Create an enrolment token (shown once)."""
    with engine.connect() as conn:
        # An unknown group is a 404 naming the field, not a foreign-key violation (500).
        require_row(conn, asset_groups, body.group_id, "group_id", "asset group")
    token = create_enrolment_token(engine, created_by=who.name, group_id=body.group_id,
                                   uses=body.uses, ttl_hours=body.ttl_hours)
    with engine.begin() as conn:
        audit(conn, who.name, "enrolment_token.create", None, {"group_id": body.group_id})
    return {"token": token}
