"""Chat messages, stored with their match."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ChatMessage, new_id


async def add_message(session: AsyncSession, *, match_id: str, sender_id: str, text: str, now: datetime) -> ChatMessage:
    """Store one message sent at `now`."""
    message = ChatMessage(id=new_id(), match_id=match_id, sender_id=sender_id, text=text, sent_at=now)
    session.add(message)
    await session.flush()
    return message


async def transcript(session: AsyncSession, match_id: str) -> list[ChatMessage]:
    """A match's messages in the order they were sent."""
    query = select(ChatMessage).where(ChatMessage.match_id == match_id).order_by(ChatMessage.sent_at, ChatMessage.id)
    return list((await session.execute(query)).scalars())
