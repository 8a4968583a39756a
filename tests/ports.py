"""Ports for the servers the tests start: below the kernel's ephemeral range, one block per
pytest-xdist worker.

``my_chat.serve.free_port`` asks the kernel for a free port (``bind`` to port 0) and closes
it; the server that is meant to take it binds it a moment later, a whole interpreter start
later for a child process. Any ``bind(0)`` in between can be handed the same port, and so can
the local end of an outgoing connection: both come from the ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``). Running one test at a time, nothing else asked
in that moment; with two xdist workers the other worker binds and connects all the time, and
a child server now and then died with "address already in use".

The kernel never hands out a port below that range by itself, so a port taken from there is
free until whoever chose it binds it. Each worker walks its own block (gw0 the first, gw1
the next, ...) from a random start, so two workers never pick the same port, nor two test
runs side by side on the same machine at the same moment (except by a small chance, as
before). A port is offered only if it can be bound right now.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

LOWEST = 10_000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _worker_block() -> range:
    """This worker's share of [LOWEST, start of the ephemeral range)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    size = (_ephemeral_start() - LOWEST) // count
    return range(LOWEST + index * size, LOWEST + (index + 1) * size)


def _candidates() -> Iterator[int]:
    block = _worker_block()
    if len(block) < 100:  # an ephemeral range that starts unusually low: ask the kernel
        while True:
            yield 0
    start = random.randrange(len(block))
    for offset in itertools.cycle(range(len(block))):
        yield block[(start + offset) % len(block)]


_CANDIDATES = _candidates()


def _bindable(port: int, host: str) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return None
        return sock.getsockname()[1]


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing else is bound to and no other worker will pick."""
    for _ in range(1000):
        port = _bindable(next(_CANDIDATES), host)
        if port is not None:
            return port
    raise RuntimeError("no free port below the ephemeral range")
