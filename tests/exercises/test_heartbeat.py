"""Exercise 1: heartbeats. Run: python -m exercises check heartbeat"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict

import pytest

from my_chat.events import HeartbeatData
from my_chat.sse import EventStreamParser
from tests.exercises.sockets import connected_peers

NOW = 1_795_487_438.25  # 2026-11-24 02:30:38.250 UTC


@pytest.fixture
def heartbeat(impl):
    return impl.module("heartbeat")


@pytest.fixture(autouse=True)
def local_time_is_not_utc(monkeypatch):
    """Run in Shanghai time, so a readable time taken in local time fails on UTC machines too."""
    monkeypatch.setenv("TZ", "CST-8")  # a POSIX rule: needs no tzdata
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("kind", ["initial", "periodic", "healthcheck"])
def test_payload_has_every_field(heartbeat, kind):
    payload = heartbeat.heartbeat_payload(kind, client_id="c1", user_id="alice", now=NOW)
    assert isinstance(payload, HeartbeatData)
    assert payload == HeartbeatData(
        timestamp=1_795_487_438_250,
        data="2026-11-24 02:30:38",
        type=kind,
        client_id="c1",
        user_id="alice",
    )


def test_payload_defaults_to_the_current_time_and_no_client(heartbeat):
    before = int(time.time() * 1000)
    payload = heartbeat.heartbeat_payload("periodic")
    after = int(time.time() * 1000)
    assert before <= payload.timestamp <= after
    assert (payload.client_id, payload.user_id) == ("", "")


def test_an_unknown_kind_is_a_value_error(heartbeat):
    with pytest.raises(ValueError):
        heartbeat.heartbeat_payload("sometimes", now=NOW)


def test_frame_is_a_heartbeat_event_carrying_the_payload_as_json(heartbeat):
    payload = heartbeat.heartbeat_payload("initial", client_id="c1", user_id="bob", now=NOW)
    frame = heartbeat.heartbeat_frame(payload)
    assert isinstance(frame, bytes)
    events = EventStreamParser().feed(frame)
    assert len(events) == 1
    assert events[0].type == "heartbeat"
    assert json.loads(events[0].data) == asdict(payload)


async def test_periodic_heartbeats_reach_every_connection(heartbeat):
    async with connected_peers(["alice", "bob"]) as (manager, peers):
        task = asyncio.create_task(heartbeat.periodic_heartbeats(manager, 0.02))
        await asyncio.sleep(0.15)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled(), "the loop should run until it is cancelled"
        for peer in peers:
            beats = (await peer.read_for(0.1), peer.heartbeats())[1]
            assert len(beats) >= 3, f"{peer.connection.user} got {len(beats)} heartbeats"
            assert {b["type"] for b in beats} == {"periodic"}
            assert all(b["client_id"] == "" and b["user_id"] == "" for b in beats)
            stamps = [b["timestamp"] for b in beats]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_periodic_heartbeats_wait_before_the_first_one(heartbeat):
    async with connected_peers(["alice"]) as (manager, peers):
        task = asyncio.create_task(heartbeat.periodic_heartbeats(manager, 10))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        assert peers[0].heartbeats() == [] and (await peers[0].read_for(0.05)) == []


async def test_healthchecks_name_their_own_connection(heartbeat):
    async with connected_peers(["alice", "bob", "alice"]) as (manager, peers):
        task = asyncio.create_task(heartbeat.healthcheck_heartbeats(manager, 0.03))
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        for peer in peers:
            await peer.read_for(0.1)
            beats = peer.heartbeats()
            assert len(beats) >= 3
            assert {b["type"] for b in beats} == {"healthcheck"}
            assert {(b["client_id"], b["user_id"]) for b in beats} == {
                (peer.connection.id, peer.connection.user)
            }
