"""The four exercise parts my_chat runs on: the answers in ``solutions/`` or the learner's code.

There is one implementation of each feature. my_chat imports heartbeats, tokens, the message
store and the private-message rules from ``solutions`` (``make chat``) or from ``exercises``
(``--exercises``), and checks each part once at start-up. A part that still raises
``NotImplementedError`` is "not done": the server says so on start-up and in the page, and
runs without it (see ``status_text``) instead of failing with a stack trace.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

logger = logging.getLogger("my_chat")

PART_NAMES = ("heartbeat", "tokens", "message_store", "private")
DONE = "done"
NOT_DONE = "not done"


@dataclass
class Parts:
    source: str
    heartbeat: ModuleType
    tokens: ModuleType
    message_store: ModuleType
    private: ModuleType
    status: dict[str, str] = field(default_factory=dict)

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
    """Try each part once on a tiny input and record ``done``, ``not done`` or what broke."""
    checks = {
        "heartbeat": _check_heartbeat,
        "tokens": _check_tokens,
        "message_store": _check_message_store,
        "private": _check_private,
    }
    for name, check in checks.items():
        try:
            await check(getattr(parts, name))
        except NotImplementedError:
            parts.status[name] = NOT_DONE
        except Exception as error:  # a learner's bug must not stop the server
            parts.status[name] = f"broken: {type(error).__name__}: {error}"
        else:
            parts.status[name] = DONE


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


def status_lines(parts: Parts) -> list[str]:
    return [f"  {name:<14} {parts.status.get(name, '?')}" for name in PART_NAMES]
