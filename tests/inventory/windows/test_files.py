"""Several saved files of one Windows host read together (``windows.files``): the product
from ``systeminfo``, the KBs of every file, refusals naming the file that speaks of
another host.  Real files of ../shared/data/windows/systeminfo."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.windows.files import is_windows_file, windows_inventory

FOLDER = "windows/systeminfo"


def _files(shared_data: Path, *names: str) -> list[tuple[bytes, str]]:
    return [((shared_data / FOLDER / n).read_bytes(), n) for n in names]


def test_systeminfo_cut_short_is_completed_by_the_qfe_list(shared_data: Path) -> None:
    # XP x64: systeminfo printed 82 hotfixes of more; its QFE list has 149.
    inv = windows_inventory(_files(shared_data, "xp_sp2_x64_systeminfo.txt",
                                   "xp_sp2_x64_qfe.txt"))
    assert inv.windows is not None
    assert (inv.asset.hostname, inv.windows.family, inv.windows.build) == (
        "USER-8CEF73C787", "Windows XP", 3790)
    assert (len(inv.windows.kbs), inv.windows.kbs_complete) == (149, True)
    assert inv.warnings == ["xp_sp2_x64_systeminfo.txt: its hotfix list, cut short, is "
                            "completed by xp_sp2_x64_qfe.txt"]
    # The same files the other way round: the product still comes from systeminfo.
    other = windows_inventory(_files(shared_data, "xp_sp2_x64_qfe.txt",
                                     "xp_sp2_x64_systeminfo.txt"))
    assert other.windows == inv.windows


def test_two_systeminfos_of_one_host_at_two_builds_are_refused(shared_data: Path) -> None:
    # The Vista host before and after its service pack: build 6000, then 6001.
    with pytest.raises(InventoryFormatError) as caught:
        windows_inventory(_files(shared_data, "vista_x64_sp0_systeminfo.txt",
                                 "vista_x64_sp1_systeminfo.txt"))
    assert str(caught.value) == (
        "vista_x64_sp1_systeminfo.txt: Windows Vista build 6001, but "
        "vista_x64_sp0_systeminfo.txt is Windows Vista build 6000: files read together "
        "must be of one host")


def test_a_given_host_name_fills_a_qfe_list_without_one(shared_data: Path) -> None:
    name = "10_1803_x64_proforworkstations_en-us_A_20190305_qfe.txt"
    inv = windows_inventory(_files(shared_data, name), hostname="desktop-oof6nb5")
    assert inv.asset.hostname == "desktop-oof6nb5"
    assert inv.windows is not None and len(inv.windows.kbs) == 4
    # systeminfo names the host in capitals: the same NetBIOS name, the file's spelling.
    inv = windows_inventory(_files(shared_data, "srv_2022_systeminfo.txt"),
                            hostname="win-ribn7sm07bk")
    assert inv.asset.hostname == "WIN-RIBN7SM07BK"


def test_is_windows_file_tells_windows_output_from_a_package_list(shared_data: Path) -> None:
    assert is_windows_file((shared_data / FOLDER / "vista_x64_sp1_qfe.txt").read_bytes())
    assert not is_windows_file((shared_data / "inventories/dpkg-status"
                                / "syft__debian__image-dpkg__var__lib__dpkg__status")
                               .read_bytes())
