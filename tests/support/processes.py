"""Pairwire server processes for tests: start, wait until healthy, signal by our own pid."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import free_port

PAIRWIRE = [sys.executable, "-m", "pairwire.cli"]


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRWIRE_")}
    env.update({"PAIRWIRE_DATA_DIR": str(tmp_path / "data"), "PAIRWIRE_PORT": str(free_port()), **extra})
    return env


def run_pairwire(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(PAIRWIRE + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


async def wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return await response.json()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become healthy in time")


class Server:
    """A `pairwire serve` child process; only this test's own process is ever signalled."""

    __test__ = False

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['PAIRWIRE_PORT']}"
        # Output goes to a file: a pipe nobody reads fills up and stalls the server mid-request.
        self.log_path = cwd / f"serve-{env['PAIRWIRE_PORT']}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(PAIRWIRE + ["serve"], env=env, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, text=True)

    def logs(self) -> str:
        """Everything the server printed so far."""
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise


