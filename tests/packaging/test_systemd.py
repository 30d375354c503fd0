"""The systemd units of packaging/systemd (issue 19): systemd's own ``systemd-analyze
verify`` finds nothing to say about them, their ``ExecStart`` lines are command lines the
real ``patchpilot`` accepts, and the server's and the workers' are hardened the same way,
with their settings from /etc/patchpilot/patchpilot.env."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from patchpilot.cli import app

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "packaging" / "systemd"
ENV_FILE = UNITS / "patchpilot.env"
CONFIG = REPO / "src" / "patchpilot" / "config.py"
INSTALLED = "/opt/patchpilot/bin/patchpilot"
# The long-running units and the command each runs.
COMMANDS = {"patchpilot-server.service": "server", "patchpilot-worker@.service": "worker",
            "patchpilot-agent.service": "agent"}
HARDENING = {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true",
             "PrivateTmp": "true", "PrivateDevices": "true", "User": "patchpilot",
             "Group": "patchpilot", "StateDirectory": "patchpilot", "UMask": "0077",
             "CapabilityBoundingSet": "", "RestrictSUIDSGID": "true"}


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value): keys repeat (Environment=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.append((key.strip(), value.strip()))
    return sections


def _one(entries: list[tuple[str, str]], key: str) -> str:
    [value] = [v for k, v in entries if k == key]
    return value


def _defaults(entries: list[tuple[str, str]]) -> dict[str, str]:
    """The variables the unit's own Environment= lines set."""
    found: dict[str, str] = {}
    for key, value in entries:
        if key == "Environment":
            found.update(part.split("=", 1) for part in shlex.split(value))  # type: ignore[misc]
    return found


def _argv(unit: str) -> list[str]:
    """The unit's ExecStart with the variables expanded (their defaults, else a
    placeholder), the installed path first."""
    service = _unit(UNITS / unit)["Service"]
    defaults = _defaults(service)
    line = re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m[1], f"value-of-{m[1]}"),
                  _one(service, "ExecStart"))
    return shlex.split(line)


@pytest.mark.parametrize("unit", sorted(COMMANDS))
def test_exec_start_is_a_command_line_patchpilot_accepts(unit: str) -> None:
    argv = _argv(unit)
    assert argv[0] == INSTALLED
    assert argv[1] == COMMANDS[unit]
    # The command exists in the real program...
    shown = subprocess.run([sys.executable, "-m", "patchpilot.cli", argv[1], "--help"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    # ...and takes these options with these values (click parses them as it would at
    # start, without running the command).
    command = typer.main.get_command(app).get_command(None, argv[1])  # type: ignore[attr-defined]
    assert command is not None
    try:
        command.make_context(argv[1], argv[2:])
    except click.UsageError as exc:
        pytest.fail(f"{unit}: ExecStart is refused by `patchpilot {argv[1]}`: {exc}")
    for option in (a for a in argv[2:] if a.startswith("--")):
        assert option in shown.stdout, f"{unit}: {option} not in `{argv[1]} --help`"


@pytest.mark.parametrize("unit", ["patchpilot-server.service", "patchpilot-worker@.service"])
def test_server_and_workers_are_hardened_and_read_the_environment_file(unit: str) -> None:
    service = _unit(UNITS / unit)["Service"]
    for key, value in HARDENING.items():
        assert _one(service, key) == value, key
    assert _one(service, "EnvironmentFile") == "/etc/patchpilot/patchpilot.env"
    defaults = _defaults(service)
    assert defaults["PATCHPILOT_HOME"] == "/var/lib/patchpilot"
    assert "/var/lib/patchpilot" in _one(service, "ReadWritePaths").split()
    # Every ${VAR} of ExecStart has a default in the unit and is shown in the env file.
    used = set(re.findall(r"\$\{(\w+)\}", _one(service, "ExecStart")))
    assert used and used <= set(defaults)
    for name in used:
        assert re.search(rf"^#?{name}={re.escape(defaults[name])}$", ENV_FILE.read_text(),
                         re.MULTILINE), name
    # The environment file is read after the defaults, so its values win.
    keys = [k for k, _ in service]
    assert keys.index("EnvironmentFile") > max(i for i, k in enumerate(keys)
                                               if k == "Environment")


def test_environment_file_names_only_real_settings() -> None:
    text = ENV_FILE.read_text()
    named = set(re.findall(r"^#?(PATCHPILOT_[A-Z_]+)=", text, re.MULTILINE))
    assert "PATCHPILOT_DATABASE_URL" in named
    known = set(re.findall(r"``(PATCHPILOT_[A-Z_]+)``", CONFIG.read_text()))
    assert named <= known, named - known
    for line in text.splitlines():
        assert not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=\S*$", line), line


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    """systemd's own check, on copies whose ExecStart is this environment's patchpilot and
    whose environment file is the example one (the installed paths do not exist here)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the units are still parsed above)")
    # This environment's patchpilot, as an executable file at a path of our own.
    program = tmp_path / "bin" / "patchpilot"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m patchpilot.cli "$@"\n')
    program.chmod(0o755)
    env_file = tmp_path / "patchpilot.env"
    shutil.copyfile(ENV_FILE, env_file)
    names = []
    for unit in COMMANDS:
        text = (UNITS / unit).read_text().replace(INSTALLED, str(program))
        text = text.replace("/etc/patchpilot/patchpilot.env", str(env_file))
        name = unit.replace("@.", "@1.")  # a template is checked as an instance
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    done = subprocess.run([analyze, "verify", *names], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Unknown keys and values systemd cannot parse are only warned about: none allowed.
    assert done.stderr.strip() == "", done.stderr
