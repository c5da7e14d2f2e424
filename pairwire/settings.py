"""Configuration from `PAIRWIRE_*` environment variables, validated once at start-up."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

from pydantic import AnyUrl, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SettingsError(Exception):
    """A configuration value is invalid; the message names the variable and the problem."""


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="PAIRWIRE_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Where the embedded defaults keep their files (SQLite database, generated secret).
    data_dir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    secret: str | None = Field(None, min_length=32)
    guest_login: bool = True
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    token_ttl_seconds: int = Field(24 * 3600, ge=60)
    log_level: str = "INFO"
    log_json: bool = True
    web_dir: Path | None = None
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # STUN/TURN handed to peers in match:found; empty by default so nothing off-machine is named.
    ice_servers: Annotated[list[str], NoDecode] = []
    # With a TURN shared secret, TURN credentials are minted per user (TURN REST scheme).
    turn_secret: str | None = None
    turn_ttl_seconds: int = Field(3600, ge=60)
    match_fallback_seconds: float = Field(30.0, ge=0)
    join_timeout_seconds: float = Field(30.0, gt=0)
    disconnect_grace_seconds: float = Field(15.0, ge=0)
    heartbeat_seconds: float = Field(30.0, gt=0)
    chat_rate: str = "20/10 seconds"
    flags_per_hour: int = Field(5, ge=1)
    shutdown_timeout: float = Field(10.0, ge=0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        AnyUrl(value)  # raises on something that is not a URL at all
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("chat_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        import limits

        try:
            limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate like '20/10 seconds': {exc}") from None
        return value

    @field_validator("ice_servers")
    @classmethod
    def _ice_schemes(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        return value

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        """The configured database, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'pairwire.sqlite3').resolve()}"

    def resolved_secret(self) -> str:
        """The signing key: configured, or generated once and kept in the data directory."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Write-then-rename so two processes starting together end with one key, never half a file.
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_text(key + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        return path.read_text().strip()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; turn pydantic's report into one message naming each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "PAIRWIRE_" + "_".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(problems)) from None
