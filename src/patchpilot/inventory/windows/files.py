"""One Windows host's Inventory from the files a person saved on it.

``systeminfo`` names the product and build but prints at most a few hundred hotfixes;
``wmic qfe list`` and ``Get-HotFix`` list every hotfix but name no product; an update
history adds what Windows Update installed.  Saved from the same host, they are read
together: the product from the file that names it, the KBs of all of them.  The edges
(``patchpilot scan file``, the upload page, ``POST /api/inventories``) call
:func:`windows_inventory`; :func:`is_windows_file` tells them a Windows file from a
package list or an Inventory JSON first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.model import Inventory
from patchpilot.inventory.windows import inventory_of, looks_windows, read_windows_bytes
from patchpilot.inventory.windows.facts import WindowsFacts, sorted_kbs

__all__ = ["HEAD_BYTES", "is_windows_file", "merge_facts", "windows_inventory"]

HEAD_BYTES = 8192
"""How much of a file :func:`is_windows_file` reads (the other readers' head, too)."""


def is_windows_file(data: bytes) -> bool:
    """Whether ``data`` is one of the four Windows formats, told by its first bytes."""
    return looks_windows(data[:HEAD_BYTES])


# What systeminfo's warning about its own cut-short hotfix list says (systeminfo.py).
_CUT_SHORT = "the KBs are incomplete"


def _same_host(a: str, b: str) -> bool:
    # NetBIOS names are case-insensitive; systeminfo prints them in capitals.
    return a.casefold() == b.casefold()


def merge_facts(parts: Sequence[WindowsFacts]) -> WindowsFacts:
    """The facts of one host told by several of its files.

    The product, build and identity come from the file that names a product (a
    ``systeminfo``); the KBs are the union of every file's.  The KB list is complete when
    one file's own list is (a QFE list completes a ``systeminfo`` that cut its list
    short).  Raises InventoryFormatError naming the file that speaks of another host
    (another host name, or another product or build than an earlier file).
    """
    if not parts:
        raise ValueError("merge_facts needs at least one file's facts")
    if len(parts) == 1:
        return parts[0]
    hostname: tuple[str, str] | None = None  # (name, the file that named it)
    product: WindowsFacts | None = None
    for part in parts:
        if part.hostname:
            if hostname is not None and not _same_host(hostname[0], part.hostname):
                raise InventoryFormatError(
                    part.source, f"host {part.hostname!r}, but {hostname[1]} is host "
                                 f"{hostname[0]!r}: files read together must be of one host")
            hostname = hostname or (part.hostname, part.source)
        if part.family is None:
            continue
        if product is not None and (product.family, product.build) != (part.family,
                                                                        part.build):
            raise InventoryFormatError(
                part.source, f"{part.family} build {part.build}, but {product.source} is "
                             f"{product.family} build {product.build}: files read together "
                             "must be of one host")
        product = product or part
    base = product or parts[0]
    others: list[str] = []
    for part in parts:
        others.extend(h for h in part.other_hotfixes if h not in others)
    complete = [part.source for part in parts if part.kbs_complete]
    warnings: list[str] = []
    for part in parts:
        if part.kbs_complete or not complete:
            warnings.extend(part.warnings)
            continue
        # systeminfo's "listed only 245 of its 271 hotfixes" is answered by the full list.
        warnings.extend(w for w in part.warnings if _CUT_SHORT not in w)
        warnings.append(f"{part.source}: its hotfix list, cut short, is completed by "
                        f"{', '.join(complete)}")
    return dataclasses.replace(
        base,
        source=" + ".join(part.source for part in parts),
        kbs=sorted_kbs([kb for part in parts for kb in part.kbs]),
        other_hotfixes=tuple(others),
        kbs_complete=bool(complete),
        hostname=base.hostname or (hostname[0] if hostname else None),
        warnings=tuple(warnings))


def windows_inventory(files: Sequence[tuple[bytes, str]], hostname: str | None = None,
                      collector: str = "file") -> Inventory:
    """The schema 2 Inventory of one host from its saved Windows files (``(content,
    name)`` pairs; errors name the file).

    The host is the one the files name (``systeminfo``'s host name, a QFE list's
    ``CSName``); ``hostname`` (the asset a person named) is used when no file names it,
    and must agree with it when one does.  A file without a product (a QFE list alone)
    gives an inventory of KBs whose warnings say the product is unknown.
    """
    facts = merge_facts([read_windows_bytes(data, name) for data, name in files])
    if hostname:
        if facts.hostname is None:
            facts = dataclasses.replace(facts, hostname=hostname)
        elif not _same_host(facts.hostname, hostname):
            raise InventoryFormatError(
                facts.source, f"the file is of host {facts.hostname!r}, not {hostname!r}: "
                              "a Windows file names its own host; leave the asset name "
                              f"empty or give {facts.hostname!r}")
    return inventory_of(facts, collector)
