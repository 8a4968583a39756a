"""Event definitions: the guide's module 1 (data structures).

The Go gateway declares its event names and heartbeat kinds as constants and its
heartbeat payload as ``HeartbeatData``; these are the same, with the JSON field names
kept so a Go client and a Python client read the same frames.

Every frame my_chat sends is built here, as a ``Frame``: one builder per event. The one
exception is the heartbeat, which is exercise 1: the heartbeat part builds its frames
(``heartbeat_frame``, as bytes), and ``as_frame`` takes them in. Apart from that, bytes
become a ``Frame`` only where a pushed frame comes back from Redis (``redis_broker``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Final

from my_chat.sse import encode_event

# --8<-- [start:event-names]
# Event names the server itself sends. Pushed events may not use them.
CONNECTION_ID: Final = "connection_id"
HEARTBEAT: Final = "heartbeat"
MESSAGE: Final = "message"
PRESENCE: Final = "presence"
ONLINE: Final = "online"
RECONNECT: Final = "reconnect"
ERROR: Final = "error"
RECOVERED: Final = "recovered"

RESERVED_EVENTS: Final = frozenset(
    {CONNECTION_ID, HEARTBEAT, MESSAGE, PRESENCE, ONLINE, RECONNECT, ERROR, RECOVERED}
)

# Heartbeat kinds: sent once on connect, broadcast to all on a timer, and per connection.
HEARTBEAT_INITIAL: Final = "initial"
HEARTBEAT_PERIODIC: Final = "periodic"
HEARTBEAT_HEALTHCHECK: Final = "healthcheck"

HEARTBEAT_KINDS: Final = (HEARTBEAT_INITIAL, HEARTBEAT_PERIODIC, HEARTBEAT_HEALTHCHECK)


# --8<-- [end:event-names]


def to_json(payload: Any) -> str:
    """Compact JSON on one line; non-ASCII kept as is (the stream is UTF-8).

    A dataclass becomes the object of its fields, as ``dataclasses.asdict`` would make it,
    but without its deep copy of every value: the encoder asks for each dataclass's fields
    when it meets one (several times cheaper, and a stream's connect makes three of these).
    """
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_fields_of)


def _fields_of(value: Any) -> dict[str, Any]:
    names = _field_names(type(value))
    if names is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return {name: getattr(value, name) for name in names}


@functools.cache
def _field_names(kind: type) -> tuple[str, ...] | None:
    return tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None


# --8<-- [start:heartbeat-data]
@dataclass(frozen=True, slots=True)
class HeartbeatData:
    """The guide's ``HeartbeatData``, field for field (JSON names in comments)."""

    timestamp: int  # "timestamp": milliseconds since the epoch
    data: str  # "data": the same moment, readable
    type: str  # "type": initial, periodic or healthcheck
    client_id: str  # "client_id": "" for a periodic broadcast, which goes to everyone
    user_id: str  # "user_id": "" for a periodic broadcast


# --8<-- [end:heartbeat-data]


@dataclass(frozen=True, slots=True)
class ConnectionIdData:
    client_id: str


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message as stored and as sent. ``to`` is ``None`` for the room."""

    id: int
    sender: str
    to: str | None
    text: str
    timestamp: int  # milliseconds since the epoch

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "text": self.text,
            "timestamp": self.timestamp,
        }

    @property
    def is_private(self) -> bool:
        return self.to is not None


@dataclass(frozen=True, slots=True)
class PresenceData:
    """A change: ``user`` came online (first connection) or went offline (last one closed).

    Only the change travels, never the whole list: with n users online, sending the list on
    every change would cost n names times n streams per change.
    """

    user: str
    online: bool


@dataclass(frozen=True, slots=True)
class OnlineData:
    """Who is online, sent once to a new stream; ``presence`` changes follow it."""

    users: list[str]


@dataclass(frozen=True, slots=True)
class ReconnectData:
    reason: str
    retry_ms: int


@dataclass(frozen=True, slots=True)
class RecoveredData:
    """Sent instead of a replay when a client resumes from further back than one replay sends.

    ``recovered`` is false: the messages after ``last_event_id`` were not all sent, only the
    latest ones; the client reloads its history through ``GET /api/history`` (Centrifugo
    tells its clients the same with ``recovered: false``).
    """

    recovered: bool
    last_event_id: int
    replay_max: int


@dataclass(frozen=True, slots=True)
class ErrorData:
    error: str
    message: str


# Frames: every event above, encoded once and shared by every stream that receives it.
# --8<-- [start:frame]
class Frame:
    """An encoded SSE frame, with its HTTP/1.1 chunk made once and shared by every connection."""

    __slots__ = ("_chunk", "message_id", "payload")

    def __init__(self, payload: bytes, message_id: int | None = None) -> None:
        self.payload = payload
        self.message_id = message_id
        self._chunk: bytes | None = None

    @property
    def chunk(self) -> bytes:
        if self._chunk is None:
            self._chunk = b"%x\r\n%b\r\n" % (len(self.payload), self.payload)
        return self._chunk


# --8<-- [end:frame]


def as_frame(frame: Frame | bytes) -> Frame:
    """``frame`` as a ``Frame``: bytes from a heartbeat part (exercise 1) are wrapped."""
    return frame if isinstance(frame, Frame) else Frame(frame)


def joined_frame(frames: Iterable[Frame]) -> Frame:
    """Several frames as one: one write, one HTTP chunk."""
    return Frame(b"".join(frame.payload for frame in frames))


# --8<-- [start:builders]
@functools.lru_cache(maxsize=4096)
def message_frame(message: Message) -> Frame:
    """The frame of ``message``, made once: replays to many clients reuse the same bytes."""
    payload = encode_event(to_json(message.to_payload()), event=MESSAGE, id=str(message.id))
    return Frame(payload, message_id=message.id)


def messages_frame(messages: Iterable[Message]) -> Frame:
    """Messages one after another in one frame, as a replay writes them."""
    return joined_frame(message_frame(message) for message in messages)


def presence_frame(changes: Iterable[tuple[str, bool]]) -> Frame:
    """Presence changes (user, online), one event each, in one frame: one write per stream."""
    return Frame(
        b"".join(
            encode_event(to_json(PresenceData(user=user, online=online)), event=PRESENCE)
            for user, online in changes
        )
    )


# The last online list framed, and its frame: in a connect storm every new stream of a user
# already online gets the same list, so it is encoded once, not once per stream.
_last_online: tuple[list[str], Frame] | None = None


def online_frame(users: list[str]) -> Frame:
    global _last_online
    last = _last_online
    if last is not None and last[0] == users:
        return last[1]
    frame = Frame(encode_event(to_json(OnlineData(users)), event=ONLINE))
    _last_online = (list(users), frame)
    return frame


def connection_id_frame(client_id: str, retry_ms: int) -> Frame:
    """The first frame of a stream: its id, and the ``retry:`` delay the browser keeps."""
    return Frame(
        encode_event(to_json(ConnectionIdData(client_id)), event=CONNECTION_ID, retry=retry_ms)
    )


def reconnect_frame(reason: str, retry_ms: int) -> Frame:
    return Frame(
        encode_event(
            to_json(ReconnectData(reason=reason, retry_ms=retry_ms)),
            event=RECONNECT,
            retry=retry_ms,
        )
    )


def recovered_frame(last_event_id: int, replay_max: int) -> Frame:
    gap = RecoveredData(recovered=False, last_event_id=last_event_id, replay_max=replay_max)
    return Frame(encode_event(to_json(gap), event=RECOVERED))


def error_frame(error: str, message: str) -> Frame:
    return Frame(encode_event(to_json(ErrorData(error=error, message=message)), event=ERROR))


def pushed_event_frame(event: str, data_json: str) -> Frame:
    """An event a service pushes; ``push`` checks the name and the size of ``data_json``."""
    return Frame(encode_event(data_json, event=event))


# --8<-- [end:builders]
