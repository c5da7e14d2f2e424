"""The OpenAPI document matches the routes, and schemathesis finds no 5xx on the live server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from pairwire.api.openapi import described
from tests.support.processes import Server, run_pairwire, server_env, wait_healthy

ST = str(Path(sys.executable).with_name("st"))


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


async def test_every_route_is_documented_and_nothing_else(server) -> None:  # type: ignore[no-untyped-def]
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in server.app.router.routes()
        if r.resource is not None and r.method != "HEAD"
        and (r.resource.canonical.startswith("/api/") or r.resource.canonical in ("/healthz", "/metrics"))
    }
    undocumented = {
        (r.method, r.resource.canonical) for r in server.app.router.routes()
        if r.resource is not None and r.method != "HEAD" and (r.method.lower(), r.resource.canonical) in routes
        and described(r.handler) is None
    }
    assert undocumented == set()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/openapi.json") as r:
            assert r.status == 200
            document = await r.json()
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == routes
    flag_body = document["paths"]["/api/flags"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][flag_body["$ref"].rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"flaggedUserId", "matchId", "reason", "category", "endCall"}
    assert schema["required"] == ["flaggedUserId"]


@pytest.mark.parametrize("role", ["user", "moderator"])
async def test_schemathesis_finds_no_server_error(tmp_path: Path, servers: list[Server], role: str) -> None:
    env = server_env(tmp_path)
    assert run_pairwire(["migrate"], env, tmp_path).returncode == 0
    server = Server(env, tmp_path)
    servers.append(server)
    await wait_healthy(server.url, server.proc)
    token = run_pairwire(["token", "--user", f"fuzz-{role}", "--role", role], env, tmp_path).stdout.strip()
    result = subprocess.run(
        [ST, "run", f"{server.url}/api/openapi.json", "--checks", "not_a_server_error",
         "-H", f"Authorization: Bearer {token}", "--max-examples", "25", "--max-time", "90", "--workers", "1",
         "--phases", "examples,coverage,fuzzing", "--seed", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert summary is not None and int(summary.group(1)) > 500 and summary.group(1) == summary.group(2), result.stdout[-3000:]
    assert server.stop() == 0
