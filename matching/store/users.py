"""Users: guest sign-in, look-up, and first sight of a user minted by an outside identity provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from matching.identity import Role

from .models import Role as DbRole
from .models import User, new_id

_ROLE_TO_DB = {Role.USER: DbRole.USER, Role.MODERATOR: DbRole.MODERATOR, Role.ADMIN: DbRole.ADMIN}


def db_role(role: Role) -> DbRole:
    """The stored enum value for a token role."""
    return _ROLE_TO_DB[role]


def api_role(role: DbRole) -> Role:
    """The token/API form of a stored role."""
    return Role(role.value.lower())


async def create_user(
    session: AsyncSession,
    *,
    display_name: str,
    role: Role = Role.USER,
    topics: list[str] | None = None,
    seniority: str | None = None,
    is_guest: bool = False,
    now: datetime,
) -> User:
    """Insert a user and return it (the caller commits)."""
    user = User(
        id=new_id(),
        display_name=display_name,
        role=db_role(role),
        topics=list(topics or []),
        seniority=seniority,
        is_guest=is_guest,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    """The user with `user_id`, or None."""
    return await session.get(User, user_id)


async def ensure_user(session: AsyncSession, *, user_id: str, role: Role, display_name: str | None,
                      now: datetime) -> User:
    """The stored user for a verified token: inserted on first sight, its role kept equal to the token's."""
    values = {
        "id": user_id,
        "displayName": display_name or user_id,
        "role": db_role(role),
        "topics": [],
        "isGuest": False,
        "createdAt": now,
        "updatedAt": now,
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # Two first requests of one user at once must not fail either; the token's role is the
    # authority (an operator may mint a moderator token for an existing user), so it is kept.
    statement = insert(User.__table__).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"],
            set_={"role": statement.excluded.role, "updatedAt": statement.excluded.updatedAt},
            where=User.__table__.c.role != statement.excluded.role,
        )
    )
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
    return user
