"""schema.prisma (the documented data model) and the SQLAlchemy models must describe the same database.

The check itself lives in matching/store/drift.py; this file runs it on the real files and proves,
on copies, that it notices each kind of drift. It needs Node.js and @prisma/prisma-schema-wasm
(`npm install`): without them the tests skip, except under CI=true, where the test command
installs them and a skip would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Enum as SAEnum, ForeignKeyConstraint, MetaData, Text, text
from sqlalchemy.schema import DefaultClause

from matching.store import drift
from matching.store.models import Base

SCHEMA_TEXT = drift.SCHEMA_PATH.read_text(encoding="utf-8")


def _require_prisma_parser() -> None:
    reason = drift.missing_prerequisite()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the test command is expected to install it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dmmf() -> dict[str, Any]:
    """The real schema.prisma, parsed once: Prisma's parser takes a few hundred milliseconds."""
    _require_prisma_parser()
    return drift.load_dmmf(drift.SCHEMA_PATH)


def copy_metadata(source: MetaData) -> MetaData:
    """A deep copy of ``source`` to mutate, so the real Base.metadata is never touched."""
    target = MetaData(naming_convention=dict(source.naming_convention))
    for table in source.sorted_tables:
        table.to_metadata(target)
    return target


def mutated_schema(tmp_path: Path, old: str, new: str) -> dict[str, Any]:
    """The DMMF of a copy of schema.prisma with ``old`` replaced by ``new`` (exactly once)."""
    # A replacement that finds nothing would make the proof pass vacuously.
    assert SCHEMA_TEXT.count(old) == 1, f"{old!r} should occur exactly once in schema.prisma"
    path = tmp_path / "schema.prisma"
    path.write_text(SCHEMA_TEXT.replace(old, new), encoding="utf-8")
    return drift.load_dmmf(path)


def _report(lines: list[str]) -> str:
    return "\n".join(lines) or "(no differences)"


# --------------------------------------------------------------------------------------------
# The real check


def test_schema_prisma_matches_sqlalchemy_models(dmmf: dict[str, Any]) -> None:
    differences = drift.compare(dmmf, Base.metadata)
    assert differences == [], (
        "prisma/schema.prisma and matching/store/models.py disagree:\n" + _report(differences)
    )


def test_a_copy_of_the_metadata_still_matches(dmmf: dict[str, Any]) -> None:
    # The drift proofs below mutate copies; a copy must start out clean for them to mean anything.
    copy = copy_metadata(Base.metadata)
    assert copy.tables["Match"] is not Base.metadata.tables["Match"]
    assert drift.compare(dmmf, copy) == []


# --------------------------------------------------------------------------------------------
# Proofs that drift is caught: in SQLAlchemy (a mutated copy of the metadata)


def _add_column(md: MetaData) -> None:
    md.tables["user_sessions"].append_column(Column("foo", Text, nullable=True))


def _make_not_null(md: MetaData) -> None:
    md.tables["Match"].c.endedBy.nullable = False


def _drop_index(md: MetaData) -> None:
    table = md.tables["Match"]
    table.indexes.discard(next(index for index in table.indexes if index.name == "Match_roomId_idx"))


def _change_server_default(md: MetaData) -> None:
    md.tables["Flag"].c.reason.server_default = DefaultClause(text("'n/a'"))


def _drop_python_default_of_now(md: MetaData) -> None:
    md.tables["User"].c.createdAt.default = None


def _add_enum_value(md: MetaData) -> None:
    md.tables["Match"].c.media.type = SAEnum("DIRECT", "RELAY", "SFU", name="MediaRoute")


def _change_on_delete(md: MetaData) -> None:
    fk = next(fk for fk in md.tables["Flag"].foreign_key_constraints if fk.column_keys == ["matchId"])
    fk.ondelete = "CASCADE"


def _drop_composite_unique(md: MetaData) -> None:
    table = md.tables["blocks"]
    constraint = next(c for c in table.constraints if c.name == "blocks_blockerId_blockedId_key")
    table.constraints.discard(constraint)


def _drop_onupdate(md: MetaData) -> None:
    md.tables["Match"].c.updatedAt.onupdate = None


def _change_type(md: MetaData) -> None:
    md.tables["Match"].c.duration.type = Text()


def _drop_foreign_key(md: MetaData) -> None:
    table = md.tables["chat_messages"]
    fk = next(fk for fk in table.foreign_key_constraints if fk.column_keys == ["senderId"])
    table.constraints.discard(fk)
    table.foreign_keys.difference_update(fk.elements)
    assert isinstance(fk, ForeignKeyConstraint)


METADATA_DRIFT: list[tuple[str, Callable[[MetaData], None], str]] = [
    ("column-added", _add_column, "table user_sessions: column foo only in SQLAlchemy"),
    ("nullability", _make_not_null, "Match.endedBy: nullable in schema.prisma, NOT NULL in SQLAlchemy"),
    ("index-dropped", _drop_index, "table Match: index Match_roomId_idx on (roomId) only in schema.prisma"),
    ("server-default", _change_server_default, 'Flag.reason: default @default("") in schema.prisma'),
    ("now-without-python-default", _drop_python_default_of_now, "User.createdAt: default @default(now())"),
    ("enum-value", _add_enum_value, "enum MediaRoute: values [DIRECT, RELAY] in schema.prisma, [DIRECT, RELAY, SFU]"),
    ("on-delete", _change_on_delete, "table Flag: foreign key (matchId) ON DELETE SET NULL in schema.prisma, CASCADE"),
    ("unique-dropped", _drop_composite_unique, "table blocks: unique blocks_blockerId_blockedId_key on (blockerId, blockedId) only in schema.prisma"),
    ("onupdate-dropped", _drop_onupdate, "Match.updatedAt: @updatedAt in schema.prisma, no onupdate in SQLAlchemy"),
    ("type", _change_type, "Match.duration: type Int in schema.prisma (expects Integer)"),
    ("foreign-key-dropped", _drop_foreign_key, "table chat_messages: foreign key (senderId) -> User(id)"),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in METADATA_DRIFT], ids=[i for i, _, _ in METADATA_DRIFT])
