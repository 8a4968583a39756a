"""Sessions: the tokens of the JWT exercise, made revocable; or, until it is done, in-memory ones.

A JWT is valid until it expires, whatever the server thinks of it later: that is what makes it
cheap to check, and why logging out needs something on the server. my_chat keeps two facts:

* **Revoked token ids.** Every token carries a random ``jti``. ``POST /api/logout`` puts it on
  a list that is kept until the token would have expired anyway (after that the signature
  check refuses it by itself), so the list never grows beyond the tokens of one ``ttl``.
* **A generation per user.** Every token carries ``gen``, the user's generation when it was
  issued. "Log out everywhere" and a password change raise the generation by one, which
  refuses every older token of that user at once, however many there are.

Both lists are kept in memory, so checking a token costs the signature check plus two dict
lookups: no database read per request, and nothing at all per delivered frame (a stream is
checked when it opens; a revocation closes it). The lists are written through to SQLite (one
process) or Redis (several), and loaded at start-up; in Redis mode every revocation also goes
out on the events stream, so every process applies it and closes its own streams of that user.

The tokens themselves come from the exercise (``solutions/tokens.py`` or the learner's
``exercises/tokens.py``): my_chat asks it for a token, adds ``jti`` and ``gen`` to the claims
it made, and signs them again with the same key and algorithm. The exercise's
``verify_token`` then checks the token exactly as before (claims it does not know are
ignored). A token without ``jti``, signed by another service that holds the key, still works:
its id is then a hash of the token, and its generation is 0.

With ``--exercises`` and the JWT exercise not yet done, sign-in still works so the other
exercises can be tried in the browser: the server hands out random session ids that it keeps
in memory (and forgets on restart), and says so on start-up and in the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import aiosqlite
import jwt

from my_chat.client_manager import Client, ClientManager
from my_chat.errors import InvalidToken
from my_chat.events import Frame, error_frame
from my_chat.parts import Parts
from my_chat.transaction import write_transaction

if TYPE_CHECKING:
    from my_chat.broker import Broker
    from my_chat.config import Settings

logger = logging.getLogger("my_chat")

# The `error` event codes a stream ends with; the page signs out on either.
SESSION_REVOKED = "session_revoked"
SESSION_EXPIRED = "session_expired"
# Verified tokens kept so that the next request with the same token skips the signature check.
VERIFIED_CACHE_SIZE = 10_000


class SessionRevoked(InvalidToken):
    """The token was valid, but its session was ended: logout, logout-all, new password."""


class SessionExpired(InvalidToken):
    """The token's ``exp`` has passed."""


@dataclass(frozen=True, slots=True)
class Session:
    """Who a token names, and what identifies the token for revocation."""

    user: str
    token_id: str
    generation: int
    expires: float  # seconds since the epoch


def session_end_frame(code: str) -> Frame:
    """The last frame of a stream whose session ended: an ``error`` event the page knows."""
    text = {
        SESSION_REVOKED: "this session was signed out; sign in again",
        SESSION_EXPIRED: "this session has expired; sign in again",
    }[code]
    return error_frame(code, text)


def end_streams(connections: list[Client], code: str) -> int:
    """Send each stream the session-end event and close it; returns how many were closed."""
    frame = session_end_frame(code)
    for connection in connections:
        connection.send(frame)
        connection.close()
    return len(connections)


# --8<-- [start:expiry]
class ExpiryWatch:
    """Ends each stream with ``session_expired`` when its token expires: one timer for all.

    A heap of (expiry, order, stream) and one event-loop timer, set for the earliest
    expiry. Opening a stream is a push onto the heap and closing it a note in ``_forgotten``:
    no timer per stream, which would cost an asyncio ``TimerHandle``, its arguments and a
    copy of the context (about 300 bytes) for every open stream, and would keep asyncio from
    clearing the cancelled timers of request heads out of its own heap. The timer fires only
    for the rare stream that outlives its token (the ttl is a day), on time; a periodic sweep
    would visit every open stream on every round, and close late by up to its period.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Client]] = []
        self._order = itertools.count()  # ties never compare two streams
        # Streams closed before their expiry, still in the heap (by id: the heap holds them,
        # so no other object can have the same id meanwhile). Removed in bulk, see forget.
        self._forgotten: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def watch(self, connection: Client, expires: float) -> None:
        """End ``connection`` at ``expires`` (seconds since the epoch) unless it closed."""
        heapq.heappush(self._heap, (expires, next(self._order), connection))
        if expires < self._timer_at:
            self._set_timer(expires)

    def forget(self, connection: Client) -> None:
        """The stream closed: it is no longer to be ended."""
        self._forgotten.add(id(connection))
        if len(self._forgotten) > 64 and 2 * len(self._forgotten) > len(self._heap):
            forgotten, self._forgotten = self._forgotten, set()
            self._heap = [entry for entry in self._heap if id(entry[2]) not in forgotten]
            heapq.heapify(self._heap)

    def __len__(self) -> int:
        """How many open streams are watched."""
        return len(self._heap) - len(self._forgotten)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, math.inf

    def _set_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, when - time.time())
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)
        self._timer_at = when

    def _expire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = time.time()
        due = []
        while self._heap and self._heap[0][0] <= now:
            _, _, connection = heapq.heappop(self._heap)
            if id(connection) in self._forgotten:
                self._forgotten.discard(id(connection))
            else:
                due.append(connection)
        if self._heap:
            self._set_timer(self._heap[0][0])
        end_streams(due, SESSION_EXPIRED)


# --8<-- [end:expiry]


class Sessions(Protocol):
    # Every open stream, to be ended when its token expires.
    expiries: ExpiryWatch

    def issue(self, username: str) -> str: ...

    def verify(self, token: str) -> Session: ...

    def is_revoked(self, session: Session) -> bool: ...

    async def revoke(self, session: Session) -> None: ...

    async def revoke_all(self, username: str) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class RevocationStore(Protocol):
    """Where revocations outlive the process: SQLite here, Redis with ``--redis``."""

    async def load(self, now: float) -> tuple[dict[str, float], dict[str, int]]:
        """The revoked token ids that have not expired (id -> exp), and every generation."""
        ...

    async def revoke_token(self, user: str, token_id: str, expires: float) -> None: ...

    async def revoke_user(self, user: str) -> int:
        """Raise ``user``'s generation by one; returns the new generation."""
        ...

    async def close(self) -> None: ...


