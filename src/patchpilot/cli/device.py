"""``patchpilot device``: network devices declared by hand, and every device listed
(identified or not) -- the stage is ``assets.devices``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, fail, in_db, open_engine, print_json, wide
from patchpilot.errors import PatchPilotError

device_app = typer.Typer(help="Network devices: declare one nothing can reach, list them "
                              "identified or not.", no_args_is_help=True)


@device_app.command("add")
def device_add(
    name: Annotated[str, typer.Argument(help="The device's name (its hostname).")],
    vendor: Annotated[str, typer.Option(help="Its vendor: NEC, Fortinet, Cisco, …")],
    model: Annotated[str | None, typer.Option(help="Its model: Aterm WX3600HP, …")] = None,
    firmware: Annotated[str | None, typer.Option(
        help="Its firmware version as the vendor writes it: 7.2.4, 15.2(4)M7, …")] = None,
    os_name: Annotated[str | None, typer.Option(
        "--os-name", help="Its OS name when it has one: FortiOS, IOS-XE, JUNOS, …")] = None,
    ip: Annotated[str | None, typer.Option(help="Its IP address.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Declare a device (stored as its asset's inventory, matched by its CPE); an unknown
    vendor/product is stored as unidentified, with what was declared."""
    from patchpilot.assets.devices import add_device
    from patchpilot.inventory.network.declared import declared_device

    try:
        device = declared_device(name, vendor, model, firmware, os_name, ip)
        done = add_device(open_engine(), device, actor=cli_actor())
    except PatchPilotError as exc:
        fail(exc)
        return
    if json_:
        print_json({"asset_id": done.asset_id, "inventory_id": done.inventory_id,
                    "job_id": done.job_id, "identified": done.identified, "cpe": done.cpe})
        return
    if done.identified:
        console.print(f"asset {done.asset_id}: {escape(device.name)} declared as "
                      f"{done.cpe or 'identified'}" + (f" {escape(device.firmware)}"
                                                      if device.firmware and done.cpe else "")
                      + ("" if done.cpe else " (no firmware: nothing can be matched)"))
    else:
        console.print(f"asset {done.asset_id}: {escape(device.name)} declared, "
                      "[yellow]unidentified[/]: no CPE name is known for this vendor/"
                      "product (stored with what was declared; see docs/network.md)")


@device_app.command("list")
def device_list(
    unidentified: Annotated[bool, typer.Option(
        "--unidentified", help="Only devices whose vendor/product is not identified.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every device (from show version, discovery, SNMP, declared, the CMDB)."""
    from patchpilot.assets.devices import list_devices

    found = in_db(lambda conn: list_devices(conn, unidentified=unidentified))
    if json_:
        print_json([d.to_dict() for d in found])
        return
    table = Table("asset", "name", "vendor", "model", "os", "firmware", "identified as",
                  "sources")
    for row in found:
        d = row.device
        table.add_row(str(row.asset_id), escape(row.name), escape(d.vendor or "-"),
                      escape(d.model or "-"), escape(d.os_name or "-"),
                      escape(d.firmware or "-"),
                      row.cpe or ("[green]identified[/]" if d.identified
                                  else "[yellow]unidentified[/]"),
                      ", ".join(d.sources))
    wide.print(table)
    console.print(f"{len(found)} devices" + (" unidentified" if unidentified else ""))
