"""Flags and blocks: saved at once, kept with an audit trail, applied to matching immediately.

A flag is stored in its own transaction before anything else happens (ending the call,
updating the queue), so a flag the client was told about is never lost to a later failure.
Thresholds, bans and appeals (the roadmap's deeper moderation) grow from this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .calls import CallService
from .clock import Clock
from .errors import Conflict, Forbidden, Invalid, NotFound, RateLimited
from .identity import Identity, Role
from .store import flags, matches, users
from .store.models import Block, Flag, FlagAudit, FlagCategory, FlagStatus

log = structlog.get_logger("pairwire.moderation")

REVIEW_STATUSES = frozenset({FlagStatus.REVIEWED, FlagStatus.RESOLVED, FlagStatus.DISMISSED})


@dataclass(frozen=True)
class ModerationSettings:
    """Limits on flags."""

    flags_per_hour: int = 5
    min_reason_chars: int = 10
    max_reason_chars: int = 2000
    max_notes_chars: int = 5000


class ModerationService:
    """Raising, completing and reviewing flags; blocking."""

    def __init__(
        self, *, db: async_sessionmaker[AsyncSession], clock: Clock, calls: CallService,
        settings: ModerationSettings | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._calls = calls
        self.settings = settings or ModerationSettings()

    async def raise_flag(
        self, who: Identity, *, flagged_user_id: str, match_id: str | None, reason: str = "",
        category: FlagCategory | None = None, end_call: bool = False,
    ) -> Flag:
        """Save a flag against a partner now; optionally end the call afterwards."""
        now = self._clock.now()
        if flagged_user_id == who.user_id:
            raise Invalid("you cannot flag yourself")
        if len(reason) > self.settings.max_reason_chars:
            raise Invalid(f"the reason is at most {self.settings.max_reason_chars} characters")
        open_match = False
        async with self._db.begin() as s:
            await users.ensure_user(s, user_id=who.user_id, role=who.role, display_name=who.display_name, now=now)
            if await users.get_user(s, flagged_user_id) is None:
                raise NotFound(f"no user {flagged_user_id!r}")
            if match_id is not None:
                match = await matches.load(s, match_id)
                if match is None or not match.has(who.user_id):
                    raise NotFound(f"no match {match_id!r} of yours")
                if match.partner_of(who.user_id) != flagged_user_id:
                    raise Invalid("you can only flag your partner in that match")
                open_match = match.is_open
            elif not await flags.were_matched(s, who.user_id, flagged_user_id):
                raise Forbidden("you can only flag someone you were matched with")
            recent = await flags.flags_since(s, who.user_id, now - timedelta(hours=1))
            if len(recent) >= self.settings.flags_per_hour:
                retry = max(1, math.ceil((recent[0] + timedelta(hours=1) - now).total_seconds()))
                raise RateLimited(
                    f"at most {self.settings.flags_per_hour} flags an hour; try again in {retry} s", retry_after=retry
                )
            flag = await flags.add_flag(
                s, flagged_by=who.user_id, flagged_user=flagged_user_id, match_id=match_id, reason=reason,
                category=category, now=now,
            )
        log.info("flag saved", flag_id=flag.id, match_id=match_id)
        # The flag is committed; what follows may fail without losing it.
        try:
            await self._calls.refresh_exclusions([who.user_id, flagged_user_id])
            if end_call and match_id is not None and open_match:
                await self._calls.end_match(who, match_id)
        except Conflict:
            pass  # the call ended meanwhile
        except Exception:
            log.exception("after saving a flag", flag_id=flag.id)
        return flag

    async def update_flag(
        self, who: Identity, flag_id: str, *, reason: str | None = None, category: FlagCategory | None = None,
        status: FlagStatus | None = None, admin_notes: str | None = None,
    ) -> Flag:
        """The flagger adds the reason and category; a moderator reviews. Every change is audited."""
        now = self._clock.now()
        moderator = who.role.at_least(Role.MODERATOR)
        async with self._db.begin() as s:
            flag = await flags.get_flag(s, flag_id, for_update=True)
            if flag is None or not (moderator or flag.flagged_by_id == who.user_id):
                raise NotFound(f"no flag {flag_id!r}")
            changes: dict[str, Any] = {}
            if reason is not None or category is not None:
                if flag.flagged_by_id != who.user_id:
                    raise Forbidden("only the person who raised the flag gives its reason")
                if reason is not None:
                    text = reason.strip()
                    if len(text) < self.settings.min_reason_chars:
                        raise Invalid(f"the reason needs at least {self.settings.min_reason_chars} characters")
                    if len(text) > self.settings.max_reason_chars:
                        raise Invalid(f"the reason is at most {self.settings.max_reason_chars} characters")
                    changes["reason"] = {"from": flag.reason, "to": text}
                    flag.reason = text
                if category is not None:
                    changes["category"] = {"from": _value(flag.category), "to": category.value}
                    flag.category = category
            if status is not None or admin_notes is not None:
                who.require(Role.MODERATOR)
                if status is not None:
                    if status not in REVIEW_STATUSES:
                        raise Invalid("status must be REVIEWED, RESOLVED or DISMISSED")
                    changes["status"] = {"from": flag.status.value, "to": status.value}
                    flag.status = status
                    flag.reviewed_at = now
                    flag.reviewed_by = who.user_id
                if admin_notes is not None:
                    if len(admin_notes) > self.settings.max_notes_chars:
                        raise Invalid(f"adminNotes is at most {self.settings.max_notes_chars} characters")
                    changes["adminNotes"] = {"from": flag.admin_notes, "to": admin_notes}
                    flag.admin_notes = admin_notes
            if not changes:
                raise Invalid("nothing to change: give reason/category, or status/adminNotes")
            flag.updated_at = now
            await users.ensure_user(s, user_id=who.user_id, role=who.role, display_name=who.display_name, now=now)
            flagger_part = changes.keys() & {"reason", "category"}
            review_part = changes.keys() & {"status", "adminNotes"}
            action = "update" if flagger_part and review_part else ("reason" if flagger_part else "review")
            await flags.add_audit(s, flag.id, who.user_id, action, changes, now)
        return flag

    async def get_flag(self, who: Identity, flag_id: str) -> tuple[Flag, list[FlagAudit], dict[str, str]]:
        """A flag, its audit trail and both people's display names, for its flagger or a moderator."""
        async with self._db() as s:
            flag = await flags.get_flag(s, flag_id)
            if flag is None or not (who.role.at_least(Role.MODERATOR) or flag.flagged_by_id == who.user_id):
                raise NotFound(f"no flag {flag_id!r}")
            names = {}
            for user_id in (flag.flagged_by_id, flag.flagged_user_id):
                user = await users.get_user(s, user_id)
                names[user_id] = user.display_name if user else user_id
            return flag, await flags.audit_trail(s, flag_id), names

    async def block(self, who: Identity, user_id: str) -> tuple[Block, bool]:
        """Never match `who` with `user_id` again (nor the other way round)."""
        if user_id == who.user_id:
            raise Invalid("you cannot block yourself")
        now = self._clock.now()
        async with self._db.begin() as s:
            await users.ensure_user(s, user_id=who.user_id, role=who.role, display_name=who.display_name, now=now)
            if await users.get_user(s, user_id) is None:
                raise NotFound(f"no user {user_id!r}")
            block, created = await flags.add_block(s, who.user_id, user_id, now)
        await self._calls.refresh_exclusions([who.user_id, user_id])
        return block, created

    async def unblock(self, who: Identity, user_id: str) -> None:
        """Lift a block; `not_found` if there was none."""
        async with self._db.begin() as s:
            if not await flags.remove_block(s, who.user_id, user_id):
                raise NotFound(f"you have not blocked {user_id!r}")
        await self._calls.refresh_exclusions([who.user_id, user_id])

    async def blocks(self, who: Identity) -> list[Block]:
        """Whom the caller has blocked."""
        async with self._db() as s:
            return await flags.blocks_of(s, who.user_id)


def _value(member: Any) -> Any:
    return None if member is None else member.value
