"""The built wheel works on its own (issue 19): ``python -m build`` of this checkout gives a
wheel with every file of the package (templates, static files, translations, migrations,
scoring defaults, import templates); installed in a fresh virtualenv, its ``patchpilot``
migrates a new database (``db status``), serves the sign-in page in English and Japanese
and the static files, and publishes the same inventory JSON schema as ``schemas/``.

The fresh virtualenv holds the wheel alone (``--no-deps``, no ``--system-site-packages``):
the third-party libraries come from this test's own environment through a ``.pth`` line
that adds its site-packages *after* the virtualenv's, and never the checkout's ``src`` --
a file missing from the wheel cannot be found anywhere else.  No network: the build runs
without isolation (``build`` and ``setuptools`` are in the test extras) and pip installs
from the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.builders.processes import free_port, wait_for
from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "patchpilot"
STATIC = PACKAGE / "server" / "web" / "static"
LOGIN_JA = PACKAGE / "server" / "web" / "locale" / "ja" / "LC_MESSAGES" / "messages.po"
# Not part of what is built: caches, virtualenvs, version control, earlier builds.
NOT_BUILT = shutil.ignore_patterns(".git", ".venv*", "__pycache__", "*.pyc", ".mypy_cache",
                                   ".ruff_cache", ".pytest_cache", ".hypothesis", "build",
                                   "dist", "*.egg-info", "out")


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(map(str, argv))}:\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


def _package_files() -> set[str]:
    """Every file of the package in the checkout, as the wheel names it."""
    return {str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _msgstr(po: Path, msgid: str) -> str:
    found = re.search(rf'^msgid "{re.escape(msgid)}"\nmsgstr "(.+)"$', po.read_text("utf-8"),
                      re.MULTILINE)
    assert found, f"{po}: no translation of {msgid!r}"
    return found[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``python -m build`` makes of a copy of this checkout (sdist first, the
    wheel from it, as PyPI users would get it)."""
    try:
        import build  # noqa: F401 - only whether it is there
    except ImportError:
        why = "`build` is missing: it is in the test extras (pip install -e '.[test]')"
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    root = tmp_path_factory.mktemp("wheel")
    source = root / "checkout"
    shutil.copytree(REPO, source, ignore=NOT_BUILT, symlinks=True)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(root / "dist"),
          str(source)], env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    [built] = (root / "dist").glob("patchpilot-*.whl")
    assert len(list((root / "dist").glob("patchpilot-*.tar.gz"))) == 1
    return built


def test_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    missing = sorted(_package_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    # What the program reads at run time, by kind (each also among the files above).
    for pattern in (r"server/web/templates/login\.html$", r"server/web/static/app\.css$",
                    r"server/web/locale/ja/LC_MESSAGES/messages\.po$",
                    r"reports/locale/ja/LC_MESSAGES/reports\.po$",
                    r"reports/templates/.+", r"db/migrations/versions/0001_\w+\.py$",
                    r"db/migrations/env\.py$", r"scoring/priority\.yaml$",
                    r"importers/templates/generic-findings\.json$", r"py\.typed$"):
        assert any(re.search(pattern, n) for n in names), pattern
    assert re.search(r"^patchpilot = patchpilot\.cli:main$", scripts, re.MULTILINE)


def test_wheel_installed_alone_runs_the_server(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--quiet", "--disable-pip-version-check", str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                         "['purelib'])"]).stdout.strip())
    # The libraries of this environment, after the venv's own site-packages: every folder
    # of this process's path but the standard library's and any holding a patchpilot
    # package (the checkout's src, an editable install's target); the checkout's own .venv
    # (make's, inside the clone) is a folder of libraries and stays.  An editable
    # install's .pth among them is not read: a .pth line adds a folder, it does not
    # process the folder's own .pth files.
    stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
    ours = [p for p in dict.fromkeys(sys.path) if p and Path(p).is_dir()
            and p not in stdlib and not Path(p).is_relative_to(REPO / "src")
            and not (Path(p) / "patchpilot").exists()]
    (site / "zz_test_dependencies.pth").write_text("\n".join(ours) + "\n")

    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PATCHPILOT_") and k != "PYTHONPATH"}
    env.update(PATCHPILOT_HOME=str(home),
               PATCHPILOT_DATABASE_URL=f"sqlite:///{home / 'patchpilot.db'}",
               PATCHPILOT_FEED_UPDATE_INTERVAL="off")
    where = json.loads(_run([str(python), "-c", (
        "import json, patchpilot\n"
        "from patchpilot.inventory.model import inventory_json_schema\n"
        "print(json.dumps({'file': patchpilot.__file__, 'schema': inventory_json_schema()}))"
    )], env=env, cwd=tmp_path).stdout)
    assert Path(where["file"]).is_relative_to(site), where["file"]
    published = json.loads((REPO / "schemas" / "inventory-2.schema.json").read_text())
    assert where["schema"] == published

    program = venv / "bin" / "patchpilot"
    status = _run([str(program), "db", "status"], env=env, cwd=tmp_path)
    assert "The knowledge base is empty" in status.stdout
    assert (home / "patchpilot.db").is_file()  # created and migrated by the wheel's code

    port = free_port()
    server = subprocess.Popen([str(program), "server", "--port", str(port), "--job-workers",
                               "0"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def answers() -> bool:
            assert server.poll() is None, server.stdout.read()  # type: ignore[union-attr]
            try:
                return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=120)
        login = httpx.get(f"{url}/login", timeout=30)
        assert login.status_code == 200
        assert 'name="password"' in login.text and ">Log in</button>" in login.text
        ja = httpx.get(f"{url}/login", headers={"Accept-Language": "ja"}, timeout=30)
        assert f">{_msgstr(LOGIN_JA, 'Log in')}</button>" in ja.text
        for path in sorted(STATIC.iterdir()):
            got = httpx.get(f"{url}/static/{path.name}", timeout=30)
            assert got.status_code == 200, path.name
            assert got.content == path.read_bytes(), path.name
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
