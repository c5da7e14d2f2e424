"""SQLAlchemy models: the runtime form of prisma/schema.prisma.

Table, column, index and constraint names are the ones Prisma would create, so the two
descriptions can be compared one to one (tests/matching/store/test_schema_drift.py). Python
attributes are snake_case; the database columns keep Prisma's camelCase field names.
"""

from __future__ import annotations

import enum
import random
import secrets
from datetime import datetime
from typing import Any

from cuid2 import Cuid
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from matching.lifecycle import Status as MatchStatus

from .types import EmptyList, JSONValue, StringList, UTCDateTime, utcnow

# Prisma's default constraint names, so both sides agree without per-column names.
NAMING = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
}

# cuid2 draws each of its 25 salt characters from SystemRandom, one getrandom() call apiece:
# ~85 us an id, and the queue path makes ~10 ids a pair. A Mersenne Twister seeded from the OS
# halves that; the salt is hashed (SHA3) with time, a counter and a fingerprint either way.
_cuid = Cuid(length=25, random_generator=lambda: random.Random(secrets.randbits(256)))


def new_id() -> str:
    """A new collision-resistant id (Prisma's `@default(cuid())`)."""
    return _cuid.generate()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.Enum):
    USER = "USER"
    MODERATOR = "MODERATOR"
    ADMIN = "ADMIN"


class ActivityStatus(enum.Enum):
    ONLINE = "ONLINE"
    SEARCHING = "SEARCHING"
    IN_CALL = "IN_CALL"
    OFFLINE = "OFFLINE"


class CallMode(enum.Enum):
    VIDEO = "VIDEO"
    TEXT = "TEXT"


class MediaRoute(enum.Enum):
    DIRECT = "DIRECT"
    RELAY = "RELAY"


class FlagCategory(enum.Enum):
    HARASSMENT = "HARASSMENT"
    INAPPROPRIATE = "INAPPROPRIATE"
    SPAM = "SPAM"
    SCAM = "SCAM"
    HATE_SPEECH = "HATE_SPEECH"
    VIOLENCE = "VIOLENCE"
    OTHER = "OTHER"


class FlagStatus(enum.Enum):
    PENDING = "PENDING"
    REVIEWED = "REVIEWED"
    RESOLVED = "RESOLVED"
    DISMISSED = "DISMISSED"


def _enum(cls: type[enum.Enum], name: str | None = None) -> SAEnum:
    # A native enum type named like the Prisma enum on PostgreSQL; plain text on SQLite.
    return SAEnum(cls, name=name or cls.__name__, values_callable=lambda e: [m.value for m in e])


def _id() -> Any:
    return mapped_column("id", Text, primary_key=True, default=new_id)


def _now_column(name: str) -> Any:
    return mapped_column(name, UTCDateTime, nullable=False, default=utcnow, server_default=func.current_timestamp())


