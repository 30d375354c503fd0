"""``patchpilot token``, ``enrol-token`` and ``user``: who may use the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from patchpilot.cli.common import (
    cli_actor,
    console,
    err,
    fail,
    in_db,
    open_engine,
    print_json,
    wide,
)
from patchpilot.config import named_variable
from patchpilot.errors import PatchPilotError

if TYPE_CHECKING:
    from patchpilot.server.security import Role

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


def _user_update(name: str, **change: Any) -> None:
    """Apply ``change`` (role, scopes, disabled) to user ``name`` with the stage the API
    and the /users page use (audited as the OS user, sessions ended); print the user."""
    from patchpilot.server.accounts import scope_text, update_user

    view = in_db(lambda conn: update_user(conn, cli_actor(), name, **change), write=True)
    state = "disabled" if view.disabled else "enabled"
    console.print(f"user {name} ({view.source}): {view.role.value}, "
                  f"{scope_text(view.scopes)}, {state}")


def _role(text: str) -> Role:
    """The role named ``text``; a one-line error otherwise."""
    from patchpilot.server.security import Role

    try:
        return Role(text)
    except ValueError:
        fail(ValueError(f"unknown role {text!r}"), "Use admin, analyst or viewer.")


@user_app.command("list")
def user_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every user: where they sign in (local, oidc, ldap), role, scopes, state, last
    dashboard sign-in and active API tokens."""
    from rich.table import Table

    from patchpilot.clock import iso
    from patchpilot.server.accounts import list_users, scope_text

    found = in_db(list_users)
    if json_:
        print_json([{**v.as_dict(), "created_at": iso(v.created_at),
                     "last_sign_in": iso(v.last_sign_in)} for v in found])
        return
    table = Table("name", "source", "role", "scopes", "disabled", "last sign-in (UTC)",
                  "tokens")
    for v in found:
        table.add_row(v.name, v.source, v.role.value, scope_text(v.scopes),
                      "yes" if v.disabled else "no",
                      v.last_sign_in.strftime("%Y-%m-%d %H:%M") if v.last_sign_in else "-",
                      str(v.tokens))
    wide.print(table)
    if any(v.source != "local" for v in found):
        err.print("Directory users' role and scopes come from PATCHPILOT_DIRECTORY_MAP at "
                  "each sign-in; change them there.")


@user_app.command("set")
def user_set(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str | None, typer.Option(help="admin, analyst or viewer.")] = None,
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="Limit the user to this part of the estate: group:NAME or "
                        "service:NAME; repeatable; replaces their scopes.")] = None,
    clear_scopes: Annotated[bool, typer.Option(
        "--clear-scopes", help="Remove every scope: the user sees the whole estate.")
    ] = False,
    disable: Annotated[bool | None, typer.Option(
        "--disable/--enable", help="Disable the user (sessions and tokens stop), or "
                                   "enable them again.", show_default=False)] = None,
) -> None:
    """Change a user's role, scopes or state at once; audited, and their dashboard
    sessions end.  A directory user's role and scopes are refused: the directory map
    (PATCHPILOT_DIRECTORY_MAP) sets them at each sign-in."""
    from patchpilot.server.accounts import parse_scope

    if scope and clear_scopes:
        fail(ValueError("give --scope or --clear-scopes, not both"))
    scopes = None
    try:
        if scope:
            scopes = [parse_scope(s, "--scope") for s in scope]
    except PatchPilotError as exc:
        fail(exc)
    if clear_scopes:
        scopes = []
    if role is None and scopes is None and disable is None:
        fail(ValueError("nothing to change: give --role, --scope, --clear-scopes, "
                        "--disable or --enable"))
    _user_update(name, role=None if role is None else _role(role), scopes=scopes,
                 disabled=disable)


@user_app.command("role")
def user_role(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Argument(help="admin, analyst or viewer.")],
) -> None:
    """Change a user's role (as `user set NAME --role`); their dashboard sessions end
    (tokens act with the new role at most)."""
    _user_update(name, role=_role(role))


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
) -> None:
    """Disable a user: their sessions end and their tokens stop working."""
    _user_update(name, disabled=True)


@user_app.command("enable")
def user_enable(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
) -> None:
    """Enable a disabled user again (their old sessions stay ended)."""
    _user_update(name, disabled=False)


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