class Revocations:
    """The in-memory lists every token check reads, and the streams they close."""

    def __init__(self, manager: ClientManager) -> None:
        self.manager = manager
        self.revoked: dict[str, float] = {}
        self.generations: dict[str, int] = {}

    def load(self, revoked: dict[str, float], generations: dict[str, int]) -> None:
        self.revoked.update(revoked)
        for user, generation in generations.items():
            self.generation_reached(user, generation)

    def generation(self, user: str) -> int:
        return self.generations.get(user, 0)

    def is_revoked(self, session: Session) -> bool:
        return session.token_id in self.revoked or session.generation < self.generation(
            session.user
        )

    def token_revoked(self, user: str, token_id: str, expires: float) -> int:
        """Apply one revoked token (here or from another process); returns streams closed."""
        now = time.time()
        if expires > now:
            self.revoked[token_id] = expires
        self._forget_expired(now)
        return end_streams(
            [c for c in self.manager.connections_of(user) if _token_of(c) == token_id],
            SESSION_REVOKED,
        )

    def generation_reached(self, user: str, generation: int) -> int:
        """Apply a user's new generation; returns how many of their streams it closed."""
        if generation <= self.generation(user):
            return 0
        self.generations[user] = generation
        return end_streams(
            [c for c in self.manager.connections_of(user) if _generation_of(c) < generation],
            SESSION_REVOKED,
        )

    def _forget_expired(self, now: float) -> None:
        # Cheap enough to do on every logout: the list holds the logouts of one token ttl.
        for token_id in [t for t, expires in self.revoked.items() if expires <= now]:
            del self.revoked[token_id]


def _token_of(connection: Client) -> str | None:
    return connection.session.token_id if connection.session is not None else None


def _generation_of(connection: Client) -> int:
    return connection.session.generation if connection.session is not None else 0


# --8<-- [start:jwt-sessions]
class JwtSessions:
    """Tokens from the JWT exercise, with a token id and a generation, revocable."""

    def __init__(
        self,
        parts: Parts,
        secret: str,
        ttl: float,
        store: RevocationStore,
        manager: ClientManager,
    ) -> None:
        self._tokens = parts.tokens
        self._secret = secret
        self._ttl = ttl
        self.store = store
        self.revocations = Revocations(manager)
        self.expiries = ExpiryWatch()
        # token -> its session, for tokens whose signature was checked already.
        self._verified: OrderedDict[str, Session] = OrderedDict()

    async def start(self) -> None:
        self.revocations.load(*await self.store.load(time.time()))

    async def close(self) -> None:
        self.expiries.close()
        await self.store.close()

    def issue(self, username: str) -> str:
        token = self._tokens.issue_token(username, secret=self._secret, ttl=self._ttl)
        claims = jwt.decode(token, options={"verify_signature": False})
        claims["jti"] = secrets.token_urlsafe(16)
        claims["gen"] = self.revocations.generation(username)
        algorithm = jwt.get_unverified_header(token).get("alg", "HS256")
        return jwt.encode(claims, self._secret, algorithm=algorithm)

    def verify(self, token: str) -> Session:
        session = self._verified.get(token)
        if session is None:
            session = self._check_signature(token)
            self._verified[token] = session
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        if session.expires <= time.time():
            raise SessionExpired("the token has expired")
        if self.revocations.is_revoked(session):
            raise SessionRevoked("this session was signed out")
        return session

    def _check_signature(self, token: str) -> Session:
        try:
            user = self._tokens.verify_token(token, secret=self._secret)
        except InvalidToken as error:
            if isinstance(error.__cause__, jwt.ExpiredSignatureError):
                raise SessionExpired(str(error)) from error
            raise
        # The exercise has just checked the signature; this only reads the claims.
        claims = jwt.decode(token, options={"verify_signature": False})
        token_id = claims.get("jti")
        if not isinstance(token_id, str) or not token_id:
            token_id = hashlib.sha256(token.encode()).hexdigest()
        generation = claims.get("gen", 0)
        if not isinstance(generation, int):
            raise InvalidToken("the token's generation is not a number")
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise InvalidToken("the token has no expiry")
        return Session(user, token_id, generation, float(expires))

    def is_revoked(self, session: Session) -> bool:
        return self.revocations.is_revoked(session)

    async def revoke(self, session: Session) -> None:
        await self.store.revoke_token(session.user, session.token_id, session.expires)
        self.revocations.token_revoked(session.user, session.token_id, session.expires)

    async def revoke_all(self, username: str) -> None:
        generation = await self.store.revoke_user(username)
        self.revocations.generation_reached(username, generation)


