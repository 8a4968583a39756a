"""``GET /metrics``: the gateway's numbers in Prometheus's text format.

``/api/stats`` answers a person with JSON; a monitoring system scrapes this instead. The
numbers are made with prometheus-client, each application with its own
``CollectorRegistry`` (never the library's global one), so several apps in one process, as in
the tests and notebooks, keep separate counts.

Guarded by the service key, on the main port, rather than served on a second, loopback-only
port: a Prometheus server usually runs on another machine, which a loopback port would shut
out, and one port is one thing less to open, proxy and document. The same key already
guards ``/api/stats``, which tells the same things. Prometheus sends it with
``authorization: {credentials_file: ...}`` in its scrape configuration.

Cost on the hot path: nothing per connection. The stream counters the client manager keeps
anyway (``ManagerStats``) are read when a scrape comes (``ManagerCollector``); a fan-out is
timed once, however many connections it reaches; messages and pushes are counted once per
request, by a middleware that looks only at three routes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from my_chat.auth import require_service
from my_chat.client_manager import ClientManager
from my_chat.context import CONTEXT, ServiceContext
from my_chat.errors import ApiError
from my_chat.events import Frame
from my_chat.history import Block

logger = logging.getLogger("my_chat")

routes = web.RouteTableDef()

# The requests counted, by method and path: what each one is.
COUNTED_REQUESTS = {
    ("POST", "/api/messages"): "message",
    ("POST", "/api/push"): "push",
    ("POST", "/api/broadcast"): "broadcast",
}
SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
SECONDS_BUCKETS += (0.25, 0.5, 1.0, 2.5, 5.0)
REPLAY_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 200, 500)


class Metrics:
    """Every number ``/metrics`` reports, in one registry per application."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.messages_accepted = Counter(
            "my_chat_messages_accepted",
            "POST /api/messages accepted by this process: stored and sent out",
            registry=registry,
        )
        self.messages_refused = Counter(
            "my_chat_messages_refused",
            "POST /api/messages refused, by the error code answered",
            ["reason"],
            registry=registry,
        )
        self.pushes = Counter(
            "my_chat_pushes",
            "Push and broadcast calls from other services, by transport, call and outcome",
            ["transport", "call", "outcome"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "my_chat_publish_seconds",
            "From a POST /api/messages arriving to its 201: stored and handed to the streams",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.fanout_seconds = Histogram(
            "my_chat_fanout_seconds",
            "Time to hand one frame to every connection it is for (one broadcast or push)",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.replay_messages = Histogram(
            "my_chat_replay_messages",
            "Messages read from history to replay to a stream: the latest ones for a new "
            "stream, or one page (up to 500) of what a resuming stream missed",
            buckets=REPLAY_BUCKETS,
            registry=registry,
        )
        self.loop_lag_seconds = Gauge(
            "my_chat_event_loop_lag_seconds",
            "How late the latest periodic timer fired: time the event loop was busy elsewhere",
            registry=registry,
        )
        self.loop_lag = Histogram(
            "my_chat_event_loop_lag",
            "How late each periodic timer fired, in seconds",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.users_online = Gauge(
            "my_chat_users_online",
            "Users with at least one open stream, on any process (as the broker knows it)",
            registry=registry,
        )
        self.manager_collector = ManagerCollector()
        registry.register(self.manager_collector)

    def watch(self, context: ServiceContext) -> None:
        """Report the streams of ``context``'s client manager from now on."""
        self.manager_collector.manager = context.manager

    def client_manager(self) -> ClientManager:
        return TimedClientManager(self.fanout_seconds)

    def replay_counting(self, store: Any) -> Any:
        return ReplayCountingStore(store, self.replay_messages)

    def replay_counting_window(self, window: Any) -> Any:
        return ReplayCountingWindow(window, self.replay_messages)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def sample_loop_lag(self, interval: float) -> None:
        """Sleep ``interval`` again and again; whatever more it took is the loop's lag."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(interval)
            lag = max(0.0, loop.time() - started - interval)
            self.loop_lag_seconds.set(lag)
            self.loop_lag.observe(lag)


METRICS = web.AppKey("metrics", Metrics)


# --8<-- [start:collector]
class ManagerCollector(Collector):
    """The client manager's own counters, read at scrape time: no cost per connection."""

    def __init__(self) -> None:
        self.manager: ClientManager | None = None

    def collect(self) -> Iterable[Metric]:
        manager = self.manager
        if manager is None:
            return
        stats = manager.stats
        open_streams = GaugeMetricFamily("my_chat_streams_open", "Streams open on this process")
        open_streams.add_metric([], len(manager))
        yield open_streams
        opened = CounterMetricFamily("my_chat_streams_opened", "Streams opened on this process")
        opened.add_metric([], stats.connections_opened)
        yield opened
        # No "shutdown" reason: the process stops listening, /metrics included, before it ends
        # the streams, so no scrape could ever see that number.
        # Streams ended because their sign-in was revoked, if the manager counts them in
        # ``ManagerStats.revoked_disconnects``; 0 where nothing revokes streams.
        revoked = getattr(stats, "revoked_disconnects", 0)
        closed = CounterMetricFamily(
            "my_chat_streams_closed", "Streams closed on this process, by reason", labels=["reason"]
        )
        closed.add_metric(["slow"], stats.slow_disconnects)
        closed.add_metric(["revoked"], revoked)
        closed.add_metric(
            ["client_gone"], stats.connections_closed - stats.slow_disconnects - revoked
        )
        yield closed
        deliveries = CounterMetricFamily(
            "my_chat_deliveries", "Frames handed to a connection (one per connection reached)"
        )
        deliveries.add_metric([], stats.deliveries)
        yield deliveries


# --8<-- [end:collector]


class TimedClientManager(ClientManager):
    """The client manager, timing each fan-out once: never a metric call per connection."""

    def __init__(self, fanout_seconds: Histogram) -> None:
        super().__init__()
        self._fanout_seconds = fanout_seconds

    def broadcast(self, frame: Frame | bytes) -> int:
        started = time.perf_counter()
        try:
            return super().broadcast(frame)
        finally:
            self._fanout_seconds.observe(time.perf_counter() - started)

    def send_to_users(self, users: Iterable[str], frame: Frame | bytes) -> int:
        started = time.perf_counter()
        try:
            return super().send_to_users(users, frame)
        finally:
            self._fanout_seconds.observe(time.perf_counter() - started)


class ReplayCountingStore:
    """The message store, observing how many messages each replay read returns.

    Only the two reads replays use (``latest``, ``after``) are counted; everything else goes
    straight to the store.
    """

    def __init__(self, store: Any, replay_messages: Histogram) -> None:
        self._store = store
        self._replay_messages = replay_messages

    async def latest(self, viewer: str, limit: int) -> list:
        batch = await self._store.latest(viewer, limit)
        self._replay_messages.observe(len(batch))
        return batch

    async def after(self, last_id: int, viewer: str, limit: int) -> list:
        batch = await self._store.after(last_id, viewer, limit)
        if batch:  # the empty read that ends every resume is not a replay of its own
            self._replay_messages.observe(len(batch))
        return batch

    @property
    def uncounted(self) -> Any:
        """The store itself, for a read that is counted elsewhere."""
        return self._store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ReplayCountingWindow:
    """The shared history block (``history.LatestWindow``), observing each block it serves:
    a fresh stream served from it is a replay of ``count`` messages that never reads the store."""

    def __init__(self, window: Any, replay_messages: Histogram) -> None:
        self._window = window
        self._replay_messages = replay_messages

    def block_for(self, viewer: str) -> Block | None:
        block = self._window.block_for(viewer)
        if block is not None:
            self._replay_messages.observe(block.messages)
        return block

    async def after(self, store: Any, viewer: str, last_id: int, limit: int) -> list:
        """A resume's read, counted once per stream, shared or not (``LatestWindow.after``)."""
        store = getattr(store, "uncounted", store)
        batch = await self._window.after(store, viewer, last_id, limit)
        if batch:
            self._replay_messages.observe(len(batch))
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._window, name)


@web.middleware
def count_requests(request: web.Request, handler) -> Awaitable[web.StreamResponse]:
    """Count messages and pushes, accepted or refused (by error code), and time messages.

    Every other request gets the handler's own awaitable: no frame of this middleware stays
    suspended beside each open SSE stream.
    """
    kind = COUNTED_REQUESTS.get((request.method, request.path))
    if kind is None:
        return handler(request)
    return _counted(request, handler, kind)


async def _counted(request: web.Request, handler, kind: str) -> web.StreamResponse:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as error:
        _count(metrics, kind, error.code)
        raise
    except web.HTTPException as error:
        if error.status >= 400:
            _count(metrics, kind, f"http_{error.status}")
        raise
    if kind == "message":
        metrics.publish_seconds.observe(time.perf_counter() - started)
    _count(metrics, kind, "accepted")
    return response


def _count(metrics: Metrics, kind: str, outcome: str) -> None:
    if kind != "message":
        metrics.pushes.labels("http", kind, outcome).inc()
    elif outcome == "accepted":
        metrics.messages_accepted.inc()
    else:
        metrics.messages_refused.labels(outcome).inc()


async def sample_loop_lag(app: web.Application) -> AsyncIterator[None]:
    """Run the loop-lag sampler for as long as the app runs (an aiohttp cleanup context)."""
    metrics = app[METRICS]
    task = asyncio.create_task(
        metrics.sample_loop_lag(app[CONTEXT].settings.loop_lag_interval), name="loop-lag"
    )
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@routes.get("/metrics")
async def metrics_page(request: web.Request) -> web.Response:
    require_service(request)
    metrics = request.app[METRICS]
    context = request.app[CONTEXT]
    try:
        metrics.users_online.set(len(await context.presence.online_users()))
    except ApiError as error:  # Redis unreachable: report the rest, keep the last count
        logger.warning("/metrics: could not count who is online: %s", error.message)
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
