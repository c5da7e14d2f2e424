"""Column types that mean the same on PostgreSQL and SQLite, as Prisma maps them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Now in UTC, to the millisecond: what a Prisma `DateTime` (timestamp(3)) can hold."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class UTCDateTime(TypeDecorator[datetime]):
    """Prisma's `DateTime`: `timestamp(3)` holding UTC; Python always sees aware UTC values."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return postgresql.TIMESTAMP(precision=3)
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC times")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


class StringList(TypeDecorator[list[str]]):
    """Prisma's `String[]`: `text[]` on PostgreSQL, a JSON array on SQLite (which has no arrays)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Text()))
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> list[str] | None:
        return None if value is None else list(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:
        return None if value is None else list(value)


class JSONValue(TypeDecorator[Any]):
    """Prisma's `Json`: `jsonb` on PostgreSQL, JSON text on SQLite."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(JSON())


class EmptyList(ColumnElement[Any]):
    """Server default of an empty `String[]`: what Prisma's `@default([])` means on each database."""

    inherit_cache = True


@compiles(EmptyList)
def _empty_list_default(element: EmptyList, compiler: Any, **kw: Any) -> str:
    return "'[]'"


@compiles(EmptyList, "postgresql")
def _empty_list_postgresql(element: EmptyList, compiler: Any, **kw: Any) -> str:
    return "ARRAY[]::TEXT[]"
