"""``GET /metrics``: parsed with prometheus-client's own parser, checked to move with traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from my_chat import sse_pb2, sse_pb2_grpc
from tests.conftest import SERVICE_KEY, RunningServer
from tests.ports import free_port
from tests.redis_server import RedisServer, redis_server_path
from tests.test_stream import _silent_reader


class Scrape(dict):
    """One scrape: ``{(sample name, sorted labels): value}``."""

    def __call__(self, name: str, **labels: str) -> float:
        return self.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(server: RunningServer) -> Scrape:
    status, text = await server.client().request("GET", "/metrics", headers=server.service_headers)
    assert status == 200, text
    result = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            result[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return result


async def until(condition, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_metrics_need_the_service_key(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, body = await server.client().request("GET", "/metrics", headers=headers)
        assert status == 401
        assert body["error"] == "invalid_service_key"
    async with server.session.get(
        f"{server.url}/metrics", headers=server.service_headers
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")


async def test_the_numbers_move_with_the_traffic(make_server):
    port = free_port()
    async with make_server(grpc_port=port, loop_lag_interval=0.02) as server:
        alice, bob = await server.user("alice"), await server.user("bob")
        alice_phone, alice_laptop, bob_stream = [
            await user.open_stream() for user in (alice, alice, bob)
        ]
        for stream in (alice_phone, alice_laptop, bob_stream):
            await stream.next("online")  # sent after the presence fan-out: all settled
        before = await scrape(server)
        assert before("my_chat_streams_open") == 3
        assert before("my_chat_streams_opened_total") == 3
        assert before("my_chat_users_online") == 2

        # Two messages: each one fan-out to three streams, timed once, delivered three times.
        for text in ("one", "two"):
            await alice.send(text)
        status, _ = await bob.request("POST", "/api/messages", json={"text": "  "})
        assert status == 400
        after = await scrape(server)
        assert after("my_chat_messages_accepted_total") == 2
        assert after("my_chat_messages_refused_total", reason="empty_text") == 1
        assert after("my_chat_publish_seconds_count") == 2
        assert after("my_chat_publish_seconds_sum") > 0
        assert after("my_chat_fanout_seconds_count") - before("my_chat_fanout_seconds_count") == 2
        assert after("my_chat_deliveries_total") - before("my_chat_deliveries_total") == 6

        # Pushes over HTTP and gRPC, accepted and refused, each counted once per call.
        client = server.client()
        for event in ("order_created", "message"):
            await client.request(
                "POST",
                "/api/push",
                headers=server.service_headers,
                json={"user_ids": ["alice"], "event": event, "data": 1},
            )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = sse_pb2_grpc.SSEServiceStub(channel)
            metadata = (("authorization", f"Bearer {SERVICE_KEY}"),)
            await stub.Broadcast(
                sse_pb2.BroadcastRequest(event="notice", json_data="{}"), metadata=metadata
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.PushToUsers(sse_pb2.PushToUsersRequest(), metadata=metadata)
        pushes = await scrape(server)
        http, rpc = "my_chat_pushes_total", "my_chat_pushes_total"
        assert pushes(http, transport="http", call="push", outcome="accepted") == 1
        assert pushes(http, transport="http", call="push", outcome="reserved_event") == 1
        assert pushes(rpc, transport="grpc", call="broadcast", outcome="accepted") == 1
        assert pushes(rpc, transport="grpc", call="push", outcome="invalid_user_ids") == 1
        # push to alice (2 streams) + broadcast (3): two fan-outs, five deliveries
        assert pushes("my_chat_deliveries_total") - after("my_chat_deliveries_total") == 5
        assert pushes("my_chat_fanout_seconds_count") - after("my_chat_fanout_seconds_count") == 2

        # A new stream gets the history replayed: one replay of the two messages.
        carol = await server.user("carol")
        carol_stream = await carol.open_stream()
        await carol_stream.messages(2)  # the replay is written (and counted) by now
        replayed = await scrape(server)
        replays = replayed("my_chat_replay_messages_count") - pushes(
            "my_chat_replay_messages_count"
        )
        assert replays == 1
        assert replayed("my_chat_replay_messages_sum") - pushes("my_chat_replay_messages_sum") == 2

        # A client that leaves is counted as gone.
        bob_stream.close()

        async def bob_gone() -> bool:
            return (await scrape(server))("my_chat_streams_closed_total", reason="client_gone") == 1

        await until(bob_gone, "bob's stream to be counted as closed")
        closed = await scrape(server)
        assert closed("my_chat_streams_open") == 3
        assert closed("my_chat_streams_closed_total", reason="slow") == 0

        # Who is online counts what the room was told, and the room hears of bob's leaving in
        # the next presence batch (presence_window), not at once.
        async def bob_offline() -> bool:
            return (await scrape(server))("my_chat_users_online") == 2  # alice and carol

        await until(bob_offline, "bob to be counted as offline")

        # The event-loop lag sampler runs on its own.
        assert closed("my_chat_event_loop_lag_count") > 0
        assert closed("my_chat_event_loop_lag_seconds") >= 0
        for stream in (alice_phone, alice_laptop, carol_stream):
            stream.close()


async def test_a_slow_client_is_counted_as_slow(make_server):
    async with make_server(buffer_limit=64 * 1024) as server:
        bob = await server.user("bob")
        silent = await _silent_reader(server.url, bob.token)

        async def slow_counted() -> bool:
            await server.client().request(
                "POST",
                "/api/broadcast",
                headers=server.service_headers,
                json={"event": "bulk", "data": "x" * 30_000},
            )
            return (await scrape(server))("my_chat_streams_closed_total", reason="slow") == 1

        await until(slow_counted, "the silent reader to be closed as slow", timeout=30)
        scraped = await scrape(server)
        assert scraped("my_chat_streams_closed_total", reason="client_gone") == 0
        silent.close()


async def test_each_app_counts_alone(make_server):
    async with make_server() as one, make_server() as two:  # one database, two apps
        alice = await one.user("alice")
        await alice.send("only on one")
        assert (await scrape(one))("my_chat_messages_accepted_total") == 1
        assert (await scrape(two))("my_chat_messages_accepted_total") == 0


@pytest.mark.redis
async def test_metrics_in_redis_mode(make_server, tmp_path: Path):
    if redis_server_path() is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    with RedisServer(tmp_path / "redis") as redis:
        async with make_server(redis_url=redis.url) as server:
            alice = await server.user("alice")
            stream = await alice.open_stream()
            await stream.next("presence")  # alice's own arrival, back from Redis: settled
            before = await scrape(server)
            await alice.send("through redis")
            await stream.next("message")
            after = await scrape(server)
            assert after("my_chat_messages_accepted_total") == 1
            assert after("my_chat_users_online") == 1
            assert after("my_chat_deliveries_total") - before("my_chat_deliveries_total") == 1
            assert after("my_chat_fanout_seconds_count") > before("my_chat_fanout_seconds_count")
            stream.close()
