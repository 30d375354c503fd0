"""``patchpilot token``, ``enrol-token`` and ``user``: who may use the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from patchpilot.cli.common import cli_actor, console, err, fail, in_db, open_engine
from patchpilot.config import named_variable
from patchpilot.errors import PatchPilotError

token_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
enrol_app = typer.Typer(help="Enrolment tokens for agents.", no_args_is_help=True)
user_app = typer.Typer(help="Dashboard users (argon2 password hashes).", no_args_is_help=True)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, analyst or viewer.")] = "viewer",
    user: Annotated[str, typer.Option(
        help="The user the token belongs to (created with --role if new).")] = "admin",
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    ttl_days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
) -> None:
    """Create an API token against the configured database and print it (once).

    The token acts with ``--role``; for an existing user that may not be above the user's
    own role (refused, naming both): making a token never changes a user's role.
    """
    from patchpilot.server.security import Role, create_api_token

    try:
        chosen = Role(role)
    except ValueError:
        fail(ValueError(f"unknown role {role!r}"), "Use admin, analyst or viewer.")
        return
    try:
        token, token_id = create_api_token(open_engine(), user=user, role=chosen, name=name,
                                           ttl_days=ttl_days)
    except PatchPilotError as exc:
        fail(exc)
        return
    err.print(f"token {token_id} for {user} ({chosen.value}); it is shown only now:")
    print(token)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Option(help="admin, analyst or viewer.")] = "viewer",
    password_env: Annotated[str | None, typer.Option(
        help="Read the password from this environment variable (else it is prompted).")
    ] = None,
) -> None:
    """Create a dashboard user with a password (or reset an existing user's role and
    password)."""
    from patchpilot.server.security import Role, set_password

    try:
        chosen = Role(role)
    except ValueError:
        fail(ValueError(f"unknown role {role!r}"), "Use admin, analyst or viewer.")
        return
    if password_env:
        password = named_variable(password_env)
        if not password:
            fail(ValueError(f"environment variable {password_env} is empty or unset"))
            return
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = set_password(open_engine(), name, chosen, password)
    except PatchPilotError as exc:
        fail(exc)
        return
    console.print(f"user {user_id}: {name} ({chosen.value})")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (as `token create` printed).")],
) -> None:
    """Revoke an API token: it, and every dashboard session opened with it, stop at once."""
    from patchpilot.audit import audit
    from patchpilot.server.security import revoke_api_token

    def work(conn: Any) -> bool:
        done = revoke_api_token(conn, token_id)
        if done:
            audit(conn, cli_actor(), "token.revoke", str(token_id))
        return done

    if not in_db(work, write=True):
        fail(ValueError(f"no active token {token_id}"))
    console.print(f"token {token_id} revoked")


def _user_change(name: str, change: Callable[[Any], int], action: str, said: str) -> None:
    """Apply ``change(conn)`` to user ``name`` with an audit row; print ``said``."""
    from patchpilot.audit import audit

    def work(conn: Any) -> int:
        user_id = change(conn)
        audit(conn, cli_actor(), action, name)
        return user_id

    user_id = in_db(work, write=True)
    console.print(f"user {user_id}: {name} {said}")


@user_app.command("role")
def user_role(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Argument(help="admin, analyst or viewer.")],
) -> None:
    """Change a user's role; their dashboard sessions end (tokens act with the new role
    at most)."""
    from patchpilot.server.security import Role, set_user_role

    try:
        chosen = Role(role)
    except ValueError:
        fail(ValueError(f"unknown role {role!r}"), "Use admin, analyst or viewer.")
    _user_change(name, lambda conn: set_user_role(conn, name, chosen), "user.role",
                 f"is now {chosen.value}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
) -> None:
    """Disable a user: their sessions end and their tokens stop working."""
    from patchpilot.server.security import set_user_disabled

    _user_change(name, lambda conn: set_user_disabled(conn, name, True), "user.disable",
                 "disabled")


@user_app.command("enable")
def user_enable(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
) -> None:
    """Enable a disabled user again (their old sessions stay ended)."""
    from patchpilot.server.security import set_user_disabled

    _user_change(name, lambda conn: set_user_disabled(conn, name, False), "user.enable",
                 "enabled")


@enrol_app.command("create")
def enrol_token_create(
    uses: Annotated[int | None, typer.Option(help="How many agents may enrol with it.")
                    ] = None,
    ttl_hours: Annotated[int, typer.Option(help="Valid for this many hours.")] = 24 * 7,
) -> None:
    """Create a token agents enrol with (`patchpilot agent --enrol TOKEN`)."""
    from patchpilot.server.security import create_enrolment_token

    try:
        token = create_enrolment_token(open_engine(), created_by="cli", uses=uses,
                                       ttl_hours=ttl_hours)
    except PatchPilotError as exc:
        fail(exc)
        return
    err.print("enrolment token (shown only now):")
    print(token)
