"""`/api/activity/*`: report one's status, see who is online now, and (moderators) who was when."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from matching.clock import iso
from matching.errors import Invalid
from matching.identity import Role
from matching.store import stats, users
from matching.store.models import ActivityStatus, CallMode
from matching.store.types import utcnow

from .http import identity, json_response, parse_body, parse_query
from .openapi import operation
from .store import CALLS, SESSIONS, reading

HEARTBEAT_SECONDS = 30
# A user counts as online while their latest row was seen within two heartbeats.
FRESH_SECONDS = 2 * HEARTBEAT_SECONDS

# An ISO 8601 time with a timezone (naive times and anything else are `invalid`).
IsoTime = Annotated[datetime, BeforeValidator(stats.parse_time)]
Bucket = Annotated[int, Field(ge=stats.MIN_BUCKET_SECONDS, le=stats.MAX_BUCKET_SECONDS)]


class ActivityUpdate(BaseModel):
    """Body of `POST /api/activity/update`."""

    model_config = ConfigDict(extra="forbid")
    status: ActivityStatus
    mode: CallMode | None = None


class NoQuery(BaseModel):
    """A query string that must be empty."""

    model_config = ConfigDict(extra="forbid")


class HistoryQuery(BaseModel):
    """Query of `GET /api/activity/history`."""

    model_config = ConfigDict(extra="forbid")
    startTime: IsoTime | None = None
    endTime: IsoTime | None = None
    bucket: Bucket = stats.DEFAULT_BUCKET_SECONDS


@operation("Report your activity status", body=ActivityUpdate, tag="activity")
async def update(request: web.Request) -> web.Response:
    """Record a status change of the caller (the same status again only extends `lastSeen`)."""
    who = identity(request)
    body = await parse_body(request, ActivityUpdate)
    if body.mode is not None and body.status not in stats.BUSY:
        raise Invalid("mode: applies only to SEARCHING and IN_CALL")
    now = utcnow()
    async with request.app[SESSIONS].begin() as s:
        await users.ensure_user(s, user_id=who.user_id, role=who.role, display_name=who.display_name, now=now)
    calls = request.app[CALLS]
    await calls.activity.record(who.user_id, body.status, now, body.mode)
    await calls.writer.flush()
    return json_response({"success": True})


@operation("How many people are online, searching and in a call now", query=NoQuery, tag="activity")
async def current_stats(request: web.Request) -> web.Response:
    """How many people are online now, searching, in a call, and in which mode."""
    identity(request)
    parse_query(request, NoQuery)
    fresh_since = utcnow() - timedelta(seconds=FRESH_SECONDS)
    async with reading(request) as s:
        now = await stats.activity_now(s, fresh_since=fresh_since)
    return json_response(
        {
            "totalOnline": now.online,
            "searching": now.searching,
            "inCall": now.in_call,
            "breakdown": {"video": now.video, "text": now.text},
        }
    )


def point_view(point: stats.ActivityPoint) -> dict[str, Any]:
    """One instant of the timeline as the API shows it."""
    return {
        "timestamp": iso(point.at),
        "onlineCount": point.online,
        "searchingCount": point.searching,
        "inCallCount": point.in_call,
    }


@operation("Moderators: people online, searching and in a call over time", query=HistoryQuery,
           errors=("forbidden",), tag="activity")
async def history(request: web.Request) -> web.Response:
    """Moderators: users online, searching and in a call at the start of each bucket of the range."""
    who = identity(request)
    who.require(Role.MODERATOR)
    query = parse_query(request, HistoryQuery)
    span = stats.window(query.startTime, query.endTime, now=utcnow(), step=query.bucket)
    async with reading(request) as s:
        points = await stats.activity_timeline(s, span)
    return json_response(
        {
            "timeline": [point_view(p) for p in points],
            "timeRange": {"start": iso(span.start), "end": iso(span.end)},
            "bucket": span.step,
        }
    )


def add_routes(app: web.Application) -> None:
    """Register the activity routes."""
    app.router.add_post("/api/activity/update", update)
    app.router.add_get("/api/activity/stats", current_stats)
    app.router.add_get("/api/activity/history", history)
