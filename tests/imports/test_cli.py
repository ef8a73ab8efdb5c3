"""`rapport import` on an embedded SQLite file database: the same import as the API, in process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rapport.cli import app
from rapport.core.config import get_settings
from tests.imports.factories import csv_text

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAPPORT_ARGON2_MEMORY_COST_KIB", "1024")
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    admin = [
        "users",
        "create-admin",
        "--email",
        "boss@example.com",
        "--full-name",
        "Boss",
        "--workspace",
        "Acme",
        "--password",
        "a-long-password",
    ]
    assert runner.invoke(app, admin).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()


def stored_contacts(data_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(data_dir / "rapport.db") as conn:
        rows = conn.execute("SELECT email, coalesce(job_title, '') FROM contact ORDER BY email")
        return list(rows)


def test_cli_imports_contacts_with_progress_and_reports_bad_rows(data_dir: Path):
    file = data_dir / "people.csv"
    file.write_text(
        csv_text(
            [
                ["Mail", "Name", "Role"],
                ["ada@example.com", "Ada", "Countess"],
                ["broken", "Bad", ""],
                ["grace@example.com", "Grace", "Admiral"],
            ]
        )
    )
    mapping = '{"Mail": "email", "Name": "first_name", "Role": "job_title"}'
    dry = runner.invoke(app, ["import", "contacts", str(file), "--mapping", mapping, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would be created 2" in dry.output and "refused 1" in dry.output
    assert stored_contacts(data_dir) == []

    strict = runner.invoke(app, ["import", "contacts", str(file), "--mapping", mapping, "--strict"])
    assert strict.exit_code == 1 and "nothing was imported" in strict.output
    assert stored_contacts(data_dir) == []

    result = runner.invoke(
        app, ["import", "contacts", str(file), "--mapping", mapping, "--user", "boss@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "created 2" in result.output
    assert "line 3: Mail:" in result.output
    assert stored_contacts(data_dir) == [
        ("ada@example.com", "Countess"),
        ("grace@example.com", "Admiral"),
    ]

    file.write_text(csv_text([["email", "job_title"], ["ADA@example.com", "Analyst"]]))
    update = runner.invoke(app, ["import", "contacts", str(file), "--dedupe", "update"])
    assert update.exit_code == 0 and "updated 1" in update.output, update.output
    assert stored_contacts(data_dir)[0] == ("ada@example.com", "Analyst")
    assert list((data_dir / "imports").iterdir()) == []  # uploads are removed once done


def test_cli_refuses_unknown_users_and_bad_options(data_dir: Path):
    file = data_dir / "people.csv"
    file.write_text("email\na@example.com\n")
    unknown = runner.invoke(app, ["import", "contacts", str(file), "--user", "nobody@example.com"])
    assert unknown.exit_code == 1 and "No active user" in unknown.output
    bad = runner.invoke(app, ["import", "deals", str(file)])
    assert bad.exit_code == 1
    missing = runner.invoke(app, ["import", "contacts", str(data_dir / "nope.csv")])
    assert missing.exit_code == 1 and "No such file" in missing.output
    unmapped = runner.invoke(app, ["import", "contacts", str(file), "--mapping", '{"x": "email"}'])
    assert unmapped.exit_code == 1 and "body.mapping.x" in unmapped.output
    assert stored_contacts(data_dir) == []
