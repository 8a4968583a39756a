"""The gRPC push service (my_chat/sse.proto), called by a real grpcio client over loopback.

The server runs with ``grpc_port`` set; the events it pushes are read from real ``GET /sse``
streams, as in the HTTP push's tests.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from my_chat import sse_pb2, sse_pb2_grpc
from tests.chat_client import ServerProcess, Stream
from tests.conftest import SERVICE_KEY
from tests.ports import free_port
from tests.redis_server import RedisServer, redis_server_path

ROOT = Path(__file__).resolve().parent.parent
AUTH = (("authorization", f"Bearer {SERVICE_KEY}"),)


def channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")


BROADCAST = sse_pb2.BroadcastRequest(event="notice", json_data='"hello"')


def push_request(users, event="order_created", data='{"order_no": "123"}'):
    return sse_pb2.PushToUsersRequest(user_ids=users, event=event, json_data=data)


async def pushed(stream: Stream, event: str = "order_created") -> dict:
    return json.loads((await stream.next(event)).data)


def test_committed_stubs_match_the_proto():
    result = subprocess.run(
        [sys.executable, "tools/make_grpc_stubs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


async def test_push_reaches_every_device_of_each_user_and_no_one_else(make_server):
    port = free_port()
    async with make_server(grpc_port=port) as server, channel(port) as chan:
        stub = sse_pb2_grpc.SSEServiceStub(chan)
        alice, bob, carol = [await server.user(n) for n in ("alice", "bob", "carol")]
        phone, laptop = await alice.open_stream(), await alice.open_stream()
        bob_stream, carol_stream = await bob.open_stream(), await carol.open_stream()

        reply = await stub.PushToUsers(push_request(["alice"]), metadata=AUTH)
        assert reply.queued == 2
        assert await pushed(phone) == {"order_no": "123"}
        assert await pushed(laptop) == {"order_no": "123"}

        reply = await stub.PushToUsers(
            push_request(["alice", "bob", "nobody"], data='{"n": 2}'), metadata=AUTH
        )
        assert reply.queued == 3
        for stream in (phone, laptop, bob_stream):
            assert await pushed(stream) == {"n": 2}

        reply = await stub.Broadcast(BROADCAST, metadata=AUTH)
        assert reply.queued == 4
        for stream in (phone, laptop, bob_stream, carol_stream):
            assert await pushed(stream, "notice") == "hello"
        # carol was never addressed: the broadcast is the first pushed event she saw.
        assert [e.type for e in carol_stream.received if e.type in ("order_created", "notice")] == [
            "notice"
        ]

        online = await stub.OnlineUsers(sse_pb2.OnlineUsersRequest(), metadata=AUTH)
        assert list(online.user_ids) == ["alice", "bob", "carol"]
        for stream in (phone, laptop, bob_stream, carol_stream):
            stream.close()


async def test_the_service_key_is_required(make_server):
    port = free_port()
    async with make_server(grpc_port=port) as server, channel(port) as chan:
        stub = sse_pb2_grpc.SSEServiceStub(chan)
        alice = await server.user("alice")
        stream = await alice.open_stream()
        for metadata in (
            (),
            (("authorization", "Bearer wrong-key"),),
            (("authorization", SERVICE_KEY),),  # no scheme
            (("x-service-key", "wrong-key"),),
        ):
            for call in (
                stub.PushToUsers(push_request(["alice"]), metadata=metadata),
                stub.Broadcast(
                    sse_pb2.BroadcastRequest(event="e", json_data="1"), metadata=metadata
                ),
                stub.OnlineUsers(sse_pb2.OnlineUsersRequest(), metadata=metadata),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
                assert "invalid_service_key" in caught.value.details()
        # The other header form works, and nothing refused above reached the stream.
        reply = await stub.PushToUsers(
            push_request(["alice"], event="after"), metadata=(("x-service-key", SERVICE_KEY),)
        )
        assert reply.queued == 1
        assert (await stream.next("after")).data == '{"order_no":"123"}'
        assert not [e for e in stream.received if e.type == "order_created"]
        stream.close()


BAD_PUSHES = [
    (push_request([]), "invalid_user_ids"),
    (push_request(["alice", ""]), "invalid_user_ids"),
    (push_request([f"user{i}" for i in range(10_001)]), "too_many_users"),
    (push_request(["alice"], event=""), "invalid_event"),
    (push_request(["alice"], event="evil\nevent: message"), "invalid_event"),
    (push_request(["alice"], event="e" * 65), "invalid_event"),
    (push_request(["alice"], event="message"), "reserved_event"),
    (push_request(["alice"], event="heartbeat"), "reserved_event"),
    (push_request(["alice"], data=""), "invalid_json"),
    (push_request(["alice"], data="{"), "invalid_json"),
    (push_request(["alice"], data="NaN"), "invalid_json"),
    (push_request(["alice"], data='{"x": Infinity}'), "invalid_json"),
    (push_request(["alice"], data="1e999"), "invalid_json"),
    (push_request(["alice"], data="[" * 100_000), "data_too_large"),
    (push_request(["alice"], data="[" * 10_000 + "]" * 10_000), "invalid_json"),
    (push_request(["alice"], data=json.dumps("x" * 40_000)), "data_too_large"),
]


async def test_bad_arguments_are_invalid_argument_and_the_server_stays_whole(make_server):
    port = free_port()
    async with make_server(grpc_port=port) as server, channel(port) as chan:
        stub = sse_pb2_grpc.SSEServiceStub(chan)
        alice = await server.user("alice")
        stream = await alice.open_stream()
        for request, code in BAD_PUSHES:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.PushToUsers(request, metadata=AUTH)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, code
            assert caught.value.details().startswith(f"{code}:"), caught.value.details()
        for event, data, code in (("message", "1", "reserved_event"), ("ok", "{", "invalid_json")):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Broadcast(
                    sse_pb2.BroadcastRequest(event=event, json_data=data), metadata=AUTH
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details().startswith(f"{code}:")
        # After every refusal: a good push still arrives, and the chat still works.
        reply = await stub.PushToUsers(push_request(["alice"]), metadata=AUTH)
        assert reply.queued == 1
        assert await pushed(stream) == {"order_no": "123"}
        await alice.send("still here")
        assert (await stream.next_json("message"))["text"] == "still here"
        stream.close()


def threads() -> set[str]:
    """Every thread but the event loop's own executor (asyncio_N), which the loop closes."""
    return {
        f"{thread.name}:{thread.ident}"
        for thread in threading.enumerate()
        if not thread.name.startswith("asyncio_")
    }


