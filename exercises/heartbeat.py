"""Exercise 1: heartbeats.

Build the heartbeat payloads and the two heartbeat loops of the guide's gateway.

- ``heartbeat_payload`` fills a ``HeartbeatData``: the time in milliseconds, the same time
  readable (UTC, ``2026-11-24 02:19:57``), the kind, and the client and user it is for.
- ``heartbeat_frame`` turns a payload into an SSE frame named ``heartbeat``.
- ``periodic_heartbeats`` broadcasts one ``periodic`` heartbeat to every connection each
  ``interval`` seconds.
- ``healthcheck_heartbeats`` sends each connection its own ``healthcheck`` heartbeat each
  ``interval`` seconds.

my_chat sends the ``initial`` heartbeat itself, with your two functions, when a stream opens,
and runs your two loops for as long as the server runs.
"""

# Generated from solutions/heartbeat.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from my_chat.client_manager import ClientManager
from my_chat.events import (
    HEARTBEAT,
    HEARTBEAT_HEALTHCHECK,
    HEARTBEAT_KINDS,
    HEARTBEAT_PERIODIC,
    HeartbeatData,
    to_json,
)
from my_chat.sse import encode_event


def heartbeat_payload(
    kind: str, *, client_id: str = "", user_id: str = "", now: float | None = None
) -> HeartbeatData:
    """The heartbeat of ``kind`` at ``now`` (seconds since the epoch; the current time if None).

    Raises ``ValueError`` for a kind that is not one of ``HEARTBEAT_KINDS``.
    """
    # TODO: check the kind, then fill in every field of HeartbeatData
    raise NotImplementedError("TODO: heartbeat_payload() in exercises/heartbeat.py")


def heartbeat_frame(payload: HeartbeatData) -> bytes:
    """The SSE frame for ``payload``: event ``heartbeat``, data the payload as JSON."""
    # TODO: encode the payload as JSON and wrap it in an SSE event
    raise NotImplementedError("TODO: heartbeat_frame() in exercises/heartbeat.py")


async def periodic_heartbeats(manager: ClientManager, interval: float) -> None:
    """Forever: wait ``interval`` seconds, then broadcast one periodic heartbeat to everyone.

    The same frame goes to every connection, so build it once per tick. Cancelling the task
    stops the loop.
    """
    # TODO: loop forever: sleep, build one periodic frame, broadcast it
    raise NotImplementedError("TODO: periodic_heartbeats() in exercises/heartbeat.py")


async def healthcheck_heartbeats(manager: ClientManager, interval: float) -> None:
    """Forever: wait ``interval`` seconds, then send each connection its own healthcheck.

    Each frame names its connection (``client_id``) and user (``user_id``), so it is built
    per connection. ``manager.connections()`` gives every open connection, and
    ``connection.send(frame)`` sends to one.
    """
    # TODO: loop forever: sleep, then one healthcheck frame per connection
    raise NotImplementedError("TODO: healthcheck_heartbeats() in exercises/heartbeat.py")
