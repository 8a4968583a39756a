"""Settings: everything start-up can change, with the embedded defaults ``make chat`` uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("var"))

    # Heartbeats, in seconds; fractions work so tests and notebooks can run them fast.
    periodic_interval: float = 30.0
    healthcheck_interval: float = 90.0
    # The reconnection delay sent as ``retry:`` and the one suggested on shutdown. Browsers
    # wait 3 s when told nothing; a restart takes about 1 s here, so 3 s would be mostly
    # waiting (appendix-performance.md#jitter).
    retry_ms: int = 1000
    # Up to this many ms added at random to each stream's retry (0: none), so that after a
    # restart the streams do not all come back in the same instant.
    retry_jitter_ms: int = 1000

    # Outgoing bytes a connection may have waiting before it counts as too slow and is closed.
    buffer_limit: int = 256 * 1024

    history_on_connect: int = 50
    history_page_max: int = 200
    # Retention: at most this many messages, none older than this many days (0 turns a cap off).
    retention_count: int = 100_000
    retention_days: float = 30.0

    max_text: int = 2000
    max_body: int = 64 * 1024
    # A user may send ``message_burst`` messages at once, refilled at ``message_rate`` a second.
    message_burst: int = 20
    message_rate: float = 2.0
    # Sign-ups and failed sign-ins per client address and minute (0 turns the limit off).
    signup_per_minute: int = 30
    login_failures_per_minute: int = 10
    # Reverse proxies (addresses or networks such as 10.0.0.0/8) whose X-Forwarded-For is
    # believed, so that the limits above see the browser's address, not the proxy's.
    trusted_proxies: tuple[str, ...] = ()

    # --- Issue 11, items 2 and 4: slow clients and presence churn ---
    # Deadlines for a client, in seconds (0 turns one off; see my_chat/deadlines.py): the
    # whole request head, then the body, and how long an idle keep-alive connection stays.
    request_head_timeout: float = 10.0
    request_body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    # A user whose last stream closes is announced offline only after this many seconds, so
    # a reconnection in between announces nothing; changes go out at most once per window.
    # The grace outlasts the reconnection delay a page is told (retry_ms plus jitter, 2 s).
    presence_grace: float = 5.0
    presence_window: float = 0.25
    # --- end of issue 11 items 2 and 4 ---
    # Redis mode: a process that stops reporting for this many seconds (killed, cut off) is
    # retired, and its users are announced offline unless they are online elsewhere.
    presence_ttl: float = 15.0

    token_ttl: float = 24 * 3600.0
    # Secrets: from the environment if set there, else generated once into ``data_dir``.
    jwt_secret: str | None = None
    service_key: str | None = None

    # Limits against abuse and failure (the security appendix explains each one).
    # Seconds between retention sweeps; a failed sweep is retried sooner, backing off.
    retention_interval: float = 60.0
    # Open streams one user may have, and the whole server (0 turns a cap off).
    max_streams_per_user: int = 20
    max_streams: int = 10_000
    # Messages one resume (Last-Event-ID) replays at most; a client further behind is told
    # with a ``recovered`` event and loads the rest through the paged history API.
    replay_max: int = 1000
    # Origins besides the server's own (its Host) whose pages may POST, e.g. when a proxy
    # rewrites Host: ("https://chat.example.com",).
    allowed_origins: tuple[str, ...] = ()

    # The gRPC push service (sse.proto) listens on this port of ``host``; 0 turns it off.
    grpc_port: int = 0
    # Seconds between the event-loop lag samples that /metrics reports.
    loop_lag_interval: float = 1.0

    exercises: bool = False
    redis_url: str | None = None
    # my_chat's log level; "debug" adds a line per stream opened and closed (libraries stay
    # at info).
    log_level: str = "info"
    uvloop: bool = False

    @property
    def database_path(self) -> Path:
        return self.data_dir / "my_chat.sqlite3"
