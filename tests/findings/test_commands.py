"""Upgrade commands name the environment: the Python that owns a site-packages folder,
the project folder of a lock file."""

from __future__ import annotations

import pytest

from patchpilot.findings.commands import python_for, upgrade_command
from patchpilot.models import Ecosystem, Package


@pytest.mark.parametrize(("site", "python"), [
    # pyenv versions and virtualenvs: the prefix's own interpreter.
    ("/root/.pyenv/versions/3.6.15/lib/python3.6/site-packages",
     ("/root/.pyenv/versions/3.6.15/bin/python", False)),
    ("/root/.pyenv/versions/2.7.18/lib/python2.7/site-packages",
     ("/root/.pyenv/versions/2.7.18/bin/python", False)),
    ("/srv/app/.venv/lib64/python3.11/site-packages", ("/srv/app/.venv/bin/python", False)),
    # Debian's own folder and its pip-installed one both belong to the system Python.
    ("/usr/lib/python3/dist-packages", ("/usr/bin/python3", False)),
    ("/usr/local/lib/python3.11/dist-packages", ("/usr/bin/python3.11", False)),
    ("/usr/lib64/python3.9/site-packages", ("/usr/bin/python3.9", False)),
    # A source build in /usr/local; a user's site folder.
    ("/usr/local/lib/python3.12/site-packages", ("/usr/local/bin/python3.12", False)),
    ("/home/ann/.local/lib/python3.11/site-packages", ("python3.11", True)),
    # Not a site-packages folder.
    ("/srv/app/requirements.txt", None),
])
def test_python_for(site: str, python: tuple[str, bool] | None) -> None:
    assert python_for(site) == python


def _command(ecosystem: str, name: str, fixed: str, location: str | None) -> str | None:
    eco = Ecosystem(ecosystem)
    return upgrade_command(eco, [Package(eco, name, "1", location=location)], fixed, location)


def test_commands_name_the_environment() -> None:
    assert _command("PyPI", "pip", "23.3", "/usr/lib/python3/dist-packages") == \
        "/usr/bin/python3 -m pip install --upgrade 'pip>=23.3'"
    assert _command("PyPI", "pip", "23.3", "/home/a b/.local/lib/python3.11/site-packages") \
        == "python3.11 -m pip install --upgrade --user 'pip>=23.3'"
    assert _command("PyPI", "pip", "23.3", "/opt/my app/lib/python3.11/site-packages") == \
        "'/opt/my app/bin/python' -m pip install --upgrade 'pip>=23.3'"
    assert _command("PyPI", "aiohttp", "3.9.2", "/srv/shop/poetry.lock") == \
        "cd /srv/shop && poetry add 'aiohttp>=3.9.2'"
    assert _command("PyPI", "flask", "2.2.5", "/srv/shop/requirements.txt") == \
        "require 'flask>=2.2.5' in /srv/shop/requirements.txt"
    assert _command("PyPI", "flask", "2.2.5", "/srv/app/venv") == \
        "/srv/app/venv/bin/python -m pip install --upgrade 'flask>=2.2.5'"
    assert _command("PyPI", "flask", "2.2.5", "/srv/app/bom.spdx.json") == \
        "pip install --upgrade 'flask>=2.2.5'"
    assert _command("npm", "lodash", "4.17.21", "/srv/web/package-lock.json") == \
        "cd /srv/web && npm install lodash@4.17.21"
    assert _command("npm", "lodash", "4.17.21", "/srv/web/yarn.lock") == \
        "cd /srv/web && yarn add lodash@4.17.21"
    assert _command("npm", "lodash", "4.17.21", "/srv/web/pnpm-lock.yaml") == \
        "cd /srv/web && pnpm add lodash@4.17.21"
    assert _command("Go", "golang.org/x/net", "0.17.0", "/src/api/go.mod") == \
        "cd /src/api && go get golang.org/x/net@v0.17.0"
    assert _command("crates.io", "time", "0.2.23", "/src/cli/Cargo.lock") == \
        "cd /src/cli && cargo update -p time --precise 0.2.23"
    # An SBOM names no project: the command stays as it was, for the reader's context.
    assert _command("npm", "lodash", "4.17.21", "/tmp/bom.json") == \
        "npm install lodash@4.17.21"
    # Without a location: as before.
    assert _command("PyPI", "pip", "23.3", None) == "pip install --upgrade 'pip>=23.3'"
    # OS packages: the package manager, wherever the status file was.
    assert _command("Debian:12", "openssl", "3.0.15-1~deb12u1", "/var/lib/dpkg/status") == \
        "apt-get install --only-upgrade openssl"
