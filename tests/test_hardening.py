"""A failure leaves the server whole: each attack or accident, followed by normal use.

Issue 11's red-team list, over real HTTP to a running server with a real SQLite file. Every
test here failed on the code before the fix it guards (see chapters/appendix-security.md).
"""

from __future__ import annotations

import asyncio
import sqlite3

from tests.chat_client import PASSWORD


async def wait_for(condition, what: str, timeout: float = 20.0):
    """Poll ``condition()`` (async) until it returns something true."""
    async with asyncio.timeout(timeout):
        while not (result := await condition()):
            await asyncio.sleep(0.05)
    assert result, what
    return result


# --- The critical bug: a failed write must not keep the database locked ---------------------


async def test_a_taken_name_then_a_message_works_at_once(server):
    alice = await server.user("alice")
    status, body = await server.client().request(
        "POST", "/api/signup", json={"username": "alice", "password": "another-password"}
    )
    assert status == 409 and body["error"] == "username_taken"
    status, body = await alice.request("POST", "/api/messages", json={"text": "still here"})
    assert status == 201, body
    # ... and sign-ups still work too.
    await server.user("bob")
    status, body = await alice.request("POST", "/api/messages", json={"text": "and again"})
    assert status == 201, body


async def test_a_lone_surrogate_then_reads_then_sign_up_then_a_message_works(server):
    alice = await server.user("alice")
    status, body = await alice.request("POST", "/api/messages", json={"text": "x\ud800"})
    assert status == 400 and body["error"] == "invalid_unicode", body
    status, _ = await alice.request("GET", "/api/history")
    assert status == 200
    stream = await alice.open_stream()
    stream.close()
    await server.user("bob")
    for n in range(3):
        status, body = await alice.request("POST", "/api/messages", json={"text": f"ok {n}"})
        assert status == 201, body
    status, history = await alice.request("GET", "/api/history")
    assert [m["text"] for m in history["messages"]] == ["ok 0", "ok 1", "ok 2"]


async def test_a_store_write_that_fails_is_rolled_back(server):
    """Below the API's own checks: the store itself rolls back a failed INSERT."""
    store = server.context.store
    alice = await server.user("alice")
    try:
        await store.append("alice", "x\ud800", None, 1)
    except UnicodeEncodeError:
        pass
    else:
        raise AssertionError("SQLite stored a lone surrogate")
    status, _ = await alice.request("GET", "/api/history")
    assert status == 200
    await server.user("bob")
    status, body = await alice.request("POST", "/api/messages", json={"text": "fine"})
    assert status == 201, body


async def test_a_failed_sign_up_insert_is_rolled_back(server):
    alice = await server.user("alice")
    try:
        await server.context.accounts.create("x\ud800", PASSWORD, 1)
    except UnicodeEncodeError:
        pass
    await server.user("bob")
    status, body = await alice.request("POST", "/api/messages", json={"text": "fine"})
    assert status == 201, body


async def test_retention_survives_a_locked_database(make_server):
    async with make_server(retention_count=3, retention_interval=0.1) as server:
        alice = await server.user("alice")
        health = server.client()

        async def retention_failed():
            status, body = await health.request("GET", "/healthz")
            return status == 200 and body["tasks"]["retention"]["failures"] > 0

        # Another process holds the write lock longer than SQLite's busy timeout (5 s).
        locker = sqlite3.connect(server.settings.database_path, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            await wait_for(retention_failed, "a retention sweep failed on the lock")
        finally:
            locker.rollback()
            locker.close()
        for n in range(6):
            await alice.send(f"m{n}")

        async def pruned():
            _, history = await alice.request("GET", "/api/history")
            return [m["text"] for m in history["messages"]] == ["m3", "m4", "m5"]

        await wait_for(pruned, "retention pruned again after the lock went away")
        status, body = await health.request("GET", "/healthz")
        assert status == 200 and body["ok"] is True, body


async def test_healthz_names_a_background_task_that_stopped(server):
    status, body = await server.client().request("GET", "/healthz")
    assert status == 200 and body["ok"] is True
    from my_chat.server import TASKS

    retention = next(b.task for b in server.app[TASKS] if b.task.get_name() == "retention")
    retention.cancel()
    await asyncio.gather(retention, return_exceptions=True)
    status, body = await server.client().request("GET", "/healthz")
    assert status == 503, body
    assert body["stopped"] == ["retention"] and body["error"] == "background_task_stopped"


async def test_a_heartbeat_loop_that_raises_is_restarted(make_server, monkeypatch):
    import solutions.heartbeat as heartbeat

    calls = []
    real = heartbeat.periodic_heartbeats

    async def flaky(manager, interval):
        if interval < 1 and not calls:  # not the start-up check, which runs it with 3600
            calls.append(1)
            raise RuntimeError("a bug in one tick")
        await real(manager, interval)

    monkeypatch.setattr(heartbeat, "periodic_heartbeats", flaky)
    async with make_server(periodic_interval=0.05) as server:
        alice = await server.user("alice")
        stream = await alice.open_stream()
        while True:  # periodic heartbeats arrive once the loop was restarted
            event = await stream.next_json("heartbeat", timeout=10)
            if event["type"] == "periodic":
                break
        stream.close()
        status, body = await server.client().request("GET", "/healthz")
        assert status == 200 and body["tasks"]["periodic-heartbeats"]["failures"] == 1, body
