"""Drift check between the documented data model (prisma/schema.prisma) and the SQLAlchemy models.

schema.prisma is read by Prisma's own parser (``@prisma/prisma-schema-wasm`` through
``prisma/dmmf.js``), so the check sees the schema exactly as Prisma does, defaults and implicit
names included. :func:`compare` then walks both descriptions and returns one readable line per
difference; an empty list means they agree.

How a Prisma field is expected to look in SQLAlchemy (the conventions of ``models.py``):

* table = ``@@map`` or the model name; column = ``@map`` or the field name;
* String -> ``Text``; String[] -> ``StringList``; Int -> ``Integer``; Boolean -> ``Boolean``;
  DateTime -> ``UTCDateTime``; Json -> ``JSONValue``; an enum -> a native ``sqlalchemy.Enum``
  named like the Prisma enum (or its ``@@map``) with the same values in the same order.
  BigInt, Float, Decimal and Bytes map to ``BigInteger``, ``Float``, ``Numeric`` and
  ``LargeBinary``, should the schema ever use them;
* ``@default(cuid())`` (and uuid, nanoid, ulid) -> a callable Python default, no server default;
  ``@default(now())`` -> server default ``CURRENT_TIMESTAMP`` plus a Python default;
  ``@updatedAt`` -> Python default and ``onupdate``, no server default; a literal default
  (``false``, ``""``, an enum value, ``[]``...) -> a server default with the same value (a Python
  default, if any, must have that value too); ``@default(autoincrement())`` -> the table's
  autoincrement column; ``@default(dbgenerated("sql"))`` -> server default ``text("sql")``;
* constraint and index names = the ``map:`` argument or Prisma's defaults
  (``<table>_pkey``, ``<table>_<cols>_key``, ``<table>_<cols>_idx``, ``<table>_<cols>_fkey``);
* relations -> foreign keys; Prisma's default ``onDelete`` is Restrict when the relation is
  required and SetNull when optional, ``onUpdate`` Cascade (the default ``relationMode =
  "foreignKeys"`` is assumed: with ``relationMode = "prisma"`` Prisma creates no foreign keys).

Whatever the checker cannot judge (native types such as ``@db.VarChar``, index sort orders or
algorithms, implicit many-to-many join tables, unknown default functions) is reported as a
difference too, so it fails loudly instead of passing unchecked. One gap remains: the DMMF
omits ``@relation(map: ...)``, so foreign key names are always expected to be Prisma's default.
"""

from __future__ import annotations

import enum
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence as SequenceABC
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import NoReferencedColumnError, NoReferencedTableError
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.elements import BindParameter, False_, TextClause, True_
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.types import JSON, ARRAY, TypeDecorator

from .types import EmptyList, JSONValue, StringList, UTCDateTime

__all__ = [
    "DMMF_SCRIPT",
    "REPO_ROOT",
    "SCHEMA_PATH",
    "WASM_PACKAGE",
    "DmmfError",
    "NodeNotFoundError",
    "PrismaWasmMissingError",
    "SchemaInvalidError",
    "compare",
    "load_dmmf",
    "missing_prerequisite",
]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DMMF_SCRIPT: Final = REPO_ROOT / "prisma" / "dmmf.js"
SCHEMA_PATH: Final = REPO_ROOT / "prisma" / "schema.prisma"
WASM_PACKAGE: Final = "@prisma/prisma-schema-wasm"

# Exit codes of prisma/dmmf.js.
_EXIT_SCHEMA_INVALID: Final = 1
_EXIT_PACKAGE_MISSING: Final = 3

# PostgreSQL's identifier limit: Prisma truncates default constraint names to fit it.
_PG_MAX_IDENTIFIER: Final = 63

# Id generators Prisma runs in the client, never in the database.
_CLIENT_GENERATORS: Final = frozenset({"cuid", "cuid2", "uuid", "nanoid", "ulid"})

_REFERENTIAL_ACTIONS: Final = {
    "Cascade": "CASCADE",
    "Restrict": "RESTRICT",
    "NoAction": "NO ACTION",
    "SetNull": "SET NULL",
    "SetDefault": "SET DEFAULT",
}

# What SQLAlchemy type each Prisma scalar type should be, for messages.
_EXPECTED_SA_TYPE: Final = {
    "String": "Text",
    "Int": "Integer",
    "BigInt": "BigInteger",
    "Float": "Float",
    "Decimal": "Numeric",
    "Boolean": "Boolean",
    "DateTime": "UTCDateTime",
    "Json": "JSONValue",
    "Bytes": "LargeBinary",
}


# --------------------------------------------------------------------------------------------
# Loading the DMMF


class DmmfError(RuntimeError):
    """prisma/dmmf.js could not produce the DMMF."""


class NodeNotFoundError(DmmfError):
    """The Node.js executable is not installed (or not at the given path)."""


class PrismaWasmMissingError(DmmfError):
    """``@prisma/prisma-schema-wasm`` is not installed (``npm install`` installs it)."""


class SchemaInvalidError(DmmfError):
    """Prisma rejected the schema; the message is Prisma's."""


def missing_prerequisite(node: str = "node", *, root: Path = REPO_ROOT) -> str | None:
    """Why :func:`load_dmmf` cannot run here, or None when Node.js and the parser are installed."""
    if shutil.which(node) is None:
        return f"Node.js ({node!r}) is not installed; the drift check runs Prisma's parser with it"
    if not (root / "node_modules" / WASM_PACKAGE / "package.json").is_file():
        return f"{WASM_PACKAGE} is not installed in {root / 'node_modules'}; run `npm install` in {root}"
    return None


