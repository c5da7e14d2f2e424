"""`/api/matches*`: match history (who met whom, when, for how long) and statistics over it.

A plain user sees the matches they were in; moderators and admins see every match.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from matching.clock import iso
from matching.errors import Forbidden, Invalid, NotFound
from matching.identity import Identity, Role
from matching.store import chat, stats
from matching.store.models import MatchStatus
from matching.store.types import utcnow

from .http import identity, json_response, parse_query
from .openapi import operation
from .store import SESSIONS, reading


def _printable(value: str) -> str:
    # A NUL (or any control character) cannot even be sent to PostgreSQL: refuse it as input.
    if not value.isprintable():
        raise ValueError("must not contain control characters")
    return value


Id = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_printable)]
# An ISO 8601 time with a timezone (naive times and anything else are `invalid`).
IsoTime = Annotated[datetime, BeforeValidator(stats.parse_time)]
Bucket = Annotated[int, Field(ge=stats.MIN_BUCKET_SECONDS, le=stats.MAX_BUCKET_SECONDS)]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListQuery(_Query):
    """Query of `GET /api/matches`."""

    userId: Id | None = None
    sessionId: Id | None = None
    startTime: IsoTime | None = None
    endTime: IsoTime | None = None
    activeAt: IsoTime | None = None
    status: MatchStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class StatsQuery(_Query):
    """Query of `GET /api/matches/stats`."""

    startTime: IsoTime | None = None
    endTime: IsoTime | None = None
    bucket: Bucket = stats.DEFAULT_BUCKET_SECONDS


class NoQuery(_Query):
    """A query string that must be empty."""


def _is_moderator(who: Identity) -> bool:
    return who.role.at_least(Role.MODERATOR)


def match_view(row: stats.MatchRow) -> dict[str, Any]:
    """A match as the API shows it."""
    m = row.match
    return {
        "id": m.id,
        "user1Id": m.user1_id,
        "user2Id": m.user2_id,
        "user1": {"id": m.user1_id, "name": row.user1_name},
        "user2": {"id": m.user2_id, "name": row.user2_name},
        "mode": m.mode.value,
        "status": m.status.value,
        "matchedAt": iso(m.matched_at),
        "startedAt": iso(m.started_at),
        "endedAt": iso(m.ended_at),
        "duration": m.duration,
        "matchedTopics": list(m.matched_topics),
        "user1JoinedAt": iso(m.user1_joined_at),
        "user2JoinedAt": iso(m.user2_joined_at),
        "endedBy": m.ended_by,
        "user1SessionId": m.user1_session_id,
        "user2SessionId": m.user2_session_id,
    }


@operation("Match history, newest first (your own; moderators: anyone's)", query=ListQuery,
           errors=("forbidden",), tag="matches")
async def list_matches(request: web.Request) -> web.Response:
    """Matches newest first, filtered by person, session, matchedAt range, status or a moment of activity."""
    who = identity(request)
    query = parse_query(request, ListQuery)
    if query.startTime is not None and query.endTime is not None and query.startTime > query.endTime:
        raise Invalid("startTime is after endTime")
    user_id = query.userId
    if not _is_moderator(who):
        if user_id is not None and user_id != who.user_id:
            raise Forbidden("only moderators may list another user's matches")
        user_id = who.user_id
    async with reading(request) as s:
        page = await stats.list_matches(
            s,
            user_id=user_id,
            session_id=query.sessionId,
            start=query.startTime,
            end=query.endTime,
            status=query.status,
            active_at=query.activeAt,
            limit=query.limit,
            offset=query.offset,
        )
    start = query.startTime or page.first
    end = query.endTime or page.last
    return json_response(
        {
            "matches": [match_view(r) for r in page.rows],
            "total": page.total,
            "timeRange": {"start": iso(start), "end": iso(end)},
        }
    )


@operation("One match you were in (moderators: any)", query=NoQuery, errors=("not_found",), tag="matches")
async def get_match(request: web.Request) -> web.Response:
    """One match: for the two people in it and for moderators (anyone else gets `not_found`)."""
    row, _ = await _visible_match(request)
    return json_response({"match": match_view(row)})


@operation("Match statistics over a time range (your own; moderators: all)", query=StatsQuery, tag="matches")
async def match_stats(request: web.Request) -> web.Response:
    """Totals, mean duration, modes and matches per bucket over the matches found in the range."""
    who = identity(request)
    query = parse_query(request, StatsQuery)
    span = stats.window(query.startTime, query.endTime, now=utcnow(), step=query.bucket)
    async with reading(request) as s:
        result = await stats.match_stats(s, span, user_id=None if _is_moderator(who) else who.user_id)
    return json_response(
        {
            "totalMatches": result.total,
            "activeMatches": result.open,
            "endedMatches": result.closed,
            "averageDuration": result.average_duration,
            "matchesByMode": result.by_mode,
            "matchesByTimeRange": [{"time": iso(t), "count": n} for t, n in result.by_bucket],
            "timeRange": {"start": iso(span.start), "end": iso(span.end)},
            "bucket": span.step,
        }
    )


@operation("A match's chat transcript (its two people and moderators)", query=NoQuery, errors=("not_found",),
           tag="matches")
async def match_messages(request: web.Request) -> web.Response:
    """The chat of one match, oldest first; the text is plain text, never to be rendered as HTML."""
    _, messages = await _visible_match(request, with_messages=True)
    return json_response({"messages": [
        {"id": m.id, "from": m.sender_id, "text": m.text, "sentAt": iso(m.sent_at)} for m in messages
    ]})


async def _visible_match(request: web.Request, *, with_messages: bool = False) -> tuple[Any, list[Any]]:
    """The match of the URL and (optionally) its chat, if the caller may see it; else `not_found`."""
    who = identity(request)
    parse_query(request, NoQuery)
    match_id = request.match_info["matchId"]
    row, messages = None, []
    if len(match_id) <= 64 and match_id.isprintable():
        async with request.app[SESSIONS]() as s:
            row = await stats.get_match(s, match_id)
            if row is not None and with_messages:
                messages = await chat.transcript(s, match_id)
    if row is None or not (_is_moderator(who) or who.user_id in (row.match.user1_id, row.match.user2_id)):
        raise NotFound(f"no match {match_id!r}")
    return row, messages


def add_routes(app: web.Application) -> None:
    """Register the match history routes (`stats` before `{matchId}`, which would swallow it)."""
    app.router.add_get("/api/matches", list_matches)
    app.router.add_get("/api/matches/stats", match_stats)
    app.router.add_get("/api/matches/{matchId}", get_match)
    app.router.add_get("/api/matches/{matchId}/messages", match_messages)
