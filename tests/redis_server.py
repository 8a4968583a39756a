"""A real ``redis-server`` for tests and tools: a free port, its own folder, persistence on.

The server writes every command to its append-only file and fsyncs it before answering
(``appendonly yes``, ``appendfsync always``), so a message Redis acknowledged survives a
restart: that is what the Redis tests rely on when they restart it in the middle of a chat.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.ports import free_port

REDIS_SERVER = "/usr/bin/redis-server"

CONFIG = """\
bind 127.0.0.1
port {port}
dir {folder}
daemonize no
save ""
appendonly yes
appendfsync {appendfsync}
logfile {folder}/redis.log
"""


def redis_server_path() -> str | None:
    if Path(REDIS_SERVER).exists():
        return REDIS_SERVER
    return shutil.which("redis-server")


class RedisServer:
    """``redis-server`` in a child process; ``restart()`` keeps its port and its data."""

    def __init__(self, folder: Path, port: int | None = None, appendfsync: str = "always") -> None:
        executable = redis_server_path()
        if executable is None:
            raise RuntimeError(
                "redis-server is not installed: the Redis tests need a real one "
                "(Debian/Ubuntu: apt-get install redis-server)"
            )
        self.executable = executable
        self.folder = folder
        self.port = port or free_port()
        # "always" for the tests; the Redis-hop measurement also tries "everysec".
        self.appendfsync = appendfsync
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "redis.conf"
        config.write_text(
            CONFIG.format(port=self.port, folder=self.folder, appendfsync=self.appendfsync)
        )
        self.process = subprocess.Popen(
            [self.executable, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{self.log()}")
            if self.ping():
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer within {timeout} s:\n{self.log()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis finishes writing its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