async def test_grpc_leaves_no_thread_behind_and_stops_with_the_app(make_server):
    gc.collect()  # earlier tests' channels, so that their poller thread is gone too
    await asyncio.sleep(0.1)
    before = threads()
    port = free_port()
    async with make_server(grpc_port=port) as server:
        async with channel(port) as chan:
            stub = sse_pb2_grpc.SSEServiceStub(chan)
            await server.user("alice")
            reply = await stub.PushToUsers(push_request(["alice"]), metadata=AUTH)
            assert reply.queued == 0
        del chan, stub
    # Stopped: the port no longer answers.
    async with channel(port) as chan:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await sse_pb2_grpc.SSEServiceStub(chan).OnlineUsers(
                sse_pb2.OnlineUsersRequest(), metadata=AUTH, timeout=2
            )
        assert caught.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
    del chan, caught
    # grpcio's poller thread ends when its last server and channel object are gone.
    gc.collect()
    for _ in range(100):
        if threads() == before:
            break
        await asyncio.sleep(0.05)
    assert threads() == before


def test_the_grpc_port_is_off_unless_set(tmp_path):
    from my_chat.__main__ import parse_args

    assert parse_args(["--data-dir", str(tmp_path)], environ={}).grpc_port == 0
    assert parse_args(["--grpc-port", "50051"], environ={}).grpc_port == 50051


