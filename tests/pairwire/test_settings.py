"""Settings come from PAIRWIRE_* variables and are validated with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairwire.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HOST", "PORT", "DATABASE_URL", "REDIS_URL", "SECRET", "GUEST_LOGIN"):
        monkeypatch.delenv(f"PAIRWIRE_{name}", raising=False)
    monkeypatch.setenv("PAIRWIRE_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert (settings.host, settings.port, settings.redis_url, settings.guest_login) == ("127.0.0.1", 8080, None, True)
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'pairwire.sqlite3'}"
    assert settings.ice_servers == []


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRWIRE_PORT", "9123")
    monkeypatch.setenv("PAIRWIRE_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:5432/db")
    monkeypatch.setenv("PAIRWIRE_GUEST_LOGIN", "off")
    monkeypatch.setenv("PAIRWIRE_ICE_SERVERS", "stun:127.0.0.1:3478, turn:127.0.0.1:3478")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.resolved_database_url == "postgresql+asyncpg://u@127.0.0.1:5432/db"
    assert settings.guest_login is False
    assert settings.ice_servers == ["stun:127.0.0.1:3478", "turn:127.0.0.1:3478"]


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PORT", "eighty", "PAIRWIRE_PORT"),
        ("PORT", "70000", "PAIRWIRE_PORT"),
        ("DATABASE_URL", "mysql://x/y", "PAIRWIRE_DATABASE_URL"),
        ("SECRET", "short", "PAIRWIRE_SECRET"),
        ("LOG_LEVEL", "LOUD", "PAIRWIRE_LOG_LEVEL"),
        ("GUEST_LOGIN", "maybe", "PAIRWIRE_GUEST_LOGIN"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(f"PAIRWIRE_{name}", value)
    with pytest.raises(SettingsError, match=fragment):
        load_settings()


def test_generated_secret_is_kept(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path, secret=None).resolved_secret()
    again = load_settings(data_dir=tmp_path, secret=None).resolved_secret()
    assert first == again and len(first) >= 32
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0
    configured = load_settings(data_dir=tmp_path, secret="c" * 40).resolved_secret()
    assert configured == "c" * 40
