"""The upgrade command for a fix, in the package manager of the package's ecosystem.

A host can hold one package in several places (pip in every Python's site-packages, a
library in each project), so a command names the environment it is for when the
installation's ``location`` says which: the interpreter that owns a site-packages folder
(``/opt/app/venv/bin/python -m pip install …``), the project folder of a lock file
(``cd /srv/shop && npm install …``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import PurePosixPath

from patchpilot.knowledge.cpe_names import label
from patchpilot.knowledge.ecosystems import distro_of, scheme_of
from patchpilot.models import Package

# A site-packages folder: PREFIX/lib[64]/pythonX.Y/site-packages (a venv, a pyenv version,
# a conda env, /usr/local) or Debian's PREFIX/lib/python3[.Y]/dist-packages.
_SITE = re.compile(r"^(?P<prefix>.*)/lib(?:64)?/python(?P<version>\d+(?:\.\d+)?)[a-z]?"
                   r"/(?P<kind>site|dist)-packages/?$")

# The project files whose folder a package manager works in, per ecosystem family; a
# location ending with one of these names (``…/package-lock.json``) names the project.
_PROJECT_FILES = {
    "npm": ("package-lock.json", "npm-shrinkwrap.json", "package.json", "yarn.lock",
            "pnpm-lock.yaml"),
    "Go": ("go.mod", "go.sum"),
    "crates.io": ("Cargo.lock", "Cargo.toml"),
    "RubyGems": ("Gemfile.lock", "Gemfile", "gems.locked"),
    "Packagist": ("composer.lock", "composer.json"),
    "NuGet": ("packages.lock.json", ".csproj", "packages.config"),
    "PyPI": ("poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock"),
}


def python_for(site_dir: str) -> tuple[str, bool] | None:
    """The interpreter that installs into the site-packages folder ``site_dir`` and
    whether pip needs ``--user`` there, or None when the folder is not one.

    A virtualenv, a pyenv version or any other prefix: ``PREFIX/bin/python``.  The
    distribution's folders (``/usr/lib/python3/dist-packages``, ``/usr/lib/python3.11/…``,
    and Debian's ``/usr/local/lib/python3.11/dist-packages`` for pip's own installs) belong
    to ``/usr/bin/python3[.Y]``; a source build's ``/usr/local/lib/python3.12/site-packages``
    to ``/usr/local/bin/python3.12``; a user's ``~/.local/lib/python3.11/site-packages`` to
    ``python3.11`` with ``--user``.
    """
    m = _SITE.match(site_dir)
    if m is None:
        return None
    prefix, version, kind = m["prefix"], m["version"], m["kind"]
    if prefix == "/usr" or (prefix == "/usr/local" and kind == "dist"):
        return f"/usr/bin/python{version}", False
    if prefix == "/usr/local":
        return f"/usr/local/bin/python{version}", False
    if PurePosixPath(prefix).name == ".local":
        return f"python{version}", True
    return f"{prefix}/bin/python", False


def _project_dir(family: str, location: str | None) -> str | None:
    """The project folder of a lock/project file of ``family``, or None."""
    if not location:
        return None
    path = PurePosixPath(location)
    if not path.name.endswith(_PROJECT_FILES.get(family, ())):
        return None
    return str(path.parent)


def _pypi(name: str, fixed: str, location: str | None) -> str:
    requirement = shlex.quote(f"{name}>={fixed}")
    python = python_for(location) if location else None
    if python is not None:
        interpreter, user = python
        return (f"{shlex.quote(interpreter)} -m pip install --upgrade "
                f"{'--user ' if user else ''}{requirement}")
    folder = _project_dir("PyPI", location)
    if folder is not None and location is not None:
        tool = {"poetry.lock": "poetry add", "uv.lock": "uv add", "Pipfile.lock":
                "pipenv install", "pdm.lock": "pdm add"}
        file_name = PurePosixPath(location).name
        command = next(c for f, c in tool.items() if file_name.endswith(f))
        return f"cd {shlex.quote(folder)} && {command} {requirement}"
    if location and PurePosixPath(location).suffix in (".txt", ".in"):
        # A requirements file: the pin is what changes.
        return f"require {requirement} in {location}"
    if location and not PurePosixPath(location).suffix and not location.endswith("/"):
        # A folder that is no site-packages: a virtualenv's root (as ``--python-path``
        # takes them).
        return (f"{shlex.quote(location.rstrip('/') + '/bin/python')} -m pip install "
                f"--upgrade {requirement}")
    return f"pip install --upgrade {requirement}"


def upgrade_command(ecosystem: str, packages: Sequence[Package], fixed: str | None,
                    location: str | None = None) -> str | None:
    """The command that installs the fix, or None when there is no fixed version.

    Distribution fixes name the *binary* packages installed (the advisory names the source
    package), upgraded to the candidate from the distribution's repositories, because the
    fixed binary versions can differ from the source version.  Language packages are
    upgraded where ``location`` (the installation's site-packages folder or lock file)
    says, see :func:`python_for`; without one, in whatever environment the reader means.
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
    if scheme == "firmware":
        # A device's firmware (ecosystem CPE): the vendor's image, never a package manager.
        return f"upgrade the firmware to {label(names[0])} {fixed} or later"
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
        return _pypi(name, fixed, location)
    if family == "Maven":
        return f"set {name} to version {fixed} in {location or 'pom.xml'}"
    command = _language_command(family, name, fixed)
    folder = _project_dir(family, location)
    if folder is not None and family == "npm" and location is not None:
        # The project's own package manager: the one whose lock file it keeps.
        for lock, tool in (("yarn.lock", "yarn add"), ("pnpm-lock.yaml", "pnpm add")):
            if location.endswith(lock):
                command = f"{tool} {shlex.quote(f'{name}@{fixed}')}"
    return f"cd {shlex.quote(folder)} && {command}" if folder is not None else command


def _language_command(family: str, name: str, fixed: str) -> str:
    if family == "npm":
        return f"npm install {shlex.quote(f'{name}@{fixed}')}"
    if family == "Go":
        return f"go get {shlex.quote(f'{name}@v{fixed.removeprefix(chr(118))}')}"
    if family == "crates.io":
        return f"cargo update -p {shlex.quote(name)} --precise {shlex.quote(fixed)}"
    if family == "RubyGems":
        return f"bundle update {shlex.quote(name)}  # to >= {fixed}"
    if family == "NuGet":
        return f"dotnet add package {shlex.quote(name)} --version {shlex.quote(fixed)}"
    if family == "Packagist":
        return f"composer require {shlex.quote(f'{name}:^{fixed}')}"
    return f"upgrade {name} to {fixed} or later"
