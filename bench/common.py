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

# Targets from the issue, checked at N = 10,000 (or the largest N run).
TARGET_P99_RATIO = 1.5
TARGET_RATE_RATIO = 0.75
TARGET_BYTES_PER_CONNECTION = 16 * 1024
TARGET_CONNECT_SECONDS = 10.0
TARGET_CHAT_P50_MS = 5.0
TARGET_N = 10_000
# The restart storm: every stream back within this many times the fresh connect time.
TARGET_STORM_RESUME_RATIO = 1.5

# Load generator: streams and files it needs beyond N, for its own pipes and the POSTs.
FD_MARGIN = 256

Sender = Callable[[str, int], Awaitable[None]]


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
