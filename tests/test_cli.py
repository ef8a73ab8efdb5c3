"""The `rapport` command on a fresh embedded database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rapport.cli import app
from rapport.core.config import get_settings

runner = CliRunner()


def test_db_upgrade_create_admin_and_demo(tmp_path, monkeypatch):
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAPPORT_ARGON2_MEMORY_COST_KIB", "1024")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "rapport.db").exists()
        current = runner.invoke(app, ["db", "current"])
        assert current.exit_code == 0 and current.output.strip()[:4].isdigit()
        args = [
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
        assert runner.invoke(app, args).exit_code == 0
        again = runner.invoke(app, args)
        assert again.exit_code == 1 and "already exists" in again.output
        first = runner.invoke(app, ["demo"])
        assert "password:" in first.output
        second = runner.invoke(app, ["demo"])
        assert "password:" not in second.output and "exists" in second.output
    finally:
        get_settings.cache_clear()


def test_openapi_export_writes_the_document(tmp_path):
    target = tmp_path / "openapi.json"
    result = runner.invoke(app, ["openapi", "export", "--path", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text())["info"]["title"] == "Rapport API"
