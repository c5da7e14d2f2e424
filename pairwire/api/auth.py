"""`/api/auth`: guest sign-in and who-am-I."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from matching.errors import Forbidden, NotFound
from matching.identity import Role
from matching.profile import SENIORITY_LEVELS, Topics
from matching.store import users
from matching.store.types import utcnow

from .openapi import operation
from .http import TOKENS, identity, json_response, parse_body
from .store import SESSIONS

SETTINGS_GUEST_LOGIN: web.AppKey[bool] = web.AppKey("guest_login", bool)

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Seniority = Annotated[str, AfterValidator(lambda v: _known_seniority(v))]


def _known_seniority(value: str) -> str:
    if value not in SENIORITY_LEVELS:
        raise ValueError(f"must be one of {', '.join(SENIORITY_LEVELS)}")
    return value


class GuestSignIn(BaseModel):
    """Body of `POST /api/auth/guest`."""

    model_config = ConfigDict(extra="forbid")

    displayName: DisplayName
    topics: Topics = Field(default_factory=list)
    seniority: Seniority | None = None


def user_view(user: users.User) -> dict[str, object]:
    """A user as the API shows it."""
    return {
        "id": user.id,
        "displayName": user.display_name,
        "role": users.api_role(user.role).value,
        "topics": list(user.topics),
        "seniority": user.seniority,
        "isGuest": user.is_guest,
    }


@operation("Sign in as a guest", body=GuestSignIn, auth=False, success=201, errors=("forbidden",), tag="identity")
async def guest_sign_in(request: web.Request) -> web.Response:
    """Create a guest user and hand back a token for it."""
    if not request.app[SETTINGS_GUEST_LOGIN]:
        raise Forbidden("guest sign-in is switched off on this server")
    body = await parse_body(request, GuestSignIn)
    async with request.app[SESSIONS].begin() as session:
        user = await users.create_user(
            session,
            display_name=body.displayName,
            topics=body.topics,
            seniority=body.seniority,
            is_guest=True,
            now=utcnow(),
        )
    token = request.app[TOKENS].mint(user.id, Role.USER, name=user.display_name)
    return json_response({"token": token, "user": user_view(user)}, status=201)


@operation("The caller's own user record", tag="identity")
async def me(request: web.Request) -> web.Response:
    """The caller's own user record, created on first sight of an outside token."""
    caller = identity(request)
    async with request.app[SESSIONS].begin() as session:
        user = await users.ensure_user(
            session, user_id=caller.user_id, role=caller.role, display_name=caller.display_name, now=utcnow()
        )
    return json_response({"user": user_view(user)})


@operation("One user (yourself, or anyone for moderators)", errors=("forbidden", "not_found"), tag="identity")
async def get_user(request: web.Request) -> web.Response:
    """One user: yourself, or anyone for moderators and admins."""
    caller = identity(request)
    user_id = request.match_info["userId"]
    if user_id != caller.user_id:
        caller.require(Role.MODERATOR)
    async with request.app[SESSIONS]() as session:
        user = await users.get_user(session, user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}")
    return json_response({"user": user_view(user)})


def add_routes(app: web.Application, *, guest_login: bool) -> None:
    """Register the identity routes."""
    app[SETTINGS_GUEST_LOGIN] = guest_login
    app.router.add_post("/api/auth/guest", guest_sign_in)
    app.router.add_get("/api/auth/me", me)
    app.router.add_get("/api/users/{userId}", get_user)
