"""iceServers: nothing by default, configured URLs only, TURN REST credentials per user."""

from __future__ import annotations

import base64
import hashlib
import hmac

from matching.ice import IceConfig, ice_servers_for, turn_credentials


def test_nothing_configured_means_empty() -> None:
    assert ice_servers_for(IceConfig(), "u1", 1_700_000_000) == []


def test_stun_only() -> None:
    config = IceConfig(urls=("stun:127.0.0.1:3478",))
    assert ice_servers_for(config, "u1", 0) == [{"urls": ["stun:127.0.0.1:3478"]}]


def test_turn_without_secret_has_no_credentials() -> None:
    config = IceConfig(urls=("turn:127.0.0.1:3478?transport=udp",))
    assert ice_servers_for(config, "u1", 0) == [{"urls": ["turn:127.0.0.1:3478?transport=udp"]}]


def test_turn_rest_credentials_follow_the_standard_scheme() -> None:
    config = IceConfig(urls=("stun:127.0.0.1:3478", "turn:127.0.0.1:3478"), turn_secret="north", turn_ttl_seconds=600)
    servers = ice_servers_for(config, "alice", 1_000.7)
    assert servers[0] == {"urls": ["stun:127.0.0.1:3478"]}
    turn = servers[1]
    assert turn["username"] == "1600:alice"
    expected = base64.b64encode(hmac.new(b"north", b"1600:alice", hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    # Known vector: the credential depends on both user and expiry.
    assert turn_credentials("north", "bob", 1600)[1] != expected
    assert turn_credentials("north", "alice", 1601)[1] != expected