def test_drift_in_sqlalchemy_is_caught(dmmf: dict[str, Any], mutate: Callable[[MetaData], None], expected: str) -> None:
    copy = copy_metadata(Base.metadata)
    mutate(copy)
    differences = drift.compare(dmmf, copy)
    assert differences != [], "the checker missed a change made only in SQLAlchemy"
    assert any(expected in line for line in differences), f"expected a line containing {expected!r}:\n{_report(differences)}"


# --------------------------------------------------------------------------------------------
# Proofs that drift is caught: in schema.prisma (a mutated copy of the file)


SCHEMA_DRIFT: list[tuple[str, str, str, str]] = [
    (
        "field-added",
        "  seniority   String?\n",
        "  seniority   String?\n  nickname    String?\n",
        "table User: column nickname only in schema.prisma",
    ),
    (
        "nullability",
        "  text     String\n",
        "  text     String?\n",
        "chat_messages.text: nullable in schema.prisma, NOT NULL in SQLAlchemy",
    ),
    (
        "default",
        "isGuest     Boolean  @default(false)",
        "isGuest     Boolean  @default(true)",
        "User.isGuest: default @default(true) in schema.prisma",
    ),
    (
        "enum-value",
        "  TIMEOUT // not both joined in time",
        "  TIMED_OUT // not both joined in time",
        "enum MatchStatus: values [PENDING, ACTIVE, ENDED, SKIPPED, TIMED_OUT] in schema.prisma",
    ),
    (
        "index-dropped",
        "  @@index([roomId])\n",
        "",
        "table Match: index Match_roomId_idx on (roomId) only in SQLAlchemy",
    ),
    (
        "on-delete",
        "match    Match    @relation(fields: [matchId], references: [id], onDelete: Cascade)",
        "match    Match    @relation(fields: [matchId], references: [id], onDelete: Restrict)",
        "table chat_messages: foreign key (matchId) ON DELETE RESTRICT in schema.prisma, CASCADE in SQLAlchemy",
    ),
    (
        "implicit-on-delete",
        # Without onDelete a required relation means RESTRICT; SQLAlchemy says CASCADE.
        "flag      Flag     @relation(fields: [flagId], references: [id], onDelete: Cascade)",
        "flag      Flag     @relation(fields: [flagId], references: [id])",
        "table flag_audits: foreign key (flagId) ON DELETE RESTRICT in schema.prisma, CASCADE in SQLAlchemy",
    ),
    (
        "table-renamed",
        '@@map("flag_audits")',
        '@@map("flag_audit")',
        "table flag_audit: only in schema.prisma (model FlagAudit)",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), [(o, n, e) for _, o, n, e in SCHEMA_DRIFT], ids=[i for i, _, _, _ in SCHEMA_DRIFT])
def test_drift_in_schema_prisma_is_caught(tmp_path: Path, old: str, new: str, expected: str) -> None:
    _require_prisma_parser()
    differences = drift.compare(mutated_schema(tmp_path, old, new), Base.metadata)
    assert differences != [], "the checker missed a change made only in schema.prisma"
    assert any(expected in line for line in differences), f"expected a line containing {expected!r}:\n{_report(differences)}"


def test_prisma_defaults_spelled_out_are_no_drift(tmp_path: Path) -> None:
    # Writing Prisma's defaults explicitly, or leaving them out, must not change the verdict:
    # SetNull is the default onDelete of an optional relation, Cascade the default onUpdate.
    _require_prisma_parser()
    dmmf = mutated_schema(
        tmp_path,
        "match         Match?        @relation(fields: [matchId], references: [id], onDelete: SetNull)",
        "match         Match?        @relation(fields: [matchId], references: [id], onUpdate: Cascade)",
    )
    assert drift.compare(dmmf, Base.metadata) == []


# --------------------------------------------------------------------------------------------
# load_dmmf's failures are explicit


def test_invalid_schema_reports_prismas_message(tmp_path: Path) -> None:
    _require_prisma_parser()
    path = tmp_path / "schema.prisma"
    path.write_text("model Broken {\n  id String @id\n  nonsense\n}\n", encoding="utf-8")
    with pytest.raises(drift.SchemaInvalidError, match="P1012"):
        drift.load_dmmf(path)


def test_missing_node_is_explicit() -> None:
    with pytest.raises(drift.NodeNotFoundError):
        drift.load_dmmf(drift.SCHEMA_PATH, node="/nonexistent/node")


def test_prerequisite_check_names_what_is_missing(tmp_path: Path) -> None:
    assert drift.missing_prerequisite(node="/nonexistent/node") is not None
    if shutil.which("node"):
        reason = drift.missing_prerequisite(root=tmp_path)
        assert reason is not None and drift.WASM_PACKAGE in reason and "npm install" in reason


def test_missing_parser_package_is_explicit(tmp_path: Path) -> None:
    _require_prisma_parser()
    # The script resolves the package from its own directory up; a copy in tmp_path finds none.
    script = tmp_path / "prisma" / "dmmf.js"
    script.parent.mkdir()
    shutil.copy(drift.DMMF_SCRIPT, script)
    with pytest.raises(drift.PrismaWasmMissingError, match="npm install"):
        drift.load_dmmf(drift.SCHEMA_PATH, script=script)