def load_dmmf(
    schema_path: Path, *, node: str = "node", script: Path = DMMF_SCRIPT, timeout: float = 120.0
) -> dict[str, Any]:
    """Parse ``schema_path`` with Prisma's parser and return its DMMF.

    Raises NodeNotFoundError, PrismaWasmMissingError, SchemaInvalidError (with Prisma's message)
    or DmmfError for any other failure of the script.
    """
    executable = shutil.which(node)
    if executable is None:
        raise NodeNotFoundError(f"Node.js ({node!r}) not found; it is needed to run {script}")
    if not script.is_file():
        raise DmmfError(f"{script} is missing")
    try:
        result = subprocess.run(
            [executable, str(script), str(Path(schema_path).resolve())],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DmmfError(f"running {script} failed: {exc}") from exc
    message = result.stderr.strip()
    if result.returncode == _EXIT_PACKAGE_MISSING:
        raise PrismaWasmMissingError(message or f"{WASM_PACKAGE} is not installed; run `npm install`")
    if result.returncode == _EXIT_SCHEMA_INVALID:
        raise SchemaInvalidError(message or f"Prisma rejected {schema_path}")
    if result.returncode != 0:
        raise DmmfError(f"{script} exited with {result.returncode}: {message}")
    try:
        dmmf = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise DmmfError(f"{script} printed something that is not JSON: {exc}") from exc
    if not isinstance(dmmf, dict) or "datamodel" not in dmmf:
        raise DmmfError(f"{script} printed JSON without a datamodel")
    return dmmf


# --------------------------------------------------------------------------------------------
# Values and defaults


class _Missing(enum.Enum):
    """A value that could not be read (a callable that needs an execution context...)."""

    TOKEN = "?"


@dataclass(frozen=True)
class _Expected:
    """What schema.prisma says about a column's default."""

    kind: str  # none | client | now | literal | autoincrement | dbgenerated | unsupported
    value: Any = None  # literal: the normalized value; dbgenerated: the SQL text or None
    label: str = "no default"


@dataclass(frozen=True)
class _ServerDefault:
    """A SQLAlchemy server default, read back into Prisma's terms."""

    kind: str  # none | now | literal | sql | fetched
    value: Any = None
    label: str = "none"


def _fmt(value: Any) -> str:
    """A value as it would be written in schema.prisma."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (str, bool, int, float, list)) or value is None:
        return json.dumps(value, default=str)
    return str(value)


def _prisma_literal(value: Any, ptype: str, enum_db_values: dict[str, str]) -> Any:
    """A literal default from the DMMF, as the value the database will store."""
    if isinstance(value, list):
        return [_prisma_literal(item, ptype, enum_db_values) for item in value]
    if ptype in ("Int", "BigInt"):
        return int(value)  # BigInt defaults arrive as strings
    if ptype == "Float":
        return float(value)
    if ptype == "Decimal":
        return Decimal(str(value))
    if ptype == "DateTime":
        return _parse_datetime(value)
    if enum_db_values:
        # Prisma writes the enum value's name; the database stores its @map.
        return enum_db_values.get(str(value), str(value))
    return value


def _parse_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return value


def _same_value(ptype: str, expected: Any, actual: Any) -> bool:
    """Whether a SQLAlchemy-side default value means the Prisma literal ``expected``."""
    if actual is _Missing.TOKEN:
        return False
    if isinstance(actual, enum.Enum):
        actual = actual.value
    if isinstance(expected, list):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_same_value(ptype, e, a) for e, a in zip(expected, actual))
        )
    if isinstance(actual, (list, tuple)):
        return False
    try:
        if ptype == "Boolean":
            if isinstance(actual, str):
                lowered = actual.strip().lower()
                if lowered in ("true", "t", "1"):
                    actual = True
                elif lowered in ("false", "f", "0"):
                    actual = False
            return isinstance(actual, bool) and actual == expected
        if isinstance(actual, bool):
            return False  # True is an int in Python, never a valid non-Boolean default
        if ptype in ("Int", "BigInt"):
            return int(str(actual).strip()) == expected
        if ptype == "Float":
            return float(actual) == expected
        if ptype == "Decimal":
            return Decimal(str(actual).strip()) == expected
        if ptype == "DateTime":
            return _parse_datetime(actual) == expected
        if ptype == "Json":
            parsed_expected = json.loads(expected) if isinstance(expected, str) else expected
            parsed_actual = json.loads(actual) if isinstance(actual, str) else actual
            return bool(parsed_expected == parsed_actual)
    except (TypeError, ValueError, InvalidOperation):
        return False
    return isinstance(actual, str) and actual == expected


_QUOTED: Final = re.compile(r"""^'((?:[^']|'')*)'(?:\s*::\s*[\w"\[\] ]+)?$""", re.DOTALL)
_INTEGER: Final = re.compile(r"^[+-]?\d+$")
_NUMBER: Final = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_NOW: Final = re.compile(r"^(current_timestamp(\s*\(\s*\d*\s*\))?|now\s*\(\s*\))$", re.IGNORECASE)
_EMPTY_ARRAY: Final = re.compile(r"^array\s*\[\s*\]\s*(::\s*\w+\s*\[\s*\])?$", re.IGNORECASE)