def _updated_at() -> Any:
    # Prisma's @updatedAt is set by the client, not the database: no server default.
    return mapped_column("updatedAt", UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


def _string_list(name: str) -> Any:
    return mapped_column(name, StringList, nullable=False, default=list, server_default=EmptyList())


def _fk(target: str, on_delete: str) -> ForeignKey:
    return ForeignKey(target, ondelete=on_delete, onupdate="CASCADE")


class User(Base):
    __tablename__ = "User"

    id: Mapped[str] = _id()
    display_name: Mapped[str] = mapped_column("displayName", Text, nullable=False)
    role: Mapped[Role] = mapped_column("role", _enum(Role), nullable=False, default=Role.USER, server_default=text("'USER'"))
    topics: Mapped[list[str]] = _string_list("topics")
    seniority: Mapped[str | None] = mapped_column("seniority", Text, nullable=True)
    is_guest: Mapped[bool] = mapped_column("isGuest", Boolean, nullable=False, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = _now_column("createdAt")
    updated_at: Mapped[datetime] = _updated_at()


class UserActivity(Base):
    __tablename__ = "user_activities"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column("userId", Text, _fk("User.id", "CASCADE"), nullable=False)
    status: Mapped[ActivityStatus] = mapped_column(
        "status", _enum(ActivityStatus), nullable=False, default=ActivityStatus.ONLINE, server_default=text("'ONLINE'")
    )
    mode: Mapped[CallMode | None] = mapped_column("mode", _enum(CallMode), nullable=True)
    joined_at: Mapped[datetime] = _now_column("joinedAt")
    last_seen: Mapped[datetime] = _now_column("lastSeen")

    __table_args__ = (
        Index(None, "status", "joinedAt"),
        Index(None, "userId", "lastSeen"),
    )


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column("userId", Text, _fk("User.id", "CASCADE"), nullable=False)
    session_id: Mapped[str] = mapped_column("sessionId", Text, nullable=False)
    started_at: Mapped[datetime] = _now_column("startedAt")
    ended_at: Mapped[datetime | None] = mapped_column("endedAt", UTCDateTime, nullable=True)
    is_active: Mapped[bool] = mapped_column("isActive", Boolean, nullable=False, default=True, server_default=text("true"))
    matched_user_ids: Mapped[list[str]] = _string_list("matchedUserIds")
    created_at: Mapped[datetime] = _now_column("createdAt")
    updated_at: Mapped[datetime] = _updated_at()

    __table_args__ = (
        UniqueConstraint("sessionId"),
        Index(None, "userId", "isActive"),
        Index(None, "sessionId"),
    )


class Match(Base):
    __tablename__ = "Match"

    id: Mapped[str] = _id()
    user1_id: Mapped[str] = mapped_column("user1Id", Text, _fk("User.id", "RESTRICT"), nullable=False)
    user2_id: Mapped[str] = mapped_column("user2Id", Text, _fk("User.id", "RESTRICT"), nullable=False)
    user1_session_id: Mapped[str | None] = mapped_column("user1SessionId", Text, nullable=True)
    user2_session_id: Mapped[str | None] = mapped_column("user2SessionId", Text, nullable=True)
    mode: Mapped[CallMode] = mapped_column("mode", _enum(CallMode), nullable=False)
    status: Mapped[MatchStatus] = mapped_column(
        "status", _enum(MatchStatus, "MatchStatus"), nullable=False, default=MatchStatus.PENDING, server_default=text("'PENDING'")
    )
    media: Mapped[MediaRoute] = mapped_column(
        "media", _enum(MediaRoute), nullable=False, default=MediaRoute.DIRECT, server_default=text("'DIRECT'")
    )
    matched_at: Mapped[datetime] = _now_column("matchedAt")
    started_at: Mapped[datetime | None] = mapped_column("startedAt", UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column("endedAt", UTCDateTime, nullable=True)
    duration: Mapped[int | None] = mapped_column("duration", Integer, nullable=True)
    ended_by: Mapped[str | None] = mapped_column("endedBy", Text, nullable=True)
    room_id: Mapped[str | None] = mapped_column("roomId", Text, nullable=True)
    user1_joined_at: Mapped[datetime | None] = mapped_column("user1JoinedAt", UTCDateTime, nullable=True)
    user2_joined_at: Mapped[datetime | None] = mapped_column("user2JoinedAt", UTCDateTime, nullable=True)
    matched_topics: Mapped[list[str]] = _string_list("matchedTopics")
    created_at: Mapped[datetime] = _now_column("createdAt")
    updated_at: Mapped[datetime] = _updated_at()

    __table_args__ = (
        UniqueConstraint("roomId"),
        Index(None, "user1Id", "matchedAt"),
        Index(None, "user2Id", "matchedAt"),
        Index(None, "user1Id", "status"),
        Index(None, "user2Id", "status"),
        Index(None, "status", "startedAt"),
        Index(None, "matchedAt"),
        Index(None, "roomId"),
        Index(None, "user1SessionId"),
        Index(None, "user2SessionId"),
    )


class Flag(Base):
    __tablename__ = "Flag"

    id: Mapped[str] = _id()
    flagged_by_id: Mapped[str] = mapped_column("flaggedById", Text, _fk("User.id", "RESTRICT"), nullable=False)
    flagged_user_id: Mapped[str] = mapped_column("flaggedUserId", Text, _fk("User.id", "RESTRICT"), nullable=False)
    match_id: Mapped[str | None] = mapped_column("matchId", Text, _fk("Match.id", "SET NULL"), nullable=True)
    reason: Mapped[str] = mapped_column("reason", Text, nullable=False, default="", server_default=text("''"))
    category: Mapped[FlagCategory | None] = mapped_column("category", _enum(FlagCategory), nullable=True)
    flagged_at: Mapped[datetime] = _now_column("flaggedAt")
    status: Mapped[FlagStatus] = mapped_column(
        "status", _enum(FlagStatus), nullable=False, default=FlagStatus.PENDING, server_default=text("'PENDING'")
    )
    reviewed_at: Mapped[datetime | None] = mapped_column("reviewedAt", UTCDateTime, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column("reviewedBy", Text, nullable=True)
    admin_notes: Mapped[str | None] = mapped_column("adminNotes", Text, nullable=True)
    created_at: Mapped[datetime] = _now_column("createdAt")
    updated_at: Mapped[datetime] = _updated_at()

    __table_args__ = (
        Index(None, "flaggedById", "flaggedAt"),
        Index(None, "flaggedUserId", "flaggedAt"),
        Index(None, "matchId"),
        Index(None, "status", "flaggedAt"),
        Index(None, "flaggedAt"),
    )


class FlagAudit(Base):
    __tablename__ = "flag_audits"

    id: Mapped[str] = _id()
    flag_id: Mapped[str] = mapped_column("flagId", Text, _fk("Flag.id", "CASCADE"), nullable=False)
    actor_id: Mapped[str] = mapped_column("actorId", Text, _fk("User.id", "RESTRICT"), nullable=False)
    action: Mapped[str] = mapped_column("action", Text, nullable=False)
    changes: Mapped[Any] = mapped_column("changes", JSONValue, nullable=False)
    created_at: Mapped[datetime] = _now_column("createdAt")

    __table_args__ = (Index(None, "flagId", "createdAt"),)


class Block(Base):
    __tablename__ = "blocks"

    id: Mapped[str] = _id()
    blocker_id: Mapped[str] = mapped_column("blockerId", Text, _fk("User.id", "CASCADE"), nullable=False)
    blocked_id: Mapped[str] = mapped_column("blockedId", Text, _fk("User.id", "CASCADE"), nullable=False)
    created_at: Mapped[datetime] = _now_column("createdAt")

    __table_args__ = (
        UniqueConstraint("blockerId", "blockedId"),
        Index(None, "blockedId"),
    )


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[str] = _id()
    match_id: Mapped[str] = mapped_column("matchId", Text, _fk("Match.id", "CASCADE"), nullable=False)
    sender_id: Mapped[str | None] = mapped_column("senderId", Text, _fk("User.id", "SET NULL"), nullable=True)
    text: Mapped[str] = mapped_column("text", Text, nullable=False)
    sent_at: Mapped[datetime] = _now_column("sentAt")

    __table_args__ = (Index(None, "matchId", "sentAt"),)
