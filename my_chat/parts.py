"""The four exercise parts my_chat runs on: the answers in ``solutions/`` or the learner's code.

There is one implementation of each feature. my_chat imports heartbeats, tokens, the message
store and the private-message rules from ``solutions`` (``make chat``) or from ``exercises``
(``--exercises``), and checks each part once at start-up. A part that still raises
``NotImplementedError``, or fails its check, is "not done": the server says so on start-up
(``report_parts``), in ``GET /api/status`` and in the page, and runs its stand-in instead of
failing with a stack trace.

``PARTS`` is the one list of them, in the order the exercises are numbered. Each part names
its module, the check that tries it, and its stand-in: what the server runs in the module's
place while the part is not done, with the module's own names, so the code that uses a part
never asks whether it is done. Its title, and what the stand-in means for someone chatting,
are reader-facing text: they live in the page's message tables
(``static/texts/*.json``, keys ``exercise.NAME.title`` and ``exercise.NAME.effect``), which
the start-up warnings read too.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from my_chat.errors import ExerciseNotDone
from my_chat.store import NoHistory

logger = logging.getLogger("my_chat")

DONE = "done"
NOT_DONE = "not done"
PAGE_TEXTS = Path(__file__).parent / "static" / "texts" / "en.json"


# --8<-- [start:stand-ins]
class NoHeartbeats:
    """Heartbeats until exercise 1 is done: none. A stream opens without the ``initial`` one,
    and the two loops send nothing; they wait, so they run as long as the server does."""

    @staticmethod
    def heartbeat_payload(kind: str, **_: Any) -> None:
        return None

    @staticmethod
    def heartbeat_frame(payload: Any) -> bytes:
        return b""

    @staticmethod
    async def periodic_heartbeats(manager: Any, interval: float) -> None:
        await asyncio.Event().wait()

    healthcheck_heartbeats = periodic_heartbeats


class NoMessageStore:
    """The message store until exercise 3 is done: ``NoHistory`` gives ids and keeps nothing."""

    MessageStore = NoHistory


class RoomOnly:
    """Private messages until exercise 4 is done: refused with a 501, and never shown."""

    @staticmethod
    def check_recipient(sender: str, to: str, *, recipient_exists: bool) -> None:
        raise ExerciseNotDone(
            "exercise_not_done", f"private messages need {exercise('private')} to be done"
        )

    @staticmethod
    def audience(message: Any) -> frozenset[str] | None:
        return None if message.to is None else frozenset()

    @staticmethod
    def may_see(message: Any, viewer: str) -> bool:
        return message.to is None


# --8<-- [end:stand-ins]


async def _check_heartbeat(module: ModuleType) -> None:
    from my_chat.client_manager import ClientManager

    payload = module.heartbeat_payload("initial", client_id="c", user_id="u", now=0.0)
    if not isinstance(module.heartbeat_frame(payload), bytes):
        raise TypeError("heartbeat_frame must return bytes")
    for loop in (module.periodic_heartbeats, module.healthcheck_heartbeats):
        task = asyncio.ensure_future(loop(ClientManager(), 3600.0))
        for _ in range(3):
            await asyncio.sleep(0)
        if task.done():
            task.result()  # raises what the loop raised
            raise RuntimeError(f"{loop.__name__} returned instead of looping")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _check_tokens(module: ModuleType) -> None:
    secret = "a probe secret that is long enough for HS256"
    token = module.issue_token("probe", secret=secret, ttl=60, now=time.time())
    if module.verify_token(token, secret=secret) != "probe":
        raise ValueError("verify_token did not give back the username")


async def _check_message_store(module: ModuleType) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await module.MessageStore.open(str(Path(folder) / "probe.sqlite3"))
        try:
            message = await store.append("probe", "hello", None, 0)
            if [m.id for m in await store.after(0, "probe", 10)] != [message.id]:
                raise ValueError("after() did not return the message just appended")
        finally:
            await store.close()


async def _check_private(module: ModuleType) -> None:
    from my_chat.events import Message

    message = Message(id=1, sender="a", to="b", text="x", timestamp=0)
    module.check_recipient("a", "b", recipient_exists=True)
    module.audience(message)
    module.may_see(message, "a")


# --8<-- [start:registry]
@dataclass(frozen=True)
class Part:
    """One exercise that is a part of the server, numbered as chapter 5 numbers it."""

    number: int
    name: str  # its module in solutions/ and exercises/
    check: Callable[[ModuleType], Awaitable[None]]  # raises if the module does not work yet
    # Runs in the module's place while the part is not done. None for tokens: its stand-in
    # is a whole service, sessions.MemorySessions, which open_sessions builds instead.
    stand_in: type | None


PARTS: tuple[Part, ...] = (
    Part(1, "heartbeat", _check_heartbeat, NoHeartbeats),
    Part(2, "tokens", _check_tokens, None),
    Part(3, "message_store", _check_message_store, NoMessageStore),
    Part(4, "private", _check_private, RoomOnly),
)
# --8<-- [end:registry]
PART_NAMES = tuple(part.name for part in PARTS)


def exercise(name: str) -> str:
    """How the server names a part to people: ``exercise 4 (private)``."""
    number = next(part.number for part in PARTS if part.name == name)
    return f"exercise {number} ({name})"


@dataclass
class Parts:
    """The part modules the server runs on: each the learner's once it is done, else its
    stand-in (tokens keeps the learner's module; see ``Part.stand_in``)."""

    source: str
    heartbeat: Any
    tokens: Any
    message_store: Any
    private: Any
    status: dict[str, str] = field(default_factory=dict)  # by name, in the order of PARTS

    def done(self, name: str) -> bool:
        return self.status.get(name) == DONE


def import_parts(use_exercises: bool) -> Parts:
    """Import the four modules; without ``solutions/`` (a student release) use ``exercises``."""
    source = "exercises" if use_exercises else "solutions"
    try:
        importlib.import_module(source)
    except ModuleNotFoundError:
        if source != "solutions":
            raise
        logger.info("no solutions/ here (a student release): running your exercises")
        source = "exercises"
    modules = {name: importlib.import_module(f"{source}.{name}") for name in PART_NAMES}
    return Parts(source=source, **modules)


async def check_parts(parts: Parts) -> None:
    """Try each part once on a tiny input and record ``done``, ``not done`` or what broke;
    put the stand-in in the place of each part that is not done."""
    for part in PARTS:
        try:
            await part.check(getattr(parts, part.name))
        except NotImplementedError:
            parts.status[part.name] = NOT_DONE
        except Exception as error:  # a learner's bug must not stop the server
            parts.status[part.name] = f"broken: {type(error).__name__}: {error}"
        else:
            parts.status[part.name] = DONE
        if not parts.done(part.name) and part.stand_in is not None:
            setattr(parts, part.name, part.stand_in)


@cache
def _page_texts() -> dict[str, str]:
    return json.loads(PAGE_TEXTS.read_text(encoding="utf-8"))


def not_done_text(part: Part, status: str) -> str:
    """The page's banner sentence for a part that is not done, as plain text."""
    texts = _page_texts()
    how = texts["banner.not_done"] if status == NOT_DONE else texts["banner.failing"]
    return texts["banner.item"].format(
        title=texts[f"exercise.{part.name}.title"],
        which=texts["banner.numbered"].format(number=part.number, name=part.name),
        how=how.format(status=status),
        effect=texts[f"exercise.{part.name}.effect"],
        command=f"python -m exercises check {part.name}",
    )


def report_parts(parts: Parts) -> None:
    """Log where the parts come from, and warn about each one that is not done."""
    logger.info("exercise parts from %s/", parts.source)
    for part in PARTS:
        status = parts.status.get(part.name, "?")
        if status == DONE:
            logger.info("  %s: %s", exercise(part.name), status)
        else:
            logger.warning("%s", not_done_text(part, status))
