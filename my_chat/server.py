"""Start-up: the guide's module 5, the part that puts every component together.

The guide's ``main()`` loads config, builds the service context, starts the manager's
goroutine, the gRPC and HTTP servers and the periodic broadcast. ``create_app`` does the same
for one aiohttp application: the context is built when the app starts, the heartbeat loops
and the retention sweep run as tasks beside it, and on shutdown every stream is told to
reconnect before it is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from my_chat import auth, chat, connection, grpc_push, metrics, openapi, push
from my_chat.accounts import AccountStore, SqliteAccountStore
from my_chat.broker import Broker, LocalBroker
from my_chat.client_manager import ClientManager
from my_chat.config import Settings
from my_chat.connection import suggested_retry
from my_chat.context import CONTEXT, ServiceContext
from my_chat.errors import NotFound, StartupError, json_errors
from my_chat.events import Frame, reconnect_frame
from my_chat.guards import add_security_headers, request_guards
from my_chat.history import LatestWindow
from my_chat.metrics import METRICS, Metrics
from my_chat.parts import Parts, check_parts, import_parts, report_parts
from my_chat.presence import LocalPresence, Presence
from my_chat.ratelimit import RateLimiter, RateLimits
from my_chat.sessions import open_sessions
from my_chat.store import MessageStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("my_chat")

STATIC_DIR = Path(__file__).parent / "static"
SETTINGS = web.AppKey("settings", Settings)
TASKS = web.AppKey("background_tasks", list)


def read_or_create_secret(given: str | None, env_name: str, path: Path) -> tuple[str, bool]:
    """``given`` if set, else the environment, else ``path``, else a new one written there.

    Returns the secret and whether it was just created.
    """
    if given:
        return given, False
    from_env = os.environ.get(env_name)
    if from_env:
        return from_env, False
    if path.exists():
        return path.read_text().strip(), False
    secret = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret, True


async def open_store(parts: Parts, settings: Settings) -> MessageStore:
    """The exercise's store, or ``NoHistory`` while that part is not done (its stand-in)."""
    return await parts.message_store.MessageStore.open(str(settings.database_path))


async def build_context(settings: Settings, manager: ClientManager | None = None) -> ServiceContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    parts = import_parts(settings.exercises)
    await check_parts(parts)
    report_parts(parts)

    if manager is None:  # not `manager or ...`: an empty manager is false (it has __len__)
        manager = ClientManager()
    services = await open_services(settings, manager, parts)
    broker = services.broker
    if settings.redis_url or parts.done("message_store"):  # nothing to share without a store
        broker.latest_window = LatestWindow(settings.history_on_connect)
    jwt_secret = await choose_jwt_secret(settings, services.redis)
    service_key, created = read_or_create_secret(
        settings.service_key, "MY_CHAT_SERVICE_KEY", settings.data_dir / "service_key"
    )
    if created:
        logger.info(
            "service key for the push API (saved in %s): %s",
            settings.data_dir / "service_key",
            service_key,
        )

    sessions = await open_sessions(settings, parts, jwt_secret, manager, broker)
    return ServiceContext(
        settings=settings,
        parts=parts,
        manager=manager,
        accounts=services.accounts,
        store=services.store,
        broker=broker,
        presence=services.presence,
        sessions=sessions,
        service_key=service_key,
        message_limiter=services.limits.messages,
        signup_limiter=services.limits.signups,
        login_limiter=services.limits.login_failures,
    )


async def choose_jwt_secret(settings: Settings, redis: Redis | None) -> str:
    """Settings, else the environment; else in Redis mode the secret kept in Redis (so a
    token from one process is good on every other), else the file in ``data_dir``."""
    given = settings.jwt_secret or os.environ.get("MY_CHAT_JWT_SECRET")
    if redis is not None and not given:
        from redis.exceptions import RedisError

        from my_chat.redis_accounts import shared_secret

        try:
            return await shared_secret(redis)
        except RedisError as error:
            raise StartupError(f"cannot read the shared JWT secret from Redis: {error}") from None
    secret, _ = read_or_create_secret(
        settings.jwt_secret, "MY_CHAT_JWT_SECRET", settings.data_dir / "jwt_secret"
    )
    return secret


def protect_database_files(database: Path) -> None:
    """Make the database and its WAL and shared-memory files readable by this user only.

    SQLite creates ``-wal`` and ``-shm`` with the database file's own permissions, so
    creating that file 0600 before SQLite opens it covers all three; chmod fixes older ones.
    """
    if not database.exists():
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)


@dataclass
class Services:
    """The backends, of one kind: SQLite and in-process, or all of them in Redis."""

    accounts: AccountStore
    store: MessageStore
    broker: Broker
    presence: Presence
    limits: RateLimits
    redis: Redis | None = None  # Redis mode: the command client (the broker closes it)


