"""The replay that fills a reconnecting client's gap, and the history block fresh streams share.

A message's SSE ``id:`` is its id in the store, so a browser that reconnects sends the last
one it saw as ``Last-Event-ID``, and ``replay`` sends exactly what came after it.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from my_chat.client_manager import Client
from my_chat.events import Frame, Message, messages_frame, recovered_frame
from my_chat.store import MessageStore

REPLAY_PAGE = 500


async def no_wait() -> None:
    """A ``drain`` for a socket that is never waited for."""


# --8<-- [start:replay]
class Block(NamedTuple):
    """A history ready to write: its frame, the last id in it, and how many messages.

    An empty history (a new server, or a viewer with nothing to see yet) has no frame."""

    frame: Frame | None
    last_id: int
    messages: int


# The store had nothing for this viewer: kept too, or a new server would ask the store once
# per stream, not once per user, until the first message.
EMPTY = Block(None, 0, 0)


class LatestWindow:
    """The history a fresh stream gets, as one ready-made frame, for every viewer with no
    private message in it: the latest ``count`` room messages, joined (and chunked) once.

    The broker calls ``delivered`` with every message, in id order, before handing it to
    the streams. The window is trusted only once all of it was delivered by this process:
    of what came earlier (before a restart) it cannot know whether a private message
    belongs in some viewer's window, so until then every viewer is served from the store.
    A viewer who sent or got a private message inside the window is served from the store
    too. Retention deleting messages empties the window (``reset``); in Redis mode only this
    process's sweep does, so a window older than the retention age another process just
    enforced may still be served once more, until the next message replaces it.

    Until the window is trusted (after a restart, or in a quiet room), the store's answer
    for one viewer is kept (``remember``) and served to that viewer's next streams, until
    the next message: a restart with 10,000 streams of 200 users then asks the store 200
    times, not 10,000. Viewers whose answers hold the same room messages share one frame.
    """

    # At most this many viewers' answers are kept; past it they are all dropped at once.
    # Room-only answers share their frame, so each costs an entry; an answer holding a
    # private message has a frame of its own (several KB), so fewer of those are kept.
    MAX_VIEWERS = 10_000
    MAX_PRIVATE_ANSWERS = 1_000
    # Resumes (``after``): the messages delivered lately, every one of them, for topping up a
    # shared store answer. Only answers of at most MAX_SHARED_BATCH messages are kept, and at
    # most MAX_KEPT_MESSAGES in all (past it they are all dropped at once): resumes a client
    # makes up, from many ids far back, cannot fill the memory.
    RECENT = 1_000
    MAX_RESUME_READS = 10_000
    MAX_SHARED_BATCH = 100
    MAX_KEPT_MESSAGES = 10_000

    def __init__(self, count: int) -> None:
        self.count = count
        self._room: deque[Message] = deque(maxlen=max(count, 0))
        self._newest_private: dict[str, int] = {}  # user -> id of their newest private message
        self._first_seen: int | None = None  # every message from this id on was delivered here
        self._block: Block | None = None
        # Changes with every message delivered: a store answer read across a change may
        # miss that message, so it is not kept.
        self.generation = 0
        self._by_viewer: dict[str, Block] = {}  # viewer -> the store's answer
        self._shared: dict[tuple[int, int, int], Frame] = {}  # room-only answers, by ids
        self._private_viewers: set[str] = set()  # whose kept answer holds a private message
        # Every message this process delivered, in id order, since the one after
        # ``_recent_from`` (older ones are dropped in bulk past 2 * RECENT).
        self._recent: list[Message] = []
        self._recent_from = 0
        self._last_delivered = 0
        # Resumes: (viewer, last id) -> the read of the store that answers it (see ``after``).
        self._resume_reads: dict[tuple[str, int], asyncio.Task[tuple[list[Message], int]]] = {}
        self._kept_messages = 0  # in the finished reads of _resume_reads
        self._resets = 0

    def delivered(self, message: Message) -> None:
        self.generation += 1
        self._last_delivered = message.id
        recent = self._recent
        recent.append(message)
        if len(recent) > 2 * self.RECENT:
            self._recent_from = recent[-self.RECENT - 1].id
            del recent[: -self.RECENT]
        if self._first_seen is None:
            self._first_seen = message.id
        if message.to is None:
            self._room.append(message)
            self._block = None
            self._forget_answers()
        else:
            self._newest_private[message.sender] = message.id
            self._newest_private[message.to] = message.id
            for user in (message.sender, message.to):
                self._by_viewer.pop(user, None)
                self._private_viewers.discard(user)

    def reset(self) -> None:
        self.generation += 1
        self._resets += 1
        self._forget_resume_reads()
        self._recent.clear()
        self._recent_from = self._last_delivered
        self._room.clear()
        self._newest_private.clear()
        self._first_seen = None
        self._block = None
        self._forget_answers()

    def _forget_answers(self) -> None:
        if self._by_viewer:
            self._by_viewer.clear()
            self._shared.clear()
            self._private_viewers.clear()

    def remember(
        self, viewer: str, generation: int, batch: list[Message], frame: Frame | None
    ) -> None:
        """Keep the store's answer ``batch`` (as ``frame``) for ``viewer``'s next streams, if
        no message was delivered since ``generation`` was read (before the store was asked)."""
        if generation != self.generation:
            return
        if len(self._by_viewer) >= self.MAX_VIEWERS:
            self._forget_answers()
        if not batch:
            self._by_viewer[viewer] = EMPTY
            self._private_viewers.discard(viewer)
            return
        if frame is None:
            return  # not what the store answered: never kept
        if all(m.to is None for m in batch):
            key = (batch[0].id, batch[-1].id, len(batch))
            frame = self._shared.setdefault(key, frame)
            self._private_viewers.discard(viewer)
        elif len(self._private_viewers) >= self.MAX_PRIVATE_ANSWERS:
            return  # this viewer asks the store again next time
        else:
            self._private_viewers.add(viewer)
        self._by_viewer[viewer] = Block(frame, batch[-1].id, len(batch))

    def block_for(self, viewer: str) -> Block | None:
        """``viewer``'s history, ready to write, or None: ask the store."""
        room = self._room
        if (
            self.count <= 0
            or len(room) < self.count
            or self._first_seen is None
            or room[0].id < self._first_seen
            or self._newest_private.get(viewer, 0) >= room[0].id
        ):
            return self._by_viewer.get(viewer)
        if self._block is None:
            self._block = Block(messages_frame(room), room[-1].id, len(room))
        return self._block

    # --8<-- [start:resume]
    async def after(
        self, store: MessageStore, viewer: str, last_id: int, limit: int
    ) -> list[Message]:
        """What ``store.after(last_id, viewer, limit)`` would answer now, with one read of
        the store shared by every stream of ``viewer`` that resumes from ``last_id``.

        After a restart every stream resumes at once, most from the same id: a read each
        would queue thousands of identical queries on the store's one thread. A shared read
        may be older than the stream that uses it, and messages delivered since are missing
        from it; but every message with an id above ``through`` (the last id this process
        had delivered when the read was made) is in the list of recent deliveries, so the
        answer is the read plus those the viewer may see. Messages delivered after the
        stream registered come live as well; ``Client.finish_replay`` drops the repeats.
        """
        key = (viewer, last_id)
        read = self._resume_reads.get(key)
        if read is not None and read.done():
            if read.cancelled() or read.exception() is not None:
                read = None  # cancelled before it ran (a read that failed removes itself)
            else:
                kept, through = read.result()
                if through < self._recent_from:  # deliveries it needs were dropped
                    self._kept_messages -= len(kept)
                    read = None
        if read is None:
            if len(self._resume_reads) >= self.MAX_RESUME_READS:
                self._forget_resume_reads()
            read = asyncio.ensure_future(self._read_after(store, viewer, last_id, limit))
            read.add_done_callback(_retrieve)
            self._resume_reads[key] = read
        batch, through = await asyncio.shield(read)
        if through < self._recent_from:
            return await store.after(last_id, viewer, limit)  # dropped while we waited
        newest = max(through, batch[-1].id if batch else last_id)
        recent = self._recent
        start = bisect.bisect_right(recent, newest, key=_message_id)
        later = [m for m in recent[start:] if m.to is None or viewer in (m.sender, m.to)]
        return (batch + later)[:limit] if later else batch[:limit]

    async def _read_after(
        self, store: MessageStore, viewer: str, last_id: int, limit: int
    ) -> tuple[list[Message], int]:
        through, resets = self._last_delivered, self._resets
        try:
            batch = await store.after(last_id, viewer, limit)
        except BaseException:
            self._forget_read(viewer, last_id)
            raise
        if resets != self._resets or len(batch) > self.MAX_SHARED_BATCH:
            # Retention deleted messages meanwhile, or the answer is too long to keep.
            self._forget_read(viewer, last_id)
        elif self._resume_reads.get((viewer, last_id)) is asyncio.current_task():
            self._kept_messages += len(batch)
            if self._kept_messages > self.MAX_KEPT_MESSAGES:
                self._forget_resume_reads()
        return batch, through

    def _forget_read(self, viewer: str, last_id: int) -> None:
        key = (viewer, last_id)
        if self._resume_reads.get(key) is asyncio.current_task():
            del self._resume_reads[key]

    def _forget_resume_reads(self) -> None:
        self._resume_reads.clear()
        self._kept_messages = 0

    # --8<-- [end:resume]


