"""The upgrade command for a fix, in the package manager of the package's ecosystem."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from patchpilot.knowledge.ecosystems import distro_of, scheme_of
from patchpilot.models import Package


def upgrade_command(ecosystem: str, packages: Sequence[Package], fixed: str | None) -> str | None:
    """The command that installs the fix, or None when there is no fixed version.

    Distribution fixes name the *binary* packages installed (the advisory names the source
    package), upgraded to the candidate from the distribution's repositories, because the
    fixed binary versions can differ from the source version.
    """
    if not fixed or not packages:
        return None
    owners = sorted({p.owner.name for p in packages if p.owner is not None})
    if owners and all(p.owner is not None for p in packages):
        # Debian's python3-pip owns /usr/lib/python3/dist-packages/pip: `pip install` would
        # overwrite the package manager's files; the fix comes as an OS package update.
        return (f"upgrade the OS package {' '.join(owners)} when the distribution ships "
                f"a fix (not with the language's own package manager)")
    names = sorted({p.name for p in packages})
    quoted = " ".join(shlex.quote(n) for n in names)
    scheme = scheme_of(ecosystem)
    family = distro_of(ecosystem)
    if scheme == "dpkg":
        return f"apt-get install --only-upgrade {quoted}"
    if scheme == "rpm":
        tool = "zypper update" if family in ("SUSE", "openSUSE") else "dnf upgrade"
        return f"{tool} {quoted}"
    if scheme == "apk":
        return f"apk add --upgrade {quoted}"
    name = names[0]
    if family == "PyPI":
        return f"pip install --upgrade {shlex.quote(f'{name}>={fixed}')}"
    if family == "npm":
        return f"npm install {shlex.quote(f'{name}@{fixed}')}"
    if family == "Go":
        return f"go get {shlex.quote(f'{name}@v{fixed.removeprefix(chr(118))}')}"
    if family == "crates.io":
        return f"cargo update -p {shlex.quote(name)} --precise {shlex.quote(fixed)}"
    if family == "RubyGems":
        return f"bundle update {shlex.quote(name)}  # to >= {fixed}"
    if family == "Maven":
        return f"set {name} to version {fixed} in pom.xml"
    if family == "NuGet":
        return f"dotnet add package {shlex.quote(name)} --version {shlex.quote(fixed)}"
    if family == "Packagist":
        return f"composer require {shlex.quote(f'{name}:^{fixed}')}"
    return f"upgrade {name} to {fixed} or later"