# --8<-- [start:open-services]
async def open_services(settings: Settings, manager: ClientManager, parts: Parts) -> Services:
    """Accounts, message store, broker, presence and rate limits: one process, or shared
    through Redis.

    A third backend is one more branch here, building its kinds of the same interfaces.
    """
    if settings.redis_url:
        from my_chat.redis_accounts import RedisAccountStore
        from my_chat.redis_broker import RedisBroker
        from my_chat.redis_client import connect
        from my_chat.redis_presence import RedisPresence
        from my_chat.redis_ratelimit import RedisRateLimiter
        from my_chat.redis_store import RedisMessageStore

        clients = await connect(settings.redis_url)
        redis_accounts = RedisAccountStore(clients.commands)
        await redis_accounts.add_missing_skeletons()
        redis_store = RedisMessageStore(clients.commands, settings.retention_count)
        return Services(
            accounts=redis_accounts,
            store=redis_store,
            broker=RedisBroker(clients, redis_store, manager, parts),
            presence=RedisPresence(clients.commands, manager, settings),
            limits=RateLimits.of(settings, partial(RedisRateLimiter, clients.commands)),
            redis=clients.commands,
        )
    protect_database_files(settings.database_path)
    accounts = await SqliteAccountStore.open(str(settings.database_path))
    store = await open_store(parts, settings)
    return Services(
        accounts=accounts,
        store=store,
        broker=LocalBroker(store, manager, parts),
        presence=LocalPresence(
            manager, grace=settings.presence_grace, window=settings.presence_window
        ),
        limits=RateLimits.of(settings, lambda _name, burst, rate: RateLimiter(burst, rate)),
    )


# --8<-- [end:open-services]


async def retention_sweep(context: ServiceContext, backoff: Backoff) -> None:
    """Prune old messages every ``retention_interval`` seconds, forever.

    A sweep that fails (the database is locked, Redis is away) is logged and tried again
    sooner, backing off; it never ends the task. A store without ``prune`` (an exercise not
    finished yet) keeps the task idle rather than ended, so ``/healthz`` stays truthful.
    """
    settings = context.settings
    while True:
        older_than = None
        if settings.retention_days > 0:
            older_than = int((time.time() - settings.retention_days * 86400) * 1000)
        try:
            deleted = await context.store.prune(settings.retention_count, older_than)
        except NotImplementedError:
            deleted = 0
        except Exception as error:
            delay = backoff.failed()
            logger.warning("retention sweep failed (%r); trying again in %.1f s", error, delay)
            await asyncio.sleep(delay)
            continue
        backoff.succeeded()
        if deleted:
            logger.info("retention: deleted %d old messages", deleted)
            window = context.broker.latest_window
            if window is not None:
                window.reset()  # it may hold some of them
        await asyncio.sleep(settings.retention_interval)


class Backoff:
    """Waits that double after each failure in a row, from ``first`` up to ``most`` seconds.

    ``failures`` counts every failure since start-up; ``/healthz`` shows it.
    """

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, max(first, most)
        self.in_a_row = 0
        self.failures = 0

    def failed(self) -> float:
        self.in_a_row += 1
        self.failures += 1
        return min(self.most, self.first * 2 ** min(self.in_a_row - 1, 30))

    def succeeded(self) -> None:
        self.in_a_row = 0


async def supervised(name: str, loop: Callable[[], Awaitable[None]], backoff: Backoff) -> None:
    """Run ``loop()``, and run it again after a pause whenever it raises.

    The heartbeat loops come from the exercises, so they may raise; a bug in one tick must
    not end the heartbeats for good. If ``loop()`` returns, the task ends, and
    ``/healthz`` reports it as stopped.
    """
    while True:
        started = time.monotonic()
        try:
            await loop()
            logger.error("background task %s returned; it is meant to run forever", name)
            return
        except Exception:
            if time.monotonic() - started > 60:
                backoff.succeeded()  # it ran a good while: start the back-off over
            delay = backoff.failed()
            logger.exception("background task %s failed; restarting it in %.1f s", name, delay)
        await asyncio.sleep(delay)


@dataclass
class BackgroundTask:
    task: asyncio.Task
    backoff: Backoff

    def state(self) -> dict[str, object]:
        return {"running": not self.task.done(), "failures": self.backoff.failures}


# --8<-- [start:background-tasks]
def background_tasks(context: ServiceContext) -> list[BackgroundTask]:
    """The retention sweep and the two heartbeat loops, each restarted after an error."""
    settings = context.settings
    retention = Backoff(first=1.0, most=settings.retention_interval)
    tasks = [
        BackgroundTask(
            asyncio.create_task(retention_sweep(context, retention), name="retention"), retention
        )
    ]
    heartbeat, manager = context.parts.heartbeat, context.manager  # or its stand-in
    loops = {
        "periodic-heartbeats": lambda: heartbeat.periodic_heartbeats(
            manager, settings.periodic_interval
        ),
        "healthcheck-heartbeats": lambda: heartbeat.healthcheck_heartbeats(
            manager, settings.healthcheck_interval
        ),
    }
    for name, loop in loops.items():
        backoff = Backoff(first=0.5, most=30.0)
        task = asyncio.create_task(supervised(name, loop, backoff), name=name)
        tasks.append(BackgroundTask(task, backoff))
    for background in tasks:
        background.task.add_done_callback(_report_stop)
    return tasks