def _message_id(message: Message) -> int:
    return message.id


def _retrieve(read: asyncio.Task) -> None:
    """Collect a shared read's failure even if every stream waiting for it went away."""
    if not read.cancelled():
        read.exception()


MaySee = Callable[[Message, str], bool]


async def replay(
    store: MessageStore,
    connection: Client,
    may_see: MaySee,
    last_event_id: int | None,
    count: int,
    replay_max: int = 0,
    window: LatestWindow | None = None,
    drain: Callable[[], Awaitable[None]] = no_wait,
    upto: int | None = None,
) -> int:
    """Write the history ``connection`` missed; returns the last id written (0 if none).

    With ``last_event_id``: every message after it, page by page, but at most
    ``replay_max`` (0: no cap). A client further behind gets a ``recovered`` event saying
    so and then, as on a first connection, the latest ``count``. Without
    ``last_event_id``: the latest ``count``. ``may_see`` is checked again for every
    message, so a store that returned too much cannot leak a private message. Each page is
    one frame, written with ``connection.write_in_turn(frame, drain)``.

    ``upto`` (the broker's ``replay_upto()``): the last message id the replay may send, None
    for no bound. A newer message is still on its way to this process's streams and reaches
    this one live, so it must not be replayed as well.
    """
    viewer = connection.user
    if last_event_id is None:
        if window is None or window.count != count:
            window = None
        else:
            cached = window.block_for(viewer)
            if cached is not None:  # the same frame for every such viewer: no query, no join
                if cached.frame is not None:
                    await connection.write_in_turn(cached.frame, drain)
                return cached.last_id
            generation = window.generation
        batch = await _latest(store, viewer, count, upto) if count > 0 else []
        visible = [m for m in batch if may_see(m, viewer)]
        frame = messages_frame(visible) if visible else None
        if window is not None and len(visible) == len(batch):
            window.remember(viewer, generation, batch, frame)
        if frame is not None:
            await connection.write_in_turn(frame, drain)
        return batch[-1].id if batch else 0
    if replay_max > 0:
        # One read of at most replay_max + 1 messages tells "all of it" from "too far behind".
        if window is not None and upto is None:  # shared by the streams resuming from here
            batch = await window.after(store, viewer, last_event_id, replay_max + 1)
        else:
            batch = _through(await store.after(last_event_id, viewer, replay_max + 1), upto)
        if len(batch) > replay_max:
            await connection.write_in_turn(recovered_frame(last_event_id, replay_max), drain)
            return await replay(store, connection, may_see, None, count, drain=drain, upto=upto)
        await _write_visible(batch, connection, may_see, drain)
        return batch[-1].id if batch else last_event_id
    last_written = last_event_id
    while not connection.closed.done():
        page = await store.after(last_written, viewer, REPLAY_PAGE)
        batch = _through(page, upto)
        if not batch:
            break
        await _write_visible(batch, connection, may_see, drain)
        last_written = batch[-1].id
        if len(batch) < len(page):
            break  # the rest is past the bound: it comes live
    return last_written


async def _latest(store: MessageStore, viewer: str, count: int, upto: int | None) -> list[Message]:
    batch = await store.latest(viewer, count)
    if upto is not None and batch and batch[-1].id > upto:
        # Some of the latest are still on their way here (they come live): the latest up to
        # the bound instead, so the history still has ``count`` messages.
        batch = await store.before(upto + 1, viewer, count)
    return batch


def _through(batch: list[Message], upto: int | None) -> list[Message]:
    """The messages of ``batch`` (in id order) up to ``upto``."""
    if upto is None or not batch or batch[-1].id <= upto:
        return batch
    return [m for m in batch if m.id <= upto]


async def _write_visible(
    batch: list[Message], connection: Client, may_see: MaySee, drain: Callable[[], Awaitable[None]]
) -> None:
    visible = [m for m in batch if may_see(m, connection.user)]
    if visible:
        await connection.write_in_turn(messages_frame(visible), drain)


# --8<-- [end:replay]
