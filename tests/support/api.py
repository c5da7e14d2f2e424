"""A REST caller for tests: one signed-in client of a test server."""

from __future__ import annotations

from typing import Any

import aiohttp
from multidict import CIMultiDictProxy


class Api:
    """Calls a test server's REST API, with a bearer token when given one."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = aiohttp.ClientSession(headers=headers)

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **params: Any
    ) -> tuple[int, Any, CIMultiDictProxy[str]]:
        """(status, JSON answer, headers) of one request; `raw` sends bytes as the JSON body."""
        kwargs: dict[str, Any] = {"params": params}
        if raw is not None:
            kwargs.update(data=raw, headers={"Content-Type": "application/json"})
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.base + path, **kwargs) as r:
            return r.status, await r.json(), r.headers

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        status, answer, _ = await self.call("GET", path, **params)
        return status, answer

    async def post(self, path: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
        status, answer, _ = await self.call("POST", path, body if body is not None else {}, raw=raw)
        return status, answer

    async def close(self) -> None:
        await self.http.close()