# --8<-- [end:background-tasks]


def _report_stop(task: asyncio.Task) -> None:
    if task.cancelled():
        return  # shutting down
    error = task.exception()
    logger.error("background task %s stopped%s", task.get_name(), f": {error!r}" if error else "")


def stopped_tasks(app: web.Application) -> list[str]:
    """The background tasks that ended while the server still runs (none should)."""
    return sorted(b.task.get_name() for b in app.get(TASKS, []) if b.task.done())


# --8<-- [start:lifecycle]
async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    measured = app[METRICS]
    context = await build_context(app[SETTINGS], measured.client_manager())
    context.store = measured.replay_counting(context.store)
    if context.broker.latest_window is not None:
        context.broker.latest_window = measured.replay_counting_window(context.broker.latest_window)
    measured.watch(context)
    app[CONTEXT] = context
    await context.broker.start()
    await context.presence.start()
    # After the broker: in Redis mode, revocations made from here on reach its reader.
    await context.sessions.start()
    tasks = background_tasks(context)
    app[TASKS] = tasks
    yield
    for background in tasks:
        background.task.cancel()
    await asyncio.gather(*(b.task for b in tasks), return_exceptions=True)
    await context.broker.stop()
    await context.presence.stop()
    await context.sessions.close()
    await context.store.close()
    await context.accounts.close()
    await context.broker.close()  # last: in Redis mode it closes the connections all use


async def _say_goodbye(app: web.Application) -> None:
    """On shutdown, tell every stream to reconnect soon, then end it."""
    context = app.get(CONTEXT)
    if context is None:
        return

    def farewell() -> Frame:  # one per stream: each its own jittered delay
        return reconnect_frame("shutdown", suggested_retry(context.settings))

    context.manager.close_all(farewell)
    # Let the stream handlers finish their last write and unregister.
    for _ in range(50):
        if not len(context.manager):
            break
        await asyncio.sleep(0.01)


# --8<-- [end:lifecycle]


status_routes = web.RouteTableDef()


@status_routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    parts = request.app[CONTEXT].parts
    return web.json_response({"exercises": dict(parts.status), "mode": parts.source})


@status_routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while every background task runs; 503 naming the ones that stopped."""
    stopped = stopped_tasks(request.app)
    tasks = {b.task.get_name(): b.state() for b in request.app.get(TASKS, [])}
    if stopped:
        return web.json_response(
            {
                "ok": False,
                "error": "background_task_stopped",
                "message": f"background task(s) stopped: {', '.join(stopped)}",
                "stopped": stopped,
                "tasks": tasks,
            },
            status=503,
        )
    return web.json_response({"ok": True, "tasks": tasks})


@status_routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


# Not add_static: its FileResponse answers a missing file with an empty, untyped 404 that no
# middleware sees. The page's few files are known at start-up; anything else is a JSON 404.
# Names are looked up in these sets, never joined from the request, so no "../" can escape.
STATIC_FILES = frozenset(p.name for p in STATIC_DIR.iterdir() if p.is_file())
TEXTS_DIR = STATIC_DIR / "texts"  # the page's message tables, one per language
TEXT_FILES = frozenset(p.name for p in TEXTS_DIR.iterdir() if p.is_file())


def _known_file(
    request: web.Request, folder: Path, known: frozenset[str], what: str
) -> web.FileResponse:
    filename = request.match_info["filename"]
    if filename not in known:
        raise NotFound("not_found", f"there is no {what} {filename!r}")
    return web.FileResponse(folder / filename)


@status_routes.get("/static/{filename}")
async def static_file(request: web.Request) -> web.FileResponse:
    return _known_file(request, STATIC_DIR, STATIC_FILES, "static file")


@status_routes.get("/static/texts/{filename}")
async def page_texts(request: web.Request) -> web.FileResponse:
    return _known_file(request, TEXTS_DIR, TEXT_FILES, "message table")


# --8<-- [start:create-app]
def create_app(settings: Settings | None = None) -> web.Application:
    """The whole chat server as one aiohttp application."""
    settings = settings or Settings()
    app = web.Application(
        middlewares=[
            json_errors,
            metrics.count_requests,
            request_guards(settings.allowed_origins),
        ],
        client_max_size=settings.max_body,
    )
    app.on_response_prepare.append(add_security_headers)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    for table in (
        auth.routes,
        chat.routes,
        connection.routes,
        push.routes,
        metrics.routes,
        status_routes,
    ):
        app.add_routes(table)
    app.add_routes(openapi.routes)
    # In this order at start-up, and the reverse at clean-up: gRPC stops first.
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(metrics.sample_loop_lag)
    app.cleanup_ctx.append(grpc_push.grpc_server)
    app.on_shutdown.append(_say_goodbye)
    return app


# --8<-- [end:create-app]
