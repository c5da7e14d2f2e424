"""`/api/flags` and `/api/blocks`: immediate-save flags, their review, and blocks."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from matching.clock import iso
from matching.identity import Role
from matching.moderation import ModerationService
from matching.store import flags as flag_store
from matching.store.models import Block, Flag, FlagAudit, FlagCategory, FlagStatus

from .openapi import operation
from .http import identity, json_response, parse_body, parse_query
from .store import SESSIONS

MODERATION: web.AppKey[ModerationService] = web.AppKey("moderation", ModerationService)

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RaiseFlag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flaggedUserId: Id
    matchId: Id | None = None
    reason: str = ""
    category: FlagCategory | None = None
    endCall: StrictBool = False


class UpdateFlag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None
    category: FlagCategory | None = None
    status: FlagStatus | None = None
    adminNotes: str | None = None


class FlagQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    userId: Id | None = None
    matchId: Id | None = None
    status: FlagStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


class BlockUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    userId: Id


def flag_view(flag: Flag, by_name: str | None = None, against_name: str | None = None) -> dict[str, Any]:
    """A flag as the API shows it (the reason is plain text; clients must never render it as HTML)."""
    view: dict[str, Any] = {
        "id": flag.id,
        "flaggedById": flag.flagged_by_id,
        "flaggedUserId": flag.flagged_user_id,
        "matchId": flag.match_id,
        "reason": flag.reason,
        "category": flag.category.value if flag.category else None,
        "flaggedAt": iso(flag.flagged_at),
        "status": flag.status.value,
        "reviewedAt": iso(flag.reviewed_at),
        "reviewedBy": flag.reviewed_by,
        "adminNotes": flag.admin_notes,
    }
    if by_name is not None:
        view["flaggedBy"] = {"id": flag.flagged_by_id, "name": by_name}
    if against_name is not None:
        view["flaggedUser"] = {"id": flag.flagged_user_id, "name": against_name}
    return view


def audit_view(entry: FlagAudit) -> dict[str, Any]:
    """One entry of a flag's audit trail."""
    return {"actorId": entry.actor_id, "action": entry.action, "changes": entry.changes, "at": iso(entry.created_at)}


def block_view(block: Block) -> dict[str, Any]:
    """A block as the API shows it."""
    return {"id": block.id, "blockerId": block.blocker_id, "blockedId": block.blocked_id,
            "createdAt": iso(block.created_at)}


@operation("Flag your partner (saved at once)", body=RaiseFlag, success=201, errors=("forbidden", "not_found", "rate_limited"), tag="flags")
async def raise_flag(request: web.Request) -> web.Response:
    """Save a flag now; the reason may follow with PATCH."""
    who = identity(request)
    body = await parse_body(request, RaiseFlag)
    flag = await request.app[MODERATION].raise_flag(
        who, flagged_user_id=body.flaggedUserId, match_id=body.matchId, reason=body.reason,
        category=body.category, end_call=body.endCall,
    )
    return json_response({"success": True, "flag": flag_view(flag)}, status=201)


@operation("Add the reason (flagger) or review (moderator)", body=UpdateFlag, errors=("forbidden", "not_found"), tag="flags")
async def update_flag(request: web.Request) -> web.Response:
    """The flagger's reason and category, or a moderator's review."""
    who = identity(request)
    body = await parse_body(request, UpdateFlag)
    flag = await request.app[MODERATION].update_flag(
        who, request.match_info["flagId"], reason=body.reason, category=body.category, status=body.status,
        admin_notes=body.adminNotes,
    )
    return json_response({"success": True, "flag": flag_view(flag)})


@operation("One flag with its audit trail", errors=("not_found",), tag="flags")
async def get_flag(request: web.Request) -> web.Response:
    """One flag with its audit trail."""
    who = identity(request)
    flag, trail, names = await request.app[MODERATION].get_flag(who, request.match_info["flagId"])
    view = flag_view(flag, names[flag.flagged_by_id], names[flag.flagged_user_id])
    return json_response({"flag": view, "audit": [audit_view(e) for e in trail]})


@operation("The moderators' queue of flags", query=FlagQuery, errors=("forbidden",), tag="flags")
async def list_flags(request: web.Request) -> web.Response:
    """The moderators' queue."""
    who = identity(request)
    who.require(Role.MODERATOR)
    query = parse_query(request, FlagQuery)
    async with request.app[SESSIONS]() as s:
        rows, total = await flag_store.list_flags(
            s, user_id=query.userId, match_id=query.matchId, status=query.status, limit=query.limit,
            offset=query.offset,
        )
    return json_response({"flags": [flag_view(f, by, against) for f, by, against in rows], "total": total})


@operation("Block a user", body=BlockUser, success=201, extra_success=(200,), errors=("not_found",), tag="blocks")
async def add_block(request: web.Request) -> web.Response:
    """Block a user (blocking again is harmless)."""
    who = identity(request)
    body = await parse_body(request, BlockUser)
    block, created = await request.app[MODERATION].block(who, body.userId)
    return json_response({"success": True, "block": block_view(block)}, status=201 if created else 200)


@operation("Lift a block", errors=("not_found",), tag="blocks")
async def remove_block(request: web.Request) -> web.Response:
    """Lift a block."""
    who = identity(request)
    await request.app[MODERATION].unblock(who, request.match_info["userId"])
    return json_response({"success": True})


@operation("Whom you have blocked", tag="blocks")
async def list_blocks(request: web.Request) -> web.Response:
    """Whom the caller has blocked."""
    who = identity(request)
    return json_response({"blocks": [block_view(b) for b in await request.app[MODERATION].blocks(who)]})


def add_routes(app: web.Application, moderation: ModerationService) -> None:
    """Register the flag and block routes."""
    app[MODERATION] = moderation
    app.router.add_post("/api/flags", raise_flag)
    app.router.add_get("/api/flags", list_flags)
    app.router.add_get("/api/flags/{flagId}", get_flag)
    app.router.add_patch("/api/flags/{flagId}", update_flag)
    app.router.add_post("/api/blocks", add_block)
    app.router.add_get("/api/blocks", list_blocks)
    app.router.add_delete("/api/blocks/{userId}", remove_block)