# --8<-- [end:jwt-sessions]


class SqliteRevocations:
    """Revoked token ids and generations in the chat's SQLite file (the one-process mode)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> SqliteRevocations:
        db = await aiosqlite.connect(path)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS revoked_tokens ("
            " token_id TEXT PRIMARY KEY, username TEXT NOT NULL, expires REAL NOT NULL)"
        )
        await db.execute(
            "CREATE TABLE IF NOT EXISTS token_generations ("
            " username TEXT PRIMARY KEY, generation INTEGER NOT NULL)"
        )
        await db.commit()
        return cls(db)

    async def load(self, now: float) -> tuple[dict[str, float], dict[str, int]]:
        await self._write("DELETE FROM revoked_tokens WHERE expires <= ?", (now,))
        revoked = await self.db.execute_fetchall("SELECT token_id, expires FROM revoked_tokens")
        generations = await self.db.execute_fetchall(
            "SELECT username, generation FROM token_generations"
        )
        return {t: e for t, e in revoked}, {u: g for u, g in generations}

    async def revoke_token(self, user: str, token_id: str, expires: float) -> None:
        await self._write(
            "INSERT OR REPLACE INTO revoked_tokens (token_id, username, expires) VALUES (?, ?, ?)",
            (token_id, user, expires),
        )
        await self._write("DELETE FROM revoked_tokens WHERE expires <= ?", (time.time(),))

    async def revoke_user(self, user: str) -> int:
        async with write_transaction(self.db):
            await self.db.execute(
                "INSERT INTO token_generations (username, generation) VALUES (?, 1)"
                " ON CONFLICT (username) DO UPDATE SET generation = generation + 1",
                (user,),
            )
            rows = await self.db.execute_fetchall(
                "SELECT generation FROM token_generations WHERE username = ?", (user,)
            )
        return int(rows[0][0])

    async def _write(self, sql: str, parameters: tuple) -> None:
        async with write_transaction(self.db):  # rolled back on any error: no lock left held
            await self.db.execute(sql, parameters)

    async def close(self) -> None:
        await self.db.close()


class MemorySessions:
    """Random session ids kept in memory: sign-in while the JWT exercise is not done."""

    def __init__(self, ttl: float, manager: ClientManager) -> None:
        self._ttl = ttl
        self._sessions: dict[str, Session] = {}
        self.revocations = Revocations(manager)
        self.expiries = ExpiryWatch()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.expiries.close()

    def issue(self, username: str) -> str:
        token = "session-" + secrets.token_urlsafe(24)
        self._sessions[token] = Session(
            username, token, self.revocations.generation(username), time.time() + self._ttl
        )
        return token

    def verify(self, token: str) -> Session:
        session = self._sessions.get(token)
        if session is None:
            raise InvalidToken("unknown session")
        if session.expires <= time.time():
            raise SessionExpired("the session has expired")
        if self.revocations.is_revoked(session):
            raise SessionRevoked("this session was signed out")
        return session

    def is_revoked(self, session: Session) -> bool:
        return self.revocations.is_revoked(session)

    async def revoke(self, session: Session) -> None:
        self.revocations.token_revoked(session.user, session.token_id, session.expires)

    async def revoke_all(self, username: str) -> None:
        generation = self.revocations.generation(username) + 1
        self.revocations.generation_reached(username, generation)


async def open_sessions(
    settings: Settings, parts: Parts, secret: str, manager: ClientManager, broker: Broker
) -> Sessions:
    """JWT sessions with revocations in SQLite or Redis; in-memory ones without the exercise."""
    if not parts.done("tokens"):  # MemorySessions is the tokens part's stand-in
        return MemorySessions(settings.token_ttl, manager)
    store: RevocationStore
    if settings.redis_url:
        from my_chat.redis_broker import RedisBroker, RedisRevocations

        assert isinstance(broker, RedisBroker)
        store = RedisRevocations(broker.redis)
    else:
        store = await SqliteRevocations.open(str(settings.database_path))
    sessions = JwtSessions(parts, secret, settings.token_ttl, store, manager)
    # In Redis mode the broker's reader applies other processes' revocations here.
    broker.revocations = sessions.revocations
    return sessions
