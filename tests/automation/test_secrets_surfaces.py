"""The action secrets' command line (``patchpilot secret``) and API (``/api/secrets``): a
value goes in by file, pipe or prompt -- never argv -- is stored encrypted, and comes back
only masked: not in the table, the JSON, an API answer (its errors included), an audit row
or a log line.  A wrong key is a clear error.  Both databases."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner, Result

from patchpilot.automation.secrets import SecretError, read_secret
from patchpilot.cli import app
from patchpilot.db.tables import audit_log, secrets
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

KEY = "k" * 24 + "-current-key"
OLD_KEY = "o" * 24 + "-previous-key"
VALUE = "xoxb-1234-5678-SeCrEt-f3a9"
OTHER = "glpat-AnOtHeR-VaLuE-77c1"

Run = Callable[..., Result]


def _everything_stored(engine: Engine) -> str:
    """Every secrets row and audit row as text: where a clear value must never be."""
    with engine.connect() as conn:
        rows = [*conn.execute(select(secrets)), *conn.execute(select(audit_log))]
    return "\n".join(repr(tuple(r)) for r in rows)


def _assert_nowhere(value: str, *texts: str) -> None:
    encoded = base64.b64encode(value.encode()).decode().rstrip("=")
    for text in texts:
        assert value not in text and encoded not in text


@pytest.fixture
def run(engine: Engine, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("PATCHPILOT_DATABASE_URL", database_url)
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATCHPILOT_SECRETS_KEY", KEY)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = runner.invoke(app, list(args), input=stdin, terminal_width=200,
                               env={"COLUMNS": "200"})
        assert result.exit_code == code, result.output
        return result

    return invoke


def test_secret_commands(run: Run, engine: Engine, tmp_path: Path,
                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # From a pipe (the line end echo adds is not part of it), and from a file.
    assert run("secret", "set", "slack-ops", stdin=VALUE + "\n").output == (
        "secret slack-ops stored: …f3a9\n")
    token_file = tmp_path / "gitlab.token"
    token_file.write_text(OTHER + "\r\n", encoding="utf-8")
    assert run("secret", "set", "gitlab-bot", "--from-file", str(token_file)).output == (
        "secret gitlab-bot stored: …77c1\n")
    # Never on the command line: a value there is refused before anything is stored.
    refused = run("secret", "set", "jira-bot", "hunter2-in-the-history", code=2)
    assert "Got unexpected extra argument(s) (hunter2-in-the-history)" in " ".join(
        refused.output.replace("│", " ").split())
    with engine.connect() as conn:
        assert read_secret(conn, "slack-ops", KEY) == VALUE
        assert read_secret(conn, "gitlab-bot", KEY) == OTHER
        assert sorted(conn.execute(select(secrets.c.name)).scalars()) == [
            "gitlab-bot", "slack-ops"]
    table = run("secret", "list").output
    listed = json.loads(run("secret", "list", "--json").output)
    assert [(s["name"], s["hint"], s["updated_by"].startswith("cli:")) for s in listed] == [
        ("gitlab-bot", "…77c1", True), ("slack-ops", "…f3a9", True)]
    assert "slack-ops" in table and "…f3a9" in table and "gitlab-bot" in table
    # A wrong old key is refused, naming the secret, and changes nothing.
    wrong = tmp_path / "wrong.key"
    wrong.write_text(OLD_KEY + "\n", encoding="utf-8")
    failed = run("secret", "rekey", "--old-key-file", str(wrong), code=2)
    assert re.fullmatch(r"error: secret '(gitlab-bot|slack-ops)' cannot be decrypted with "
                        r"the old key\n", failed.output)
    with engine.connect() as conn:
        assert read_secret(conn, "gitlab-bot", KEY) == OTHER
    _assert_nowhere(VALUE, table, json.dumps(listed), _everything_stored(engine), caplog.text)
    _assert_nowhere(OTHER, table, _everything_stored(engine), caplog.text)
    assert run("secret", "delete", "gitlab-bot").output == "secret gitlab-bot deleted\n"
    gone = run("secret", "delete", "gitlab-bot", code=2)
    assert "no secret named 'gitlab-bot'" in gone.output
    with engine.connect() as conn:
        assert [(r.actor.startswith("cli:"), r.action, r.target) for r in conn.execute(
            select(audit_log).order_by(audit_log.c.id))] == [
            (True, "secret.set", "secret:slack-ops"), (True, "secret.set", "secret:gitlab-bot"),
            (True, "secret.delete", "secret:gitlab-bot")]


def test_rekey_moves_every_secret_to_the_current_key(run: Run, engine: Engine,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHPILOT_SECRETS_KEY", OLD_KEY)
    run("secret", "set", "slack-ops", stdin=VALUE)
    monkeypatch.setenv("PATCHPILOT_SECRETS_KEY", KEY)
    old = tmp_path / "old.key"
    old.write_text(OLD_KEY + "\n", encoding="utf-8")
    with engine.connect() as conn:
        with pytest.raises(SecretError) as caught:
            read_secret(conn, "slack-ops", KEY)
    assert str(caught.value) == ("secret 'slack-ops' cannot be decrypted with this "
                                 "PATCHPILOT_SECRETS_KEY (was the key changed?)")
    assert run("secret", "rekey", "--old-key-file", str(old)).output == (
        "1 secret encrypted under the current key\n")
    with engine.connect() as conn:
        assert read_secret(conn, "slack-ops", KEY) == VALUE
        with pytest.raises(SecretError):
            read_secret(conn, "slack-ops", OLD_KEY)
    _assert_nowhere(VALUE, _everything_stored(engine))


@pytest.fixture
def client(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[TestClient]:
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATCHPILOT_SECRETS_KEY", KEY)
    with TestClient(create_app(engine)) as c:
        yield c


def test_secrets_api(client: TestClient, engine: Engine,
                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = {"Authorization": "Bearer " + create_api_token(engine, user="ana",
                                                           role=Role.ADMIN)[0]}
    analyst = {"Authorization": "Bearer " + create_api_token(engine, user="ken",
                                                             role=Role.ANALYST)[0]}
    answers = []
    put = client.put("/api/secrets/slack-ops", headers=admin, json={"value": VALUE})
    answers.append(put.text)
    assert put.status_code == 200
    assert {k: v for k, v in put.json().items() if k != "updated_at"} == {
        "name": "slack-ops", "hint": "…f3a9", "updated_by": "ana"}
    listed = client.get("/api/secrets", headers=admin)
    answers.append(listed.text)
    assert [(s["name"], s["hint"]) for s in listed.json()] == [("slack-ops", "…f3a9")]
    # Bodies that would make FastAPI echo its input: a value of the wrong type, a misspelt
    # key.  Refused naming the field, never quoting what was sent.
    for body, message in (({"value": 12345678901234567}, "value: required, a string"),
                          ({"valu": VALUE}, "value: required, a string"),
                          ({"value": ""}, "value: empty"),
                          ({"value": VALUE + "\x00"},
                           "value: at most 65536 characters, without NUL")):
        bad = client.put("/api/secrets/slack-ops", headers=admin, json=body)
        answers.append(bad.text)
        assert (bad.status_code, bad.json()) == (422, {"detail": message})
    named = client.put("/api/secrets/no spaces", headers=admin, json={"value": VALUE})
    answers.append(named.text)
    assert (named.status_code, named.json()["detail"]) == (
        422, "name: letters, digits, '-', '_' or '.', at most 200")
    assert client.put("/api/secrets/slack-ops", headers=analyst,
                      json={"value": OTHER}).status_code == 403
    with engine.connect() as conn:
        assert read_secret(conn, "slack-ops", KEY) == VALUE
    assert client.delete("/api/secrets/slack-ops", headers=admin).status_code == 204
    gone = client.delete("/api/secrets/slack-ops", headers=admin)
    assert (gone.status_code, gone.json()["detail"]) == (404, "no secret named 'slack-ops'")
    _assert_nowhere(VALUE, *answers, _everything_stored(engine), caplog.text)
    _assert_nowhere("12345678901234567", *answers)
    with engine.connect() as conn:
        assert [(r.actor, r.action, r.target) for r in conn.execute(
            select(audit_log).where(audit_log.c.action.like("secret.%"))
            .order_by(audit_log.c.id))] == [("ana", "secret.set", "secret:slack-ops"),
                                            ("ana", "secret.delete", "secret:slack-ops")]
