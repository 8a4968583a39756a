"""What every part of the benchmark shares: paths, the targets it checks, the progress log."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-123"
EVENT_NAME = "bench"
SCHEMA_VERSION = 1

# Targets, checked at N = 10,000 (or the largest N run); the reference runs in the same run.
TARGET_P99_RATIO = 1.25  # broadcast p99 over the reference's
TARGET_RATE_RATIO = 0.9  # sustained delivery rate over the reference's
TARGET_BYTES_PER_CONNECTION = 10 * 1024  # server memory per idle signed-in stream
TARGET_CONNECT_RATIO = 2.5  # time to connect every stream over the reference's
TARGET_CHAT_P50_MS = 5.0  # chat POST to delivery, 100 clients, one message at a time
TARGET_THROUGHPUT_RATIO = 0.5  # chat messages accepted/s over the rejected-request ceiling
TARGET_REDIS_P99_RATIO = 1.5  # cross-process broadcast p99 over the single process's
TARGET_N = 10_000
# The restart storm: every stream back within this many times the fresh connect time.
TARGET_STORM_RESUME_RATIO = 1.5

# Load generator: streams and files it needs beyond N, for its own pipes and the POSTs.
FD_MARGIN = 256

Sender = Callable[[str, int], Awaitable[None]]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
