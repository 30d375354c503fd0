"""Reboot needed: the running kernel against the newest installed one."""

from __future__ import annotations

import pytest

from patchpilot.inventory.host.kernel import (
    installed_kernels,
    reboot_required,
    rpm_kernel_releases,
)
from patchpilot.models import Ecosystem, Package


@pytest.mark.parametrize(("running", "installed", "scheme", "expected"), [
    # Debian: a newer ABI of the same flavour is installed.
    ("6.1.0-18-amd64", ["6.1.0-18-amd64", "6.1.0-21-amd64"], "dpkg", True),
    ("6.1.0-21-amd64", ["6.1.0-18-amd64", "6.1.0-21-amd64"], "dpkg", False),
    # 6.1.0-9 < 6.1.0-18: numeric, not text, order.
    ("6.1.0-18-amd64", ["6.1.0-9-amd64", "6.1.0-18-amd64"], "dpkg", False),
    # Another flavour's newer kernel is not what this host boots.
    ("6.1.0-18-cloud-amd64", ["6.1.0-18-cloud-amd64", "6.1.0-21-amd64"], "dpkg", False),
    ("5.15.0-91-generic", ["5.15.0-91-generic", "5.15.0-101-generic"], "dpkg", True),
    # Red Hat family: uname -r is version-release.arch.
    ("5.14.0-362.8.1.el9_3.x86_64",
     ["5.14.0-362.8.1.el9_3.x86_64", "5.14.0-362.13.1.el9_3.x86_64"], "rpm", True),
    ("5.14.0-362.13.1.el9_3.x86_64",
     ["5.14.0-362.8.1.el9_3.x86_64", "5.14.0-362.13.1.el9_3.x86_64"], "rpm", False),
    ("5.14.0-362.8.1.el9_3.x86_64+debug",
     ["5.14.0-362.8.1.el9_3.x86_64+debug", "5.14.0-362.13.1.el9_3.x86_64"], "rpm", False),
    # Alpine: 6.6.14-0-lts is package linux-lts 6.6.14-r0.
    ("6.6.14-0-lts", ["6.6.14-0-lts", "6.6.22-1-lts"], "apk", True),
    # A container (no kernel installed) or a custom kernel: cannot tell.
    ("6.18.44-fc-v657", [], "dpkg", None),
    ("6.1.0-18-amd64", ["6.1.0-18-cloud-amd64"], "dpkg", None),
    (None, ["6.1.0-18-amd64"], "dpkg", None),
])
def test_reboot_required(running: str | None, installed: list[str], scheme: str,
                         expected: bool | None) -> None:
    assert reboot_required(running, installed, scheme) is expected


def test_flag_file_means_reboot() -> None:
    # /var/run/reboot-required is set by a libc upgrade too, kernel or not.
    assert reboot_required("6.1.0-21-amd64", ["6.1.0-21-amd64"], "dpkg", flag_file=True)
    assert reboot_required(None, [], "dpkg", flag_file=True) is True


def test_rpm_kernel_releases() -> None:
    alma = Ecosystem("AlmaLinux:9")
    packages = [Package(alma, "kernel-core", "5.14.0-362.8.1.el9_3", arch="x86_64"),
                Package(alma, "kernel-core", "5.14.0-362.13.1.el9_3", arch="x86_64"),
                Package(alma, "kernel", "5.14.0-362.13.1.el9_3", arch="x86_64"),
                Package(alma, "kernel-headers", "5.14.0-362.18.1.el9_3", arch="x86_64")]
    assert rpm_kernel_releases(packages) == [
        "5.14.0-362.13.1.el9_3.x86_64", "5.14.0-362.8.1.el9_3.x86_64"]
    assert installed_kernels(["vmlinuz-5.14.0-362.8.1.el9_3.x86_64",
                              "vmlinuz-0-rescue-4b2c8f0e6e3d4e0a"], packages) == [
        "5.14.0-362.13.1.el9_3.x86_64", "5.14.0-362.8.1.el9_3.x86_64"]