def _read_server_default(column: Column[Any]) -> _ServerDefault:
    """Classify ``column.server_default`` in the terms schema.prisma uses."""
    default = column.server_default
    if default is None:
        return _ServerDefault("none")
    if isinstance(default, Identity):
        return _ServerDefault("fetched", label="IDENTITY")
    if not isinstance(default, DefaultClause):
        return _ServerDefault("fetched", label=f"{type(default).__name__} (database-generated)")
    arg = default.arg
    if isinstance(arg, str):
        # SQLAlchemy renders a plain string server default as a quoted literal.
        return _ServerDefault("literal", arg, repr(arg))
    if isinstance(arg, EmptyList):
        return _ServerDefault("literal", [], "EmptyList() (empty list)")
    if isinstance(arg, True_):
        return _ServerDefault("literal", True, "true()")
    if isinstance(arg, False_):
        return _ServerDefault("literal", False, "false()")
    if isinstance(arg, BindParameter):
        return _ServerDefault("literal", arg.value, repr(arg.value))
    if isinstance(arg, FunctionElement) and arg.name.lower() in ("now", "current_timestamp"):
        return _ServerDefault("now", label=f"{arg.name}()")
    if isinstance(arg, TextClause):
        return _parse_sql_default(arg.text)
    return _ServerDefault("sql", str(arg), f"SQL {arg}")


def _parse_sql_default(sql: str) -> _ServerDefault:
    """Read a ``text(...)`` server default: a literal, CURRENT_TIMESTAMP, or other SQL."""
    stripped = sql.strip()
    label = f"text({stripped!r})"
    quoted = _QUOTED.match(stripped)
    if quoted:
        return _ServerDefault("literal", quoted.group(1).replace("''", "'"), label)
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return _ServerDefault("literal", lowered == "true", label)
    if _INTEGER.match(stripped):
        return _ServerDefault("literal", int(stripped), label)
    if _NUMBER.match(stripped):
        return _ServerDefault("literal", Decimal(stripped), label)
    if _NOW.match(stripped):
        return _ServerDefault("now", label=label)
    if _EMPTY_ARRAY.match(stripped):
        return _ServerDefault("literal", [], label)
    return _ServerDefault("sql", stripped, label)


def _python_default(column: Column[Any]) -> tuple[str, Any, str]:
    """``(kind, value, label)`` of the client-side default: none | scalar | callable | sql | sequence."""
    default = column.default
    if default is None:
        return "none", None, "none"
    if isinstance(default, (Sequence, Identity)):
        return "sequence", None, f"{type(default).__name__}"
    if getattr(default, "is_scalar", False):
        value = default.arg  # type: ignore[attr-defined]
        return "scalar", value, _fmt(value)
    if getattr(default, "is_callable", False):
        return "callable", default.arg, f"{_callable_name(default)}()"  # type: ignore[attr-defined]
    return "sql", getattr(default, "arg", default), f"SQL {getattr(default, 'arg', default)}"


def _callable_name(default: Any) -> str:
    arg = default.arg
    return str(getattr(arg, "__name__", None) or type(arg).__name__)


def _call_default(fn: Callable[..., Any]) -> Any:
    """The value a callable Python default produces.

    SQLAlchemy wraps zero-argument callables as ``fn(context)``; calling with no context works
    for those. Defaults that need a real execution context cannot be judged here.
    """
    try:
        return fn(None)
    except Exception:  # noqa: BLE001 - any failure means "cannot tell", reported as a difference
        return _Missing.TOKEN


def _is_autoincrement(column: Column[Any]) -> bool:
    table = column.table
    return (
        column.identity is not None
        or isinstance(column.default, Sequence)
        or (isinstance(table, Table) and table.autoincrement_column is column)
    )


# --------------------------------------------------------------------------------------------
# schema.prisma, normalized


@dataclass
class _PColumn:
    field: str
    name: str
    ptype: str  # Prisma type name: String, Int, ..., or the enum's name
    enum_name: str | None  # database name of the enum, for enum fields
    is_list: bool
    nullable: bool
    primary_key: bool
    unique: bool
    default: _Expected
    updated_at: bool
    native_type: Any
    kind: str

    @property
    def meaning(self) -> str:
        """The type in the vocabulary both sides are translated to."""
        if self.kind == "enum":
            return f"enum {self.enum_name}"
        if self.kind == "scalar":
            return self.ptype
        return f"{self.kind} {self.ptype}"

    @property
    def expected_sa(self) -> str:
        if self.is_list and self.kind == "scalar" and self.ptype == "String":
            return "StringList"
        if self.kind == "enum":
            base = f"Enum(name={self.enum_name!r})"
        else:
            base = _EXPECTED_SA_TYPE.get(self.ptype, "no known SQLAlchemy type")
        return f"ARRAY({base})" if self.is_list else base


@dataclass
class _PIndex:
    columns: tuple[str, ...]
    name: str
    unsupported: list[str] = field(default_factory=list)


@dataclass
class _PForeignKey:
    columns: tuple[str, ...]
    target_table: str
    target_columns: tuple[str, ...]
    ondelete: str
    onupdate: str
    name: str
    relation: str


@dataclass
class _PTable:
    model: str
    name: str
    columns: dict[str, _PColumn]
    primary_key: _PIndex | None
    uniques: list[_PIndex]
    indexes: list[_PIndex]
    foreign_keys: list[_PForeignKey]
    problems: list[str]


@dataclass
class _PSchema:
    tables: dict[str, _PTable]
    enums: dict[str, list[str]]  # database enum name -> database values, in order
    problems: list[str]


