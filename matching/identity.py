"""Who is acting: a user id and a role. The transports build it from a verified token."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import Forbidden


class Role(str, enum.Enum):
    """Roles as they appear in tokens and API answers (lower-case, per the contract)."""

    USER = "user"
    MODERATOR = "moderator"
    ADMIN = "admin"

    def at_least(self, other: Role) -> bool:
        """True when this role may do what `other` may."""
        order = (Role.USER, Role.MODERATOR, Role.ADMIN)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: the token's subject and role."""

    user_id: str
    role: Role
    display_name: str | None = None

    def require(self, role: Role) -> None:
        """Refuse with `forbidden` unless this identity holds at least `role`."""
        if not self.role.at_least(role):
            raise Forbidden(f"this needs the {role.value} role")
