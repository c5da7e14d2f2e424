"""Token verification refuses every bad token with `unauthorized`, and says why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest

from matching.errors import Forbidden, Unauthorized
from matching.identity import Identity, Role
from pairwire.tokens import ALGORITHM, TokenService, bearer_token

SECRET = "s" * 48


def test_round_trip() -> None:
    tokens = TokenService(SECRET)
    who = tokens.verify(tokens.mint("u1", Role.MODERATOR, name="Mo"))
    assert who == Identity("u1", Role.MODERATOR, "Mo")


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "a.b.c"])
def test_missing_or_garbage(token: str | None) -> None:
    with pytest.raises(Unauthorized):
        TokenService(SECRET).verify(token)


def test_expired() -> None:
    tokens = TokenService(SECRET)
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    token = tokens.mint("u1", Role.USER, ttl=timedelta(minutes=1), now=old)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token)


def test_forged_with_another_key() -> None:
    forged = TokenService("k" * 48).mint("u1", Role.ADMIN)
    with pytest.raises(Unauthorized, match="signature"):
        TokenService(SECRET).verify(forged)


def test_unsigned_alg_none_is_refused() -> None:
    token = jwt.encode({"sub": "u1", "role": "admin", "exp": 9999999999}, None, algorithm="none")
    with pytest.raises(Unauthorized):
        TokenService(SECRET).verify(token)


@pytest.mark.parametrize("role", ["superuser", "", "ADMIN", None])
def test_wrong_role(role: object) -> None:
    claims = {"sub": "u1", "role": role, "exp": datetime.now(timezone.utc) + timedelta(minutes=5)}
    token = jwt.encode(claims, SECRET, algorithm=ALGORITHM)
    with pytest.raises(Unauthorized):
        TokenService(SECRET).verify(token)


def test_missing_subject() -> None:
    token = jwt.encode({"role": "user", "exp": datetime.now(timezone.utc) + timedelta(minutes=5)}, SECRET)
    with pytest.raises(Unauthorized):
        TokenService(SECRET).verify(token)


def test_issuer_and_audience_when_configured() -> None:
    strict = TokenService(SECRET, issuer="https://idp.example", audience="pairwire")
    assert strict.verify(strict.mint("u1", Role.USER)).user_id == "u1"
    loose = TokenService(SECRET)  # mints without iss/aud
    with pytest.raises(Unauthorized):
        strict.verify(loose.mint("u1", Role.USER))
    other_aud = TokenService(SECRET, issuer="https://idp.example", audience="someone-else")
    with pytest.raises(Unauthorized):
        strict.verify(other_aud.mint("u1", Role.USER))
    other_iss = TokenService(SECRET, issuer="https://evil.example", audience="pairwire")
    with pytest.raises(Unauthorized):
        strict.verify(other_iss.mint("u1", Role.USER))


def test_role_order() -> None:
    Identity("a", Role.ADMIN).require(Role.MODERATOR)
    Identity("m", Role.MODERATOR).require(Role.MODERATOR)
    with pytest.raises(Forbidden):
        Identity("u", Role.USER).require(Role.MODERATOR)
    with pytest.raises(Forbidden):
        Identity("m", Role.MODERATOR).require(Role.ADMIN)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_header(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected
