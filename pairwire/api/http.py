"""What every REST route shares: the error shape, body and query validation, the caller's identity."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from matching.errors import STATUS_BY_CODE, Invalid, PairwireError
from matching.identity import Identity

from ..metrics import Metrics
from ..tokens import TokenService, bearer_token

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger("pairwire.http")

TOKENS: web.AppKey[TokenService] = web.AppKey("tokens", TokenService)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity", Identity)
CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer; times and enums are already strings in `data`."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(error: PairwireError) -> web.Response:
    """The contract's `{"error": {"code", "message"}}` with the matching status."""
    body = {"error": error.to_error(), **error.extra}
    response = json_response(body, status=error.status)
    if "retryAfter" in error.extra:
        response.headers["Retry-After"] = str(error.extra["retryAfter"])
    return response


def describe_validation(exc: ValidationError) -> str:
    """Pydantic's report as one readable line: `field: problem; other: problem`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body validated as `model`, or `invalid` saying what is wrong."""
    raw = await request.read()
    if not raw:
        data: Any = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Invalid("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Invalid("the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe_validation(exc)) from None


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string validated as `model`, or `invalid`."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise Invalid(describe_validation(exc)) from None


def identity(request: web.Request) -> Identity:
    """The verified caller, or `unauthorized`."""
    cached = request.get(IDENTITY)
    if cached is None:
        tokens = request.app[TOKENS]
        cached = tokens.verify(bearer_token(request.headers.get("Authorization")))
        request[IDENTITY] = cached
    return cached


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id (the caller's X-Request-Id if sane), log one line, count it."""
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await _answer(request, handler)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        metrics = request.app[METRICS]
        metrics.http_requests.labels(request.method, route, str(status)).inc()
        metrics.http_latency.labels(request.method, route).observe(elapsed)
        log.info("http", method=request.method, path=request.path, status=status, ms=round(elapsed * 1000, 2))
        structlog.contextvars.unbind_contextvars("request_id")


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Every refusal leaves in the contract's shape, whoever raised it.
    try:
        return await handler(request)
    except PairwireError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = CODE_BY_STATUS.get(exc.status) or ("invalid" if exc.status < 500 else "unavailable")
        response = json_response({"error": {"code": code, "message": _http_message(exc)}}, status=exc.status)
        if exc.status == 405:
            response.headers["Allow"] = exc.headers.get("Allow", "")
        return response
    except Exception:
        log.exception("unhandled error")
        return json_response({"error": {"code": "unavailable", "message": "internal error"}}, status=500)


def _http_message(exc: web.HTTPException) -> str:
    if exc.status == 413:
        return "the request body is too large"
    if exc.status == 404:
        return "no such resource"
    if exc.status == 405:
        return "method not allowed on this resource"
    return exc.reason