def _truncated_name(prefix: str, suffix: str) -> str:
    """Prisma's default constraint name: prefix cut so the whole fits PostgreSQL's 63 bytes."""
    limit = _PG_MAX_IDENTIFIER - len(suffix)
    raw = prefix.encode("utf-8")
    if len(raw) >= limit:
        prefix = raw[:limit].decode("utf-8", errors="ignore")
    return prefix + suffix


def _constraint_name(table: str, columns: Iterable[str], suffix: str) -> str:
    return _truncated_name(f"{table}_{'_'.join(columns)}", suffix)


def _read_prisma(dmmf: dict[str, Any]) -> _PSchema:
    datamodel = dmmf["datamodel"]
    problems: list[str] = []

    enums: dict[str, list[str]] = {}
    enum_by_prisma_name: dict[str, tuple[str, dict[str, str]]] = {}
    for prisma_enum in datamodel.get("enums", []):
        db_name = prisma_enum.get("dbName") or prisma_enum["name"]
        values = {v["name"]: v.get("dbName") or v["name"] for v in prisma_enum["values"]}
        enums[db_name] = list(values.values())
        enum_by_prisma_name[prisma_enum["name"]] = (db_name, values)

    models = {model["name"]: model for model in datamodel.get("models", [])}
    table_of = {name: model.get("dbName") or name for name, model in models.items()}
    column_of = {
        (name, f["name"]): f.get("dbName") or f["name"]
        for name, model in models.items()
        for f in model["fields"]
        if f["kind"] != "object"
    }

    indexes_by_model: dict[str, list[dict[str, Any]]] = {}
    for index in datamodel.get("indexes", []):
        indexes_by_model.setdefault(index["model"], []).append(index)

    tables: dict[str, _PTable] = {}
    for model_name, model in models.items():
        table = table_of[model_name]
        table_problems: list[str] = []
        if model.get("schema"):
            table_problems.append(
                f"table {table}: model uses schema {model['schema']!r}; the checker ignores database schemas"
            )
        pk_index: _PIndex | None = None
        uniques: list[_PIndex] = []
        normal: list[_PIndex] = []
        for index in indexes_by_model.get(model_name, []):
            cols = tuple(column_of.get((model_name, f["name"]), f["name"]) for f in index["fields"])
            kind = index["type"]
            suffix = {"id": "_pkey", "unique": "_key"}.get(kind, "_idx")
            default_name = _truncated_name(table, suffix) if kind == "id" else _constraint_name(table, cols, suffix)
            entry = _PIndex(cols, index.get("dbName") or default_name, _index_extras(index))
            if kind == "id":
                pk_index = entry
            elif kind == "unique":
                uniques.append(entry)
            elif kind in ("normal", "fulltext"):
                if kind == "fulltext":
                    entry.unsupported.append("a fulltext index")
                normal.append(entry)
            else:
                table_problems.append(f"table {table}: index type {kind!r} on {cols} is not understood by the checker")
        pk_columns = set(pk_index.columns) if pk_index else set()
        single_uniques = {u.columns[0] for u in uniques if len(u.columns) == 1}

        columns: dict[str, _PColumn] = {}
        foreign_keys: list[_PForeignKey] = []
        for f in model["fields"]:
            if f["kind"] == "object":
                fk = _foreign_key(model_name, f, models, table_of, column_of)
                if fk is not None:
                    foreign_keys.append(fk)
                continue
            name = column_of[(model_name, f["name"])]
            enum_name, enum_values = enum_by_prisma_name.get(f["type"], (None, {})) if f["kind"] == "enum" else (None, {})
            columns[name] = _PColumn(
                field=f["name"],
                name=name,
                ptype=f["type"],
                enum_name=enum_name,
                is_list=bool(f["isList"]),
                nullable=not f["isRequired"],
                primary_key=bool(f.get("isId")) or name in pk_columns,
                unique=bool(f.get("isUnique")) or name in single_uniques,
                default=_expected_default(f, enum_values),
                updated_at=bool(f.get("isUpdatedAt")),
                native_type=f.get("nativeType"),
                kind=f["kind"],
            )
        tables[table] = _PTable(model_name, table, columns, pk_index, uniques, normal, foreign_keys, table_problems)

    problems.extend(_implicit_many_to_many(models, table_of))
    return _PSchema(tables, enums, problems)


def _index_extras(index: dict[str, Any]) -> list[str]:
    """Index options the checker does not compare; each becomes a reported difference."""
    extras: list[str] = []
    algorithm = index.get("algorithm")
    if algorithm and algorithm != "BTree":
        extras.append(f"type: {algorithm}")
    if index.get("clustered") is not None:
        extras.append(f"clustered: {index['clustered']}")
    if index.get("where"):
        extras.append("a where clause")
    for f in index["fields"]:
        if str(f.get("sortOrder", "asc")).lower() != "asc":
            extras.append(f"{f['name']}(sort: {f['sortOrder']})")
        if f.get("length") is not None:
            extras.append(f"{f['name']}(length: {f['length']})")
        if f.get("operatorClass"):
            extras.append(f"{f['name']}(ops: {f['operatorClass']})")
    return extras


