"""CallService paths the end-to-end tests cannot reach: a match whose row the store refuses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from matching.calls import CallService
from matching.clock import ManualClock
from matching.identity import Identity, Role
from matching.policy import Mode
from matching.store import users
from matching.store.database import session_factory
from matching.store.models import Match, User


class Events:
    """A notifier that keeps what it was handed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def send(self, user_id: str, event: str, payload: dict[str, Any]) -> None:
        self.sent.append((user_id, event, payload))


async def test_a_match_the_store_refuses_leaves_both_waiting(db) -> None:  # type: ignore[no-untyped-def]
    factory = session_factory(db.engine)
    clock = ManualClock()
    events = Events()
    service = CallService(db=factory, notifier=events, clock=clock)
    async with factory.begin() as s:
        ann, bob = [Identity((await users.create_user(s, display_name=n, topics=["go"], now=clock.now())).id, Role.USER)
                    for n in ("Ann", "Bob")]
    for who in (ann, bob):
        await service.connected(who)
    assert "matchId" not in await service.join_queue(ann, Mode.TEXT)
    await service.writer.flush()
    # Ann's user row goes (an operator deleting her, say): the match row's foreign key fails.
    async with factory.begin() as s:
        await s.execute(delete(User).where(User.id == ann.user_id))
    answer = await service.join_queue(bob, Mode.TEXT)
    assert "matchId" not in answer and answer["queuePosition"] >= 1
    assert [e for e in events.sent if e[1] == "match:found"] == []
    for who in (ann, bob):  # both wait again, in no match
        status = await service.queue_status(who)
        assert status["inQueue"] and "matchId" not in status, status
    async with factory() as s:
        assert (await s.execute(select(Match))).scalars().all() == []
    # Bob's leave still wins: he is not matched afterwards.
    assert await service.leave_queue(bob) == {}
    assert not (await service.queue_status(bob))["inQueue"]
    await service.close()
