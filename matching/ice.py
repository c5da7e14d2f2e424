"""The `iceServers` handed to peers: only what the operator configured.

With a TURN shared secret, credentials are minted per user with the time-limited TURN REST
scheme that coturn implements (`use-auth-secret`): username `<expiry>:<userId>`, credential
base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IceConfig:
    """STUN/TURN URLs and, for TURN, the shared secret and credential lifetime."""

    urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_seconds: int = 3600


def turn_credentials(secret: str, user_id: str, expires_at: int) -> tuple[str, str]:
    """(username, credential) valid until the Unix time `expires_at`."""
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(config: IceConfig, user_id: str, now_unix: float) -> list[dict[str, object]]:
    """The `iceServers` list of `match:found` for one user; empty when nothing is configured."""
    stun = [url for url in config.urls if url.startswith(("stun:", "stuns:"))]
    turn = [url for url in config.urls if url.startswith(("turn:", "turns:"))]
    servers: list[dict[str, object]] = []
    if stun:
        servers.append({"urls": stun})
    if turn:
        entry: dict[str, object] = {"urls": turn}
        if config.turn_secret:
            username, credential = turn_credentials(
                config.turn_secret, user_id, int(now_unix) + config.turn_ttl_seconds
            )
            entry.update(username=username, credential=credential)
        servers.append(entry)
    return servers
