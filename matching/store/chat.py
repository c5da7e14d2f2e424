"""Chat messages, stored with their match."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ChatMessage, new_id
from .writer import INSERT, Write

_INSERT = insert(ChatMessage.__table__)


def new_message(*, match_id: str, sender_id: str, text: str, now: datetime) -> tuple[str, Write]:
    """A message sent at `now`: its id, and the write that stores it (for a `BatchWriter`)."""
    message_id = new_id()
    values = {"id": message_id, "matchId": match_id, "senderId": sender_id, "text": text, "sentAt": now}
    return message_id, Write(_INSERT, values, rank=INSERT)


async def transcript(session: AsyncSession, match_id: str) -> list[ChatMessage]:
    """A match's messages in the order they were sent."""
    query = select(ChatMessage).where(ChatMessage.match_id == match_id).order_by(ChatMessage.sent_at, ChatMessage.id)
    return list((await session.execute(query)).scalars())
