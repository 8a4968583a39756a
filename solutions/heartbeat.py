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
    ### BEGIN SOLUTION: check the kind, then fill in every field of HeartbeatData
    if kind not in HEARTBEAT_KINDS:
        raise ValueError(f"unknown heartbeat kind {kind!r}")
    if now is None:
        now = time.time()
    readable = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return HeartbeatData(
        timestamp=int(now * 1000),
        data=readable,
        type=kind,
        client_id=client_id,
        user_id=user_id,
    )
    ### END SOLUTION


def heartbeat_frame(payload: HeartbeatData) -> bytes:
    """The SSE frame for ``payload``: event ``heartbeat``, data the payload as JSON."""
    ### BEGIN SOLUTION: encode the payload as JSON and wrap it in an SSE event
    return encode_event(to_json(payload), event=HEARTBEAT)
    ### END SOLUTION


async def periodic_heartbeats(manager: ClientManager, interval: float) -> None:
    """Forever: wait ``interval`` seconds, then broadcast one periodic heartbeat to everyone.

    The same frame goes to every connection, so build it once per tick. Cancelling the task
    stops the loop.
    """
    ### BEGIN SOLUTION: loop forever: sleep, build one periodic frame, broadcast it
    while True:
        await asyncio.sleep(interval)
        manager.broadcast(heartbeat_frame(heartbeat_payload(HEARTBEAT_PERIODIC)))
    ### END SOLUTION


async def healthcheck_heartbeats(manager: ClientManager, interval: float) -> None:
    """Forever: wait ``interval`` seconds, then send each connection its own healthcheck.

    Each frame names its connection (``client_id``) and user (``user_id``), so it is built
    per connection. ``manager.connections()`` gives every open connection, and
    ``connection.send(frame)`` sends to one.
    """
    ### BEGIN SOLUTION: loop forever: sleep, then one healthcheck frame per connection
    while True:
        await asyncio.sleep(interval)
        now = time.time()
        for connection in manager.connections():
            payload = heartbeat_payload(
                HEARTBEAT_HEALTHCHECK, client_id=connection.id, user_id=connection.user, now=now
            )
            connection.send(heartbeat_frame(payload))
    ### END SOLUTION
