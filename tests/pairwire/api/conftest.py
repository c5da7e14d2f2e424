"""REST callers with minted tokens, closed at the end of each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from matching.identity import Role
from pairwire.api.http import TOKENS
from tests.support.api import Api


@pytest.fixture
async def apis(server) -> AsyncIterator[Callable[..., Api]]:  # type: ignore[no-untyped-def]
    """`make(user_id, role)`: a REST caller with a token minted for that user (none without one)."""
    made: list[Api] = []

    def make(user_id: str | None = None, role: Role = Role.USER) -> Api:
        token = server.app[TOKENS].mint(user_id, role, name=user_id) if user_id else None
        api = Api(server.url, token)
        made.append(api)
        return api

    yield make
    for api in made:
        await api.close()
