"""``patchpilot agents``: enrolled agents, and the ones held for approval."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from patchpilot.cli.common import console, in_db, print_json, wide

# "agents", not "agent": `patchpilot agent --server URL --enrol TOKEN` runs the agent.
agents_app = typer.Typer(help="Enrolled agents; approve or reject one held because its host "
                              "is an asset another agent reports for.", no_args_is_help=True)


@agents_app.command("list")
def agents_list(
    pending: Annotated[bool, typer.Option(help="Only agents held for approval.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every enrolled agent, the asset it reports for and the one it waits for."""
    from dataclasses import asdict

    from patchpilot.clock import iso
    from patchpilot.findings.agents import list_agents

    found = in_db(lambda conn: list_agents(conn, pending_only=pending))
    if json_:
        print_json([{**asdict(a), "pending_since": iso(a.pending_since),
                      "enrolled_at": iso(a.enrolled_at), "last_seen": iso(a.last_seen)}
                     for a in found])
        return
    table = Table("id", "name", "asset", "waits for", "since (UTC)", "last seen (UTC)",
                  "revoked")
    for a in found:
        table.add_row(str(a.id), a.name, f"{a.asset} ({a.asset_id})" if a.asset_id else "-",
                      f"{a.pending_asset} ({a.pending_asset_id})" if a.pending_asset_id
                      else "-", iso(a.pending_since) or "-", iso(a.last_seen) or "-",
                      "yes" if a.revoked else "no")
    wide.print(table)


@agents_app.command("approve")
def agents_approve(
    agent_id: Annotated[int, typer.Argument(help="The held agent's id (`agents list`).")],
) -> None:
    """Let a held agent report for the asset it asked for (the agent that did is unbound)."""
    from patchpilot.findings.agents import approve_agent

    asset_id = in_db(lambda conn: approve_agent(conn, "cli", agent_id), write=True)
    console.print(f"agent {agent_id} now reports for asset {asset_id}")


@agents_app.command("reject")
def agents_reject(
    agent_id: Annotated[int, typer.Argument(help="The held agent's id (`agents list`).")],
    revoke: Annotated[bool, typer.Option(help="Also revoke the agent's credential.")
                      ] = False,
) -> None:
    """Refuse a held agent's request to report for an asset (and with --revoke, the agent)."""
    from patchpilot.findings.agents import reject_agent

    asset_id = in_db(lambda conn: reject_agent(conn, "cli", agent_id, revoke=revoke),
                      write=True)
    console.print(f"agent {agent_id} may not report for asset {asset_id}"
                  + ("; its credential is revoked" if revoke else ""))
