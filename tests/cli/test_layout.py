"""The cli/ package: every command module is in the table of sub-apps, and the --feed help
comes from the feed registry (issue 11 item 7)."""

from __future__ import annotations

import pkgutil

import typer
from typer.testing import CliRunner

import patchpilot.cli
from patchpilot.cli import app
from patchpilot.knowledge.feeds.registry import FEEDS

# Modules that hold no command of their own.
HELPERS = {"common", "__main__"}


def _callbacks(group: object) -> set[str]:
    """The modules of every command's function under ``group``, recursively."""
    found: set[str] = set()
    for name in group.list_commands(None):  # type: ignore[attr-defined]
        command = group.get_command(None, name)  # type: ignore[attr-defined]
        if hasattr(command, "list_commands"):
            found |= _callbacks(command)
        else:
            found.add(command.callback.__module__)
    return found


def test_every_command_module_is_wired_into_the_app() -> None:
    modules = {m.name for m in pkgutil.iter_modules(patchpilot.cli.__path__)} - HELPERS
    wired = {m.rpartition(".")[2] for m in _callbacks(typer.main.get_command(app))}
    assert wired - {"cli"} == modules  # "cli": `version`, in the package's own table


def test_top_level_help_lists_the_commands_in_their_order() -> None:
    command = typer.main.get_command(app)
    assert command.list_commands(None) == [  # type: ignore[attr-defined]
        "version", "server", "up", "worker", "agent", "sweep", "plan", "sla", "import",
        "discover", "backup", "restore", "db", "scan", "inventory", "token", "enrol-token",
        "user", "agents", "schedule", "window", "assets", "device", "priority", "group",
        "ssh-target", "report", "playbook", "hook", "secret"]


def test_feed_help_names_every_feed_of_the_registry() -> None:
    db = typer.main.get_command(app).get_command(None, "db")  # type: ignore[attr-defined]
    [feed] = [p for p in db.get_command(None, "update").params if p.name == "feed"]
    assert feed.help == f"Only this feed ({', '.join(f.name for f in FEEDS)})."
    assert feed.help == ("Only this feed (debian-tracker, alpine-secdb, cve5, nvd, kev, epss, "
                         "msrc, jvn, osv).")
    shown = CliRunner().invoke(app, ["db", "update", "--help"], terminal_width=200,
                               env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "Only this feed (debian-tracker, alpine-secdb, cve5, nvd, kev, epss, msrc, jvn, osv)." \
        in " ".join(shown.output.split())


def test_unknown_feed_is_refused_naming_the_known_ones() -> None:
    done = CliRunner().invoke(app, ["db", "update", "--feed", "nope"])
    assert done.exit_code == 2
    assert "unknown feed 'nope'; known: debian-tracker, alpine-secdb, cve5, nvd, kev, epss, " \
           "msrc, jvn, osv" in " ".join(done.output.split())