def _expected_default(f: dict[str, Any], enum_values: dict[str, str]) -> _Expected:
    if not f.get("hasDefaultValue") or "default" not in f:
        return _Expected("none")
    default = f["default"]
    if isinstance(default, dict) and "name" in default:
        name = str(default["name"])
        args = default.get("args") or []
        if name == "now":
            return _Expected("now", label="@default(now())")
        if name in _CLIENT_GENERATORS:
            return _Expected("client", name, f"@default({name}()) (generated by the client)")
        if name == "autoincrement":
            return _Expected("autoincrement", label="@default(autoincrement())")
        if name == "dbgenerated":
            sql = str(args[0]) if args else None
            return _Expected("dbgenerated", sql, f"@default(dbgenerated({_fmt(sql) if sql else ''}))")
        return _Expected("unsupported", name, f"@default({name}(...))")
    value = _prisma_literal(default, f["type"], enum_values)
    # Enum values are written bare in schema.prisma: @default(PENDING), @default([A, B]).
    written = (
        (f"[{', '.join(map(str, default))}]" if isinstance(default, list) else str(default))
        if f["kind"] == "enum"
        else _fmt(default)
    )
    return _Expected("literal", value, f"@default({written})")


def _foreign_key(
    model_name: str,
    f: dict[str, Any],
    models: dict[str, dict[str, Any]],
    table_of: dict[str, str],
    column_of: dict[tuple[str, str], str],
) -> _PForeignKey | None:
    """The foreign key a relation field implies, or None on the side without ``fields:``."""
    from_fields: list[str] = f.get("relationFromFields") or []
    if not from_fields:
        return None
    target_model = f["type"]
    target_table = table_of.get(target_model, target_model)
    to_fields: list[str] = f.get("relationToFields") or []
    table = table_of[model_name]
    columns = tuple(column_of.get((model_name, name), name) for name in from_fields)
    # Prisma's "referential arity": required as soon as one referencing scalar is required.
    by_name = {x["name"]: x for x in models[model_name]["fields"]}
    required = any(by_name[name]["isRequired"] for name in from_fields if name in by_name) or bool(f["isRequired"])
    on_delete = f.get("relationOnDelete") or ("Restrict" if required else "SetNull")
    on_update = f.get("relationOnUpdate") or "Cascade"
    return _PForeignKey(
        columns=columns,
        target_table=target_table,
        target_columns=tuple(column_of.get((target_model, name), name) for name in to_fields),
        ondelete=_REFERENTIAL_ACTIONS.get(on_delete, on_delete),
        onupdate=_REFERENTIAL_ACTIONS.get(on_update, on_update),
        name=_constraint_name(table, columns, "_fkey"),
        relation=f"{model_name}.{f['name']}",
    )


def _implicit_many_to_many(models: dict[str, dict[str, Any]], table_of: dict[str, str]) -> list[str]:
    """Prisma creates a join table for these; the checker does not model it, so say so."""
    sides: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for model_name, model in models.items():
        for f in model["fields"]:
            if f["kind"] == "object":
                sides.setdefault(f.get("relationName") or "", []).append((model_name, f))
    problems = []
    for relation, fields in sorted(sides.items()):
        if fields and all(f["isList"] and not f.get("relationFromFields") for _, f in fields):
            ends = " <-> ".join(f"{model}.{f['name']}" for model, f in fields)
            problems.append(
                f"table _{relation}: implicit many-to-many relation {ends}; "
                "the checker does not model Prisma's join tables"
            )
    return problems


# --------------------------------------------------------------------------------------------
# SQLAlchemy, normalized


_PRISMA_MEANINGS: Final = frozenset(_EXPECTED_SA_TYPE)


def _sa_meaning(sa_type: TypeEngine[Any]) -> tuple[str, bool]:
    """``(meaning, is_list)`` of a SQLAlchemy type in Prisma's vocabulary.

    Types with no Prisma counterpart get a description that matches no Prisma type, so they
    are reported. Order matters: several SQLAlchemy types subclass others (Enum is a String,
    BigInteger an Integer, the project's types are TypeDecorators).
    """
    if isinstance(sa_type, StringList):
        return "String", True
    if isinstance(sa_type, UTCDateTime):
        return "DateTime", False
    if isinstance(sa_type, JSONValue):
        return "Json", False
    if isinstance(sa_type, SAEnum):
        if not sa_type.native_enum:
            return f"non-native Enum(name={sa_type.name!r}) (VARCHAR + CHECK)", False
        return f"enum {sa_type.name}", False
    if isinstance(sa_type, ARRAY):
        item, nested = _sa_meaning(sa_type.item_type)
        return (f"nested ARRAY of {item}", True) if nested else (item, True)
    if isinstance(sa_type, TypeDecorator):
        return f"{sa_type!r} (a TypeDecorator the checker does not know)", False
    if isinstance(sa_type, Boolean):
        return "Boolean", False
    if isinstance(sa_type, BigInteger):
        return "BigInt", False
    if isinstance(sa_type, SmallInteger):
        return "SmallInteger (no Prisma type)", False
    if isinstance(sa_type, Integer):
        return "Int", False
    if isinstance(sa_type, Float):
        return "Float", False
    if isinstance(sa_type, Numeric):
        return "Decimal", False
    if isinstance(sa_type, LargeBinary):
        return "Bytes", False
    if isinstance(sa_type, Text):
        return "String", False
    if isinstance(sa_type, String):
        return f"{sa_type!r} (VARCHAR, not Text)", False
    if isinstance(sa_type, DateTime):
        return f"{sa_type!r} (not UTCDateTime)", False
    if isinstance(sa_type, (JSON, postgresql.JSONB)):
        return f"{sa_type!r} (not JSONValue)", False
    return f"{sa_type!r} (no Prisma type)", False


def _sa_enums(sa_type: TypeEngine[Any]) -> Iterator[SAEnum]:
    if isinstance(sa_type, SAEnum):
        yield sa_type
    elif isinstance(sa_type, ARRAY):
        yield from _sa_enums(sa_type.item_type)


