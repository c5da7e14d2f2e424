"""Signed JWT bearer tokens (PyJWT): minting for guests and operators, verification for every request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

from matching.errors import Unauthorized
from matching.identity import Identity, Role

from .settings import Settings

ALGORITHM = "HS256"


class TokenService:
    """Mints and verifies the server's tokens; an outside identity provider can mint with the same key."""

    def __init__(
        self,
        secret: str,
        *,
        ttl: timedelta = timedelta(hours=24),
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._secret = secret
        self._ttl = ttl
        self._issuer = issuer
        self._audience = audience

    def mint(self, user_id: str, role: Role, *, name: str | None = None, ttl: timedelta | None = None,
             now: datetime | None = None) -> str:
        """A signed token for `user_id` with `role`."""
        issued = now or datetime.now(timezone.utc)
        claims: dict[str, object] = {
            "sub": user_id,
            "role": role.value,
            "iat": issued,
            "exp": issued + (ttl or self._ttl),
        }
        if name is not None:
            claims["name"] = name
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str | None) -> Identity:
        """The identity in `token`, or `Unauthorized` saying what is wrong with it."""
        if not token:
            raise Unauthorized("a bearer token is required")
        required = ["sub", "exp", "role"]
        if self._issuer:
            required.append("iss")
        if self._audience:
            required.append("aud")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": required, "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature is not valid") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not valid: {exc}") from None
        try:
            role = Role(claims["role"])
        except ValueError:
            raise Unauthorized(f"the token's role {claims['role']!r} is not one of user, moderator, admin") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise Unauthorized("the token's subject is not a valid user id")
        name = claims.get("name")
        return Identity(user_id=subject, role=role, display_name=name if isinstance(name, str) else None)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_service(settings: Settings) -> TokenService:
    """The token service configured by `settings`."""
    return TokenService(
        settings.resolved_secret(),
        ttl=timedelta(seconds=settings.token_ttl_seconds),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
