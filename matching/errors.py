"""The contract's error codes as exceptions, raised by the domain and rendered by each transport."""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
}


class PairwireError(Exception):
    """A refusal the client should see: `{"error": {"code", "message"}}` plus any extra fields."""

    code = "invalid"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    @property
    def status(self) -> int:
        """The HTTP status that goes with the code."""
        return STATUS_BY_CODE[self.code]

    def to_error(self) -> dict[str, Any]:
        """The `error` object of the contract."""
        return {"code": self.code, "message": self.message}


class Invalid(PairwireError):
    code = "invalid"


class Unauthorized(PairwireError):
    code = "unauthorized"


class Forbidden(PairwireError):
    code = "forbidden"


class NotFound(PairwireError):
    code = "not_found"


class Conflict(PairwireError):
    code = "conflict"


class TooLarge(PairwireError):
    code = "too_large"


class RateLimited(PairwireError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retryAfter=retry_after)


class Unavailable(PairwireError):
    code = "unavailable"
