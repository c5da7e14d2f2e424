"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from matching.store.migrate import alembic_config, upgrade
from matching.store.models import Base

EXPECTED_TABLES = {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}


async def _diff(engine) -> list:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True, "compare_server_default": True}),
                Base.metadata,
            )
        )


async def test_upgrade_matches_models(empty_db) -> None:  # type: ignore[no-untyped-def]
    await upgrade(empty_db.engine)
    diff = await _diff(empty_db.engine)
    assert diff == [], f"migrations and models differ: {diff}"
    async with empty_db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables == EXPECTED_TABLES


async def test_an_unmigrated_database_differs(empty_db) -> None:  # type: ignore[no-untyped-def]
    # The comparison above would be empty if it compared nothing: show it sees missing tables.
    diff = await _diff(empty_db.engine)
    assert {entry[1].name for entry in diff if entry[0] == "add_table"} == EXPECTED_TABLES - {"alembic_version"}


async def test_downgrade_removes_everything_and_upgrade_again(db) -> None:  # type: ignore[no-untyped-def]
    config = alembic_config(db.url, schema=db.schema)

    def _down(connection) -> None:  # type: ignore[no-untyped-def]
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with db.engine.begin() as conn:
        await conn.run_sync(_down)
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        if db.kind == "postgres":
            enums = await conn.run_sync(lambda c: {e["name"] for e in inspect(c).get_enums()})
            assert enums == set()
    assert tables == {"alembic_version"}
    await upgrade(db.engine)
    assert await _diff(db.engine) == []
