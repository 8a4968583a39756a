"""``python -m my_chat`` as a child process: the one launcher of the tests, the browser tests
and the benchmark.

``chat_command`` is the command line of a server on loopback with its own data folder;
``ChildServer`` runs a command like it (the benchmark's other servers too), with its output
in a log file, and waits until it answers. Each wait has a blocking form, for code that is
not async, and an ``_async`` one that leaves the event loop free while it waits.
(``serve.serve`` is the other way to run my_chat: in this process, on this event loop.)
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

# Loopback only, whatever http_proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def chat_command(port: int, data_dir: Path, *args: str, host: str = "127.0.0.1") -> list[str]:
    """The command line of my_chat on ``host:port`` with its data in ``data_dir``."""
    return [
        sys.executable,
        "-m",
        "my_chat",
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *args,
    ]


class ChildServer:
    """A server in a child process; ready once ``GET ready_path`` answers 200."""

    def __init__(
        self,
        argv: list[str],
        *,
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        ready_path: str = "/healthz",
    ) -> None:
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready_path = ready_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Start the process and return at once; ``start`` also waits until it answers."""
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
            )

    def answers(self) -> bool:
        """Whether the server answers ``ready_path`` with 200 now; raises if it has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            code = self.process.returncode
            raise RuntimeError(f"server exited early (exit code {code}):\n{self.log()}")
        try:
            with _DIRECT.open(self.url + self.ready_path, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self, timeout: float = 20.0) -> ChildServer:
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    async def start_async(self, wait_s: float = 20.0) -> ChildServer:
        self.spawn()
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    if await asyncio.to_thread(self.answers):
                        return self
                    await asyncio.sleep(0.05)
        except TimeoutError:
            await self.kill_async()
            raise RuntimeError(f"server did not answer within {wait_s} s:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye to the streams, as in a crash."""
        if self.running():
            self.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, the way a deployment stops it; its exit code (raises if it stays)."""
        assert self.process is not None
        if self.running():
            self.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, and SIGKILL if it has not exited within ``timeout`` seconds."""
        if not self.running():
            return
        try:
            self.terminate(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    async def _exited(self, wait_s: float) -> bool:
        assert self.process is not None
        try:
            await asyncio.to_thread(self.process.wait, wait_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    async def kill_async(self) -> None:
        if self.running():
            self.send_signal(signal.SIGKILL)
            await self._exited(10)

    async def stop_async(self, wait_s: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after ``wait_s`` seconds; whether SIGTERM was enough."""
        if not self.running():
            return True
        self.send_signal(signal.SIGTERM)
        if await self._exited(wait_s):
            return True
        await self.kill_async()
        return False
