"""OpenAPI 3 document generated from the routes themselves.

Each handler is marked with `@operation(...)` naming its body and query models (the same
pydantic models that validate requests), so the document cannot describe a request the code
does not take. `build_document` walks the application's router; a route without a mark is a
test failure (tests/pairwire/api/test_openapi.py), so no endpoint goes undocumented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from matching.errors import STATUS_BY_CODE

from .http import json_response

H = TypeVar("H", bound=Callable[..., Any])

ATTRIBUTE = "__pairwire_operation__"
REF_PREFIX = "#/components/schemas/"


@dataclass(frozen=True)
class Operation:
    """What the document says about one handler."""

    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: bool = True
    success: int = 200
    errors: tuple[str, ...] = ()
    tag: str = "api"
    content_type: str = "application/json"
    extra_success: tuple[int, ...] = field(default_factory=tuple)


def operation(summary: str, **kw: Any) -> Callable[[H], H]:
    """Mark a handler with its OpenAPI description."""

    def mark(handler: H) -> H:
        setattr(handler, ATTRIBUTE, Operation(summary, **kw))
        return handler

    return mark


def described(handler: Any) -> Operation | None:
    """The mark of a handler, if any."""
    return getattr(handler, ATTRIBUTE, None)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string", "enum": list(STATUS_BY_CODE)}, "message": {"type": "string"}},
        },
        "retryAfter": {"type": "integer"},
        "matchId": {"type": "string"},
    },
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": REF_PREFIX + model.__name__}


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF_PREFIX + "{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def build_document(app: web.Application, *, title: str = "Pairwire", version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every marked route of `app`."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for route in app.router.routes():
        op = described(route.handler)
        if op is None or route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
            for name in re.findall(r"{(\w+)}", path)
        ]
        if op.query is not None:
            params += _query_parameters(op.query, components)
        responses: dict[str, Any] = {}
        for status in (op.success, *op.extra_success):
            responses[str(status)] = {"description": "success", "content": {op.content_type: {"schema": {}}}}
        codes = ["invalid", *op.errors] + (["unauthorized"] if op.auth else [])
        if op.body is not None:
            codes.append("too_large")
        for code in dict.fromkeys(codes):
            responses[str(STATUS_BY_CODE[code])] = {
                "description": code,
                "content": {"application/json": {"schema": {"$ref": REF_PREFIX + "Error"}}},
            }
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{route.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
            "tags": [op.tag],
            "parameters": params,
            "responses": responses,
        }
        if op.auth:
            entry["security"] = [{"bearer": []}]
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema(op.body, components)}}}
        paths.setdefault(path, {})[route.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Pairwire's REST API. Errors: {\"error\": {\"code\", \"message\"}}."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)


@operation("This document", auth=False, tag="operations")
async def openapi_json(request: web.Request) -> web.Response:
    """The document, built on first request (the router is complete by then) and kept."""
    cache = request.app[DOCUMENT]
    if not cache:
        cache.update(build_document(request.app))
    return json_response(cache)


def add_routes(app: web.Application) -> None:
    """Serve the document at /api/openapi.json."""
    app[DOCUMENT] = {}
    app.router.add_get("/api/openapi.json", openapi_json)