@pytest.mark.slow
async def test_the_process_serves_grpc_and_exits_cleanly_on_sigterm(server_process):
    port = free_port()
    process = await asyncio.to_thread(server_process, "--grpc-port", str(port))
    async with channel(port) as chan:
        online = await sse_pb2_grpc.SSEServiceStub(chan).OnlineUsers(
            sse_pb2.OnlineUsersRequest(), metadata=AUTH
        )
        assert list(online.user_ids) == []
    assert await asyncio.to_thread(process.terminate) == 0
    log = process.log()
    assert "gRPC push service" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_a_busy_grpc_port_stops_start_up_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServerProcess(
            tmp_path / "data", "--grpc-port", str(port), env={"MY_CHAT_SERVICE_KEY": SERVICE_KEY}
        )
        try:
            with pytest.raises(RuntimeError, match="server exited early"):
                process.start()
        finally:
            process.stop()
    assert process.process.returncode == 2
    log = process.log()
    assert f"cannot listen for gRPC on 127.0.0.1:{port}" in log
    assert "Traceback" not in log


@pytest.fixture
def redis_server(tmp_path: Path):
    if redis_server_path() is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.mark.redis
async def test_in_redis_mode_a_push_reaches_a_stream_on_another_process(make_server, redis_server):
    """Two apps on one Redis: the gRPC call goes to A, alice's streams are on B."""
    port = free_port()
    async with (
        make_server(redis_url=redis_server.url, grpc_port=port) as a,
        make_server(redis_url=redis_server.url) as b,
        channel(port) as chan,
    ):
        stub = sse_pb2_grpc.SSEServiceStub(chan)
        await a.user("alice")
        alice_on_b = await b.client().login("alice")
        phone, laptop = await alice_on_b.open_stream(), await alice_on_b.open_stream()

        # Presence reaches Redis at B's next report (every --presence-window), not at once.
        async with asyncio.timeout(5):
            while True:
                online = await stub.OnlineUsers(sse_pb2.OnlineUsersRequest(), metadata=AUTH)
                if list(online.user_ids):
                    break
                await asyncio.sleep(0.05)
        assert list(online.user_ids) == ["alice"]
        reply = await stub.PushToUsers(push_request(["alice"]), metadata=AUTH)
        assert reply.queued >= 1  # the first device at once; the second at B's next report
        assert await pushed(phone) == {"order_no": "123"}
        assert await pushed(laptop) == {"order_no": "123"}
        reply = await stub.Broadcast(BROADCAST, metadata=AUTH)
        assert await pushed(phone, "notice") == "hello"
        assert len(a.context.manager) == 0  # nothing was delivered on A itself

        # Redis gone: the call fails with UNAVAILABLE, not a crash, and A still answers.
        redis_server.stop()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PushToUsers(push_request(["alice"]), metadata=AUTH)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details().startswith("redis_unavailable:")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PushToUsers(push_request([]), metadata=AUTH)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        phone.close()
        laptop.close()


async def test_the_api_page_examples_match_the_service(make_server):
    """examples/grpc_push.py runs as the API page shows; its grpcurl body is valid."""
    port = free_port()
    async with make_server(grpc_port=port) as server:
        alice = await server.user("alice")
        stream = await alice.open_stream()
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "examples/grpc_push.py", "alice"],
            env={**os.environ, "SERVICE_KEY": SERVICE_KEY, "GRPC_ADDRESS": f"127.0.0.1:{port}"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        page = (ROOT / "chapters" / "api.md").read_text()
        shown = page.split("python examples/grpc_push.py alice\n", 1)[1].split("```", 1)[0]
        assert result.stdout == shown
        assert await pushed(stream) == {"order_no": "123"}
        stream.close()
    body = re.search(r"-d '(\{.*?\})' \\\n", page).group(1)
    request = json_format.Parse(body, sse_pb2.PushToUsersRequest())
    assert list(request.user_ids) == ["alice"]
    assert json.loads(request.json_data) == {"order_no": "123"}