@dataclass
class _SAIndex:
    columns: tuple[str, ...]
    name: str
    unsupported: list[str] = field(default_factory=list)


def _name(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return "(unnamed)" if name is None else str(name)


def _sa_uniques(table: Table) -> list[_SAIndex]:
    out: list[_SAIndex] = []
    for constraint in sorted(table.constraints, key=_name):
        if isinstance(constraint, UniqueConstraint):
            out.append(_SAIndex(tuple(c.name for c in constraint.columns), _name(constraint)))
    for index in sorted(table.indexes, key=_name):
        if index.unique:
            out.append(_sa_index(index))
    return out


def _sa_indexes(table: Table) -> list[_SAIndex]:
    return [_sa_index(index) for index in sorted(table.indexes, key=_name) if not index.unique]


def _sa_index(index: Index) -> _SAIndex:
    unsupported = [f"{key}={value!r}" for key, value in index.dialect_kwargs.items()]
    names: list[str] = []
    for expression in index.expressions:
        if isinstance(expression, Column):
            names.append(expression.name)
        elif isinstance(expression, str):
            names.append(expression)
        else:
            names.append(str(expression))
            unsupported.append(f"expression {expression}")
    return _SAIndex(tuple(names), _name(index), unsupported)


@dataclass
class _SAForeignKey:
    columns: tuple[str, ...]
    target_table: str
    target_columns: tuple[str, ...]
    ondelete: str
    onupdate: str
    name: str


def _sa_foreign_keys(table: Table) -> list[_SAForeignKey]:
    out = []
    for fk in sorted(table.foreign_key_constraints, key=_name):
        targets = [_fk_target(element) for element in fk.elements]
        out.append(
            _SAForeignKey(
                columns=tuple(element.parent.name for element in fk.elements),
                target_table=targets[0][0] if targets else "?",
                target_columns=tuple(column for _, column in targets),
                # No clause means the database default, NO ACTION.
                ondelete=(fk.ondelete or "NO ACTION").upper(),
                onupdate=(fk.onupdate or "NO ACTION").upper(),
                name=_name(fk),
            )
        )
    return out


def _fk_target(element: Any) -> tuple[str, str]:
    try:
        column = element.column
        return column.table.name, column.name
    except (NoReferencedTableError, NoReferencedColumnError):
        # Target not in this MetaData: fall back to the spelled-out "table.column".
        table, _, column = element.target_fullname.rpartition(".")
        return table.rpartition(".")[2], column


# --------------------------------------------------------------------------------------------
# The comparison


def compare(dmmf: dict[str, Any], metadata: MetaData) -> list[str]:
    """Every difference between a DMMF (:func:`load_dmmf`) and SQLAlchemy ``metadata``.

    One readable line per difference, e.g. ``Match.endedBy: nullable in schema.prisma, NOT NULL
    in SQLAlchemy``. Lines about a column start with ``<table>.<column>``, about a table with
    ``table <name>``, about an enum with ``enum <name>``. An empty list means the two agree.
    """
    prisma = _read_prisma(dmmf)
    sa_tables = {table.name: table for table in metadata.tables.values()}
    out: list[str] = list(prisma.problems)

    for name, ptable in prisma.tables.items():
        if name not in sa_tables:
            out.append(f"table {name}: only in schema.prisma (model {ptable.model})")
    for name in sorted(sa_tables):
        if name not in prisma.tables:
            out.append(f"table {name}: only in SQLAlchemy")

    for name, ptable in prisma.tables.items():
        table = sa_tables.get(name)
        if table is None:
            continue
        out.extend(ptable.problems)
        out.extend(_compare_columns(ptable, table))
        out.extend(_compare_primary_key(ptable, table))
        out.extend(_compare_uniques(ptable, table))
        out.extend(_compare_indexes(ptable, table))
        out.extend(_compare_foreign_keys(ptable, table))

    out.extend(_compare_enums(prisma, sa_tables))
    return out


def _compare_columns(ptable: _PTable, table: Table) -> Iterator[str]:
    sa_columns = {column.name: column for column in table.columns}
    for name in ptable.columns:
        if name not in sa_columns:
            yield f"table {table.name}: column {name} only in schema.prisma"
    for name in sa_columns:
        if name not in ptable.columns:
            yield f"table {table.name}: column {name} only in SQLAlchemy"
    for name, pcol in ptable.columns.items():
        column = sa_columns.get(name)
        if column is not None:
            yield from _compare_column(f"{table.name}.{name}", pcol, column)


def _compare_column(where: str, pcol: _PColumn, column: Column[Any]) -> Iterator[str]:
    meaning, is_list = _sa_meaning(column.type)
    if meaning != pcol.meaning:
        # Spell out what the SQLAlchemy type means only when it means a Prisma type at all.
        sa_label = f"{column.type!r} (means {meaning})" if meaning in _PRISMA_MEANINGS or meaning.startswith("enum ") else meaning
        yield f"{where}: type {pcol.meaning} in schema.prisma (expects {pcol.expected_sa}), {sa_label} in SQLAlchemy"
    if is_list != pcol.is_list:
        yield (
            f"{where}: {'a list' if pcol.is_list else 'not a list'} in schema.prisma, "
            f"{'a list' if is_list else 'not a list'} in SQLAlchemy ({column.type!r})"
        )
    if pcol.native_type:
        yield f"{where}: native type @db.{_native_label(pcol.native_type)} in schema.prisma; the checker does not compare native types"
    if pcol.nullable != bool(column.nullable):
        yield (
            f"{where}: {'nullable' if pcol.nullable else 'NOT NULL'} in schema.prisma, "
            f"{'nullable' if column.nullable else 'NOT NULL'} in SQLAlchemy"
        )
    if pcol.primary_key != column.primary_key:
        yield (
            f"{where}: {'primary key' if pcol.primary_key else 'not primary key'} in schema.prisma, "
            f"{'primary key' if column.primary_key else 'not primary key'} in SQLAlchemy"
        )
    sa_unique = _is_single_unique(column)
    if pcol.unique != sa_unique:
        yield (
            f"{where}: {'unique' if pcol.unique else 'not unique'} in schema.prisma, "
            f"{'unique' if sa_unique else 'not unique'} in SQLAlchemy"
        )
    yield from _compare_default(where, pcol, column)


def _native_label(native: Any) -> str:
    if isinstance(native, SequenceABC) and not isinstance(native, str) and native:
        args = native[1] if len(native) > 1 else []
        return f"{native[0]}({', '.join(map(str, args))})" if args else str(native[0])
    return str(native)


def _is_single_unique(column: Column[Any]) -> bool:
    table = column.table
    if column.unique:
        return True
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and [c.name for c in constraint.columns] == [column.name]:
            return True
    return any(
        index.unique and [getattr(e, "name", e) for e in index.expressions] == [column.name]
        for index in table.indexes
    )


def _compare_default(where: str, pcol: _PColumn, column: Column[Any]) -> Iterator[str]:
    py_kind, py_value, py_label = _python_default(column)
    server = _read_server_default(column)
    autoincrement = _is_autoincrement(column)
    expected = pcol.default
    sa_label = f"Python default {py_label}, server default {server.label}" + (
        ", autoincrement" if autoincrement else ""
    )

    if pcol.updated_at and column.onupdate is None:
        yield f"{where}: @updatedAt in schema.prisma, no onupdate in SQLAlchemy"
    if not pcol.updated_at and column.onupdate is not None:
        yield f"{where}: no @updatedAt in schema.prisma, onupdate in SQLAlchemy"

    problem: str | None = None
    if expected.kind == "none":
        if pcol.updated_at:
            # Prisma's client sets @updatedAt on create and update; the database has no default.
            if py_kind != "callable":
                problem = "@updatedAt needs a callable Python default"
            elif server.kind != "none":
                problem = "@updatedAt has no server default"
        elif py_kind != "none" or server.kind != "none" or autoincrement:
            problem = "expected none"
    elif expected.kind == "client":
        if py_kind != "callable":
            problem = "expected a callable Python default"
        elif server.kind != "none" or autoincrement:
            problem = "expected no server default"
    elif expected.kind == "now":
        if server.kind != "now":
            problem = "expected server default CURRENT_TIMESTAMP"
        elif py_kind != "callable":
            problem = "expected a callable Python default as well"
    elif expected.kind == "literal":
        if server.kind != "literal" or not _same_value(pcol.ptype, expected.value, server.value):
            problem = f"expected server default {_fmt(expected.value)}"
        elif py_kind == "scalar" and not _same_value(pcol.ptype, expected.value, py_value):
            problem = "Python default differs"
        elif py_kind == "callable" and not _same_value(pcol.ptype, expected.value, _call_default(py_value)):
            problem = "Python default differs"
        elif py_kind in ("sql", "sequence"):
            problem = "Python default differs"
    elif expected.kind == "autoincrement":
        if not autoincrement or py_kind not in ("none", "sequence"):
            problem = "expected the table's autoincrement column"
    elif expected.kind == "dbgenerated":
        if expected.value is None:
            if server.kind not in ("none", "fetched"):
                problem = "expected no server default or FetchedValue()"
        elif not _same_sql(expected.value, column):
            problem = f"expected server default text({expected.value!r})"
        if problem is None and py_kind != "none":
            problem = "expected no Python default"
    else:
        problem = "default function not understood by the checker"

    if problem is not None:
        yield f"{where}: default {expected.label} in schema.prisma, {sa_label} in SQLAlchemy ({problem})"


def _same_sql(expected: str, column: Column[Any]) -> bool:
    default = column.server_default
    if not isinstance(default, DefaultClause):
        return False
    arg = default.arg
    actual = arg.text if isinstance(arg, TextClause) else str(arg)
    return " ".join(actual.split()) == " ".join(expected.split())


def _compare_primary_key(ptable: _PTable, table: Table) -> Iterator[str]:
    sa_columns = tuple(c.name for c in table.primary_key.columns)
    if ptable.primary_key is None:
        if sa_columns:
            yield f"table {table.name}: no primary key in schema.prisma, primary key ({', '.join(sa_columns)}) in SQLAlchemy"
        return
    expected = ptable.primary_key
    if not sa_columns:
        yield f"table {table.name}: primary key ({', '.join(expected.columns)}) in schema.prisma, none in SQLAlchemy"
        return
    if sa_columns != expected.columns:
        # Per-column lines cover membership; this catches the order of a composite key.
        yield (
            f"table {table.name}: primary key ({', '.join(expected.columns)}) in schema.prisma, "
            f"({', '.join(sa_columns)}) in SQLAlchemy"
        )
    sa_name = _name(table.primary_key)
    if sa_name != expected.name:
        yield f"table {table.name}: primary key named {expected.name} in schema.prisma, {sa_name} in SQLAlchemy"


def _match(
    expected: list[_PIndex], actual: list[_SAIndex]
) -> tuple[list[tuple[_PIndex, _SAIndex]], list[_PIndex], list[_SAIndex]]:
    """Pair indexes with the same columns (same name first); return pairs and leftovers."""
    left = list(actual)
    pairs: list[tuple[_PIndex, _SAIndex]] = []
    unmatched: list[_PIndex] = []
    for want in expected:
        candidates = [have for have in left if have.columns == want.columns]
        if not candidates:
            unmatched.append(want)
            continue
        chosen = next((have for have in candidates if have.name == want.name), candidates[0])
        left.remove(chosen)
        pairs.append((want, chosen))
    return pairs, unmatched, left


def _cols(columns: tuple[str, ...]) -> str:
    return f"({', '.join(columns)})"


def _compare_uniques(ptable: _PTable, table: Table) -> Iterator[str]:
    pairs, only_prisma, only_sa = _match(ptable.uniques, _sa_uniques(table))
    # A single column's uniqueness is already reported on the column's own line.
    for want in only_prisma:
        if len(want.columns) > 1:
            yield f"table {table.name}: unique {want.name} on {_cols(want.columns)} only in schema.prisma"
    for have in only_sa:
        if len(have.columns) > 1:
            yield f"table {table.name}: unique {have.name} on {_cols(have.columns)} only in SQLAlchemy"
    for want, have in pairs:
        yield from _compare_pair(table.name, "unique", want, have)


def _compare_indexes(ptable: _PTable, table: Table) -> Iterator[str]:
    pairs, only_prisma, only_sa = _match(ptable.indexes, _sa_indexes(table))
    for want in only_prisma:
        yield f"table {table.name}: index {want.name} on {_cols(want.columns)} only in schema.prisma"
    for have in only_sa:
        yield f"table {table.name}: index {have.name} on {_cols(have.columns)} only in SQLAlchemy"
    for want, have in pairs:
        yield from _compare_pair(table.name, "index", want, have)


def _compare_pair(table: str, what: str, want: _PIndex, have: _SAIndex) -> Iterator[str]:
    if want.name != have.name:
        yield f"table {table}: {what} on {_cols(want.columns)} named {want.name} in schema.prisma, {have.name} in SQLAlchemy"
    if want.unsupported:
        yield f"table {table}: {what} {want.name} uses {', '.join(want.unsupported)} in schema.prisma; the checker does not compare that"
    if have.unsupported:
        yield f"table {table}: {what} {have.name} uses {', '.join(have.unsupported)} in SQLAlchemy; the checker does not compare that"


def _compare_foreign_keys(ptable: _PTable, table: Table) -> Iterator[str]:
    remaining = _sa_foreign_keys(table)
    for want in ptable.foreign_keys:
        have = next((fk for fk in remaining if fk.columns == want.columns), None)
        label = f"foreign key {_cols(want.columns)}"
        if have is None:
            yield (
                f"table {table.name}: {label} -> {want.target_table}{_cols(want.target_columns)} "
                f"({want.relation}) only in schema.prisma"
            )
            continue
        remaining.remove(have)
        if (have.target_table, have.target_columns) != (want.target_table, want.target_columns):
            yield (
                f"table {table.name}: {label} references {want.target_table}{_cols(want.target_columns)} in schema.prisma, "
                f"{have.target_table}{_cols(have.target_columns)} in SQLAlchemy"
            )
        if have.ondelete != want.ondelete:
            yield f"table {table.name}: {label} ON DELETE {want.ondelete} in schema.prisma, {have.ondelete} in SQLAlchemy"
        if have.onupdate != want.onupdate:
            yield f"table {table.name}: {label} ON UPDATE {want.onupdate} in schema.prisma, {have.onupdate} in SQLAlchemy"
        if have.name != want.name:
            yield f"table {table.name}: {label} named {want.name} in schema.prisma, {have.name} in SQLAlchemy"
    for have in remaining:
        yield (
            f"table {table.name}: foreign key {_cols(have.columns)} -> {have.target_table}{_cols(have.target_columns)} "
            "only in SQLAlchemy"
        )


def _compare_enums(prisma: _PSchema, sa_tables: dict[str, Table]) -> Iterator[str]:
    # Every enum type SQLAlchemy would create, with the columns using it.
    used: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for table_name in sorted(sa_tables):
        for column in sa_tables[table_name].columns:
            for sa_enum in _sa_enums(column.type):
                name = sa_enum.name or "(unnamed)"
                used.setdefault(name, {}).setdefault(tuple(sa_enum.enums), []).append(f"{table_name}.{column.name}")

    for name in prisma.enums:
        if name not in used:
            yield f"enum {name}: only in schema.prisma (no SQLAlchemy column uses it)"
    for name in sorted(used):
        if name not in prisma.enums:
            columns = sorted(c for cols in used[name].values() for c in cols)
            yield f"enum {name}: only in SQLAlchemy (used by {', '.join(columns)})"

    for name, expected_values in prisma.enums.items():
        for values, columns in used.get(name, {}).items():
            if list(values) == expected_values:
                continue
            detail = "same values in another order" if sorted(values) == sorted(expected_values) else ""
            missing = [v for v in expected_values if v not in values]
            extra = [v for v in values if v not in expected_values]
            if missing:
                detail += f"only in schema.prisma: {', '.join(missing)}"
            if extra:
                detail += ("; " if missing else "") + f"only in SQLAlchemy: {', '.join(extra)}"
            yield (
                f"enum {name}: values [{', '.join(expected_values)}] in schema.prisma, "
                f"[{', '.join(values)}] in SQLAlchemy ({', '.join(columns)}): {detail}"
            )
