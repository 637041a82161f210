"""The command line names the problem and exits non-zero on misuse."""

from __future__ import annotations

import pytest

from infra.cli import main
from infra.components.process import free_port
from infra.settings import get_settings


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_db_command_with_an_unreachable_database_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNSHINE_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the database (SUNSHINE_DATABASE_URL)")
    assert "Traceback" not in err


def test_invalid_configuration_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUNSHINE_ENV", "production")
    get_settings.cache_clear()
    try:
        assert main(["db", "current"]) == 1
    finally:
        get_settings.cache_clear()
    assert "SUNSHINE_SECRET_KEY must be set" in capsys.readouterr().err


def test_up_refuses_ports_in_use(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setenv("SUNSHINE_WEB_PORT", str(port))
        monkeypatch.setenv("SUNSHINE_VAR_DIR", str(tmp_path / "var"))
        get_settings.cache_clear()
        try:
            assert main(["up"]) == 1
        finally:
            get_settings.cache_clear()
    out = capsys.readouterr().out
    assert f"web app port {port}" in out
    assert not (tmp_path / "var" / "pg").exists()
