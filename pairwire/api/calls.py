"""`/api/session/*` and `/api/match/*`: the same service the Socket.IO events use."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from matching.clock import iso
from matching.errors import NotFound
from matching.policy import Mode
from matching.profile import Topics
from matching.store import sessions
from matching.store.models import UserSession

from .openapi import operation
from .http import identity, json_response, parse_body, parse_query
from .store import CALLS, reading

SessionId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSession(_Body):
    mode: Mode | None = None


class EndSession(_Body):
    sessionId: SessionId


class History(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000)


class JoinQueue(_Body):
    mode: Mode
    sessionId: SessionId | None = None
    topics: Topics | None = None


class LeaveQueue(_Body):
    sessionId: SessionId | None = None


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sessionId: SessionId | None = None


def session_view(row: UserSession) -> dict[str, Any]:
    """A session as the API shows it."""
    return {
        "id": row.id,
        "sessionId": row.session_id,
        "startedAt": iso(row.started_at),
        "endedAt": iso(row.ended_at),
        "isActive": row.is_active,
        "matchedUserIds": list(row.matched_user_ids),
        "matchCount": len(row.matched_user_ids),
    }


@operation("Start a new matching session", body=StartSession, tag="sessions")
async def start_session(request: web.Request) -> web.Response:
    """Start a new session (the active one, if any, ends): everyone can be met again."""
    who = identity(request)
    await parse_body(request, StartSession)
    row = await request.app[CALLS].start_session(who)
    return json_response({"success": True, "sessionId": row.session_id, "session": session_view(row)})


@operation("End the active session", body=EndSession, errors=("not_found",), tag="sessions")
async def end_session(request: web.Request) -> web.Response:
    """End the caller's active session `sessionId`."""
    who = identity(request)
    body = await parse_body(request, EndSession)
    if not await request.app[CALLS].end_session(who, body.sessionId):
        raise NotFound(f"no active session {body.sessionId!r} of yours")
    return json_response({"success": True})


@operation("The active session, or null", tag="sessions")
async def current_session(request: web.Request) -> web.Response:
    """The caller's active session, or null."""
    who = identity(request)
    async with reading(request) as s:
        row = await sessions.active_session(s, who.user_id)
    return json_response({"session": None if row is None else session_view(row)})


@operation("Past and present sessions, newest first", query=History, tag="sessions")
async def session_history(request: web.Request) -> web.Response:
    """The caller's sessions, newest first, with paging."""
    who = identity(request)
    query = parse_query(request, History)
    async with reading(request) as s:
        rows, total = await sessions.history(s, who.user_id, limit=query.limit, offset=query.offset)
    return json_response({"sessions": [session_view(r) for r in rows], "total": total})


@operation("Wait for a partner (match:found comes over Socket.IO)", body=JoinQueue, errors=("conflict", "not_found"), tag="queue")
async def join_queue(request: web.Request) -> web.Response:
    """Wait for a partner; `match:found` arrives over Socket.IO."""
    who = identity(request)
    body = await parse_body(request, JoinQueue)
    answer = await request.app[CALLS].join_queue(who, body.mode, body.topics, body.sessionId)
    return json_response({"success": True, **answer})


@operation("Stop waiting", body=LeaveQueue, errors=("conflict",), tag="queue")
async def leave_queue(request: web.Request) -> web.Response:
    """Stop waiting."""
    who = identity(request)
    await parse_body(request, LeaveQueue)
    await request.app[CALLS].leave_queue(who)
    return json_response({"success": True})


@operation("Queue position and open match", query=StatusQuery, tag="queue")
async def queue_status(request: web.Request) -> web.Response:
    """Whether the caller waits, where, and their open match."""
    who = identity(request)
    parse_query(request, StatusQuery)
    return json_response(await request.app[CALLS].queue_status(who))


def add_routes(app: web.Application) -> None:
    """Register the session and queue routes."""
    app.router.add_post("/api/session/start", start_session)
    app.router.add_post("/api/session/end", end_session)
    app.router.add_get("/api/session/current", current_session)
    app.router.add_get("/api/session/history", session_history)
    app.router.add_post("/api/match/join", join_queue)
    app.router.add_post("/api/match/leave", leave_queue)
    app.router.add_get("/api/match/status", queue_status)
