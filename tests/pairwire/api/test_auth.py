"""Identity over REST: guest sign-in, and every refusal in the contract's shape."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import aiohttp
import jwt
import pytest

from matching.identity import Role
from pairwire.api.http import TOKENS
from pairwire.tokens import ALGORITHM, TokenService


async def _post(url: str, body: object, **kw: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, **kw) as response:
            return response.status, await response.json()


async def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as response:
            return response.status, await response.json()


async def test_guest_sign_in_returns_a_working_token(server) -> None:  # type: ignore[no-untyped-def]
    status, body = await _post(
        f"{server.url}/api/auth/guest", {"displayName": "  Ada ", "topics": ["Rust", "rust", "Go"], "seniority": "senior"}
    )
    assert status == 201
    assert body["user"]["displayName"] == "Ada"
    assert body["user"]["role"] == "user"
    assert body["user"]["topics"] == ["rust", "go"]
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == body["user"]["id"] and claims["role"] == "user"
    status, me = await _get(f"{server.url}/api/auth/me", body["token"])
    assert status == 200 and me["user"]["id"] == body["user"]["id"] and me["user"]["seniority"] == "senior"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "displayName"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 51}, "displayName"),
        ({"displayName": "A", "seniority": "wizard"}, "seniority"),
        ({"displayName": "A", "topics": "rust"}, "topics"),
        ({"displayName": "A", "topics": [""]}, "topic"),
        ({"displayName": "A", "topics": [f"t{i}" for i in range(11)]}, "topics"),
        ({"displayName": "A", "role": "admin"}, "role"),
        (["not", "an", "object"], "object"),
    ],
)
async def test_guest_sign_in_refuses_bad_input(server, body: object, fragment: str) -> None:  # type: ignore[no-untyped-def]
    status, answer = await _post(f"{server.url}/api/auth/guest", body)
    assert status == 400
    assert answer["error"]["code"] == "invalid"
    assert fragment in answer["error"]["message"]


async def test_bad_json_and_oversized_body(server) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/auth/guest", data=b"{nope", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid"
        big = b'{"displayName": "' + b"a" * (server.settings.max_body_bytes + 10) + b'"}'
        async with http.post(f"{server.url}/api/auth/guest", data=big) as r:
            assert r.status == 413 and (await r.json())["error"]["code"] == "too_large"


@pytest.mark.parametrize("settings_overrides", [{"guest_login": False}])
async def test_guest_sign_in_can_be_switched_off(server) -> None:  # type: ignore[no-untyped-def]
    status, answer = await _post(f"{server.url}/api/auth/guest", {"displayName": "A"})
    assert status == 403 and answer["error"]["code"] == "forbidden"


def _bad_tokens(server) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    tokens: TokenService = server.app[TOKENS]
    past = datetime.now(timezone.utc) - timedelta(hours=3)
    secret = server.settings.secret
    return {
        "missing": None,
        "garbage": "abc.def.ghi",
        "expired": tokens.mint("u1", Role.USER, ttl=timedelta(minutes=5), now=past),
        "forged": TokenService("another-key-" + "y" * 40).mint("u1", Role.ADMIN),
        "wrong-role": jwt.encode(
            {"sub": "u1", "role": "root", "exp": datetime.now(timezone.utc) + timedelta(minutes=5)}, secret, ALGORITHM
        ),
    }


@pytest.mark.parametrize("kind", ["missing", "garbage", "expired", "forged", "wrong-role"])
async def test_rest_refuses_bad_tokens(server, kind: str) -> None:  # type: ignore[no-untyped-def]
    status, answer = await _get(f"{server.url}/api/auth/me", _bad_tokens(server)[kind])
    assert status == 401
    assert answer == {"error": {"code": "unauthorized", "message": answer["error"]["message"]}}
    assert answer["error"]["message"]


async def test_outside_token_creates_the_user_once(server) -> None:  # type: ignore[no-untyped-def]
    token = server.app[TOKENS].mint("idp-user-7", Role.MODERATOR, name="Mod Seven")
    first = await _get(f"{server.url}/api/auth/me", token)
    second = await _get(f"{server.url}/api/auth/me", token)
    assert first == second
    assert first[1]["user"] == {
        "id": "idp-user-7", "displayName": "Mod Seven", "role": "moderator", "topics": [], "seniority": None,
        "isGuest": False,
    }


async def test_user_lookup_needs_moderator_for_others(server) -> None:  # type: ignore[no-untyped-def]
    _, alice = await _post(f"{server.url}/api/auth/guest", {"displayName": "Alice"})
    _, bob = await _post(f"{server.url}/api/auth/guest", {"displayName": "Bob"})
    own = await _get(f"{server.url}/api/users/{alice['user']['id']}", alice["token"])
    assert own[0] == 200
    status, answer = await _get(f"{server.url}/api/users/{bob['user']['id']}", alice["token"])
    assert status == 403 and answer["error"]["code"] == "forbidden"
    moderator = server.app[TOKENS].mint("mod-1", Role.MODERATOR)
    status, answer = await _get(f"{server.url}/api/users/{bob['user']['id']}", moderator)
    assert status == 200 and answer["user"]["displayName"] == "Bob"
    status, answer = await _get(f"{server.url}/api/users/nobody", moderator)
    assert status == 404 and answer["error"]["code"] == "not_found"


async def test_unknown_route_and_method_use_the_error_shape(server) -> None:  # type: ignore[no-untyped-def]
    status, answer = await _get(f"{server.url}/api/nothing-here")
    assert status == 404 and answer["error"]["code"] == "not_found"
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{server.url}/api/auth/guest") as r:
            assert r.status == 405 and (await r.json())["error"]["code"] == "invalid"


async def test_a_moderator_token_for_a_guest_updates_the_stored_role(server) -> None:  # type: ignore[no-untyped-def]
    _, guest = await _post(f"{server.url}/api/auth/guest", {"displayName": "Gus"})
    promoted = server.app[TOKENS].mint(guest["user"]["id"], Role.MODERATOR)
    status, me = await _get(f"{server.url}/api/auth/me", promoted)
    assert status == 200 and me["user"]["role"] == "moderator" and me["user"]["displayName"] == "Gus"
    status, again = await _get(f"{server.url}/api/auth/me", guest["token"])
    assert again["user"]["role"] == "user"
