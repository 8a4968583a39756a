"""Every endpoint's success and error statuses, over real HTTP to a running server."""

from __future__ import annotations

import pytest

from tests.conftest import SERVICE_KEY


async def test_signup_login_me_logout(server):
    alice = await server.user("alice")
    status, body = await alice.request("GET", "/api/me")
    assert (status, body) == (200, {"username": "alice"})

    again = await server.client().login("ALICE")  # names are unique regardless of case
    assert again.username == "alice"

    async with server.session.post(
        f"{server.url}/api/login", json={"username": "alice", "password": "password-for-tests"}
    ) as response:
        cookie = response.cookies["my_chat_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
    async with server.session.post(f"{server.url}/api/logout") as response:
        assert response.status == 204


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"username": "", "password": "password1"}, 400, "invalid_username"),
        ({"username": "a b", "password": "password1"}, 400, "invalid_username"),
        ({"username": "x" * 33, "password": "password1"}, 400, "invalid_username"),
        ({"username": "ok\nname", "password": "password1"}, 400, "invalid_username"),
        ({"username": "bob", "password": "short"}, 400, "invalid_password"),
        ({"username": "bob"}, 400, "invalid_field"),
        ({"username": 5, "password": "password1"}, 400, "invalid_field"),
    ],
)
async def test_signup_rejects_bad_input(server, body, status, error):
    got_status, got = await server.client().request("POST", "/api/signup", json=body)
    assert got_status == status
    assert got["error"] == error and got["message"]


async def test_signup_taken_name_is_409(server):
    await server.user("carol")
    status, body = await server.client().request(
        "POST", "/api/signup", json={"username": "Carol", "password": "password-2"}
    )
    assert status == 409 and body["error"] == "username_taken"


async def test_login_wrong_password_is_401_and_guessing_is_429(make_server):
    async with make_server(login_failures_per_minute=3) as server:
        await server.user("dave")
        statuses = []
        for _ in range(5):
            status, body = await server.client().request(
                "POST", "/api/login", json={"username": "dave", "password": "wrong-password"}
            )
            statuses.append(status)
            assert body["error"] in {"wrong_credentials", "rate_limited"}
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
        status, _ = await server.client().request(
            "POST", "/api/login", json={"username": "nobody", "password": "whatever-pass"}
        )
        assert status == 401


async def test_signup_flood_is_429(make_server):
    async with make_server(signup_per_minute=2) as server:
        for name in ("u1", "u2"):
            await server.user(name)
        status, body = await server.client().request(
            "POST", "/api/signup", json={"username": "u3", "password": "password-3"}
        )
        assert status == 429 and body["error"] == "rate_limited"


async def test_malformed_bodies(server):
    client = server.client()
    status, body = await client.request(
        "POST", "/api/signup", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (400, "invalid_json")
    status, body = await client.request(
        "POST", "/api/signup", data=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (400, "invalid_json")
    status, body = await client.request(
        "POST", "/api/signup", data=b"username=x", headers={"Content-Type": "text/plain"}
    )
    assert (status, body["error"]) == (415, "unsupported_media_type")
    status, body = await client.request(
        "POST", "/api/signup", data=b"\xff\xfe", headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (400, "invalid_json")


async def test_deeply_nested_json_is_400_not_500(server):
    alice = await server.user("alice")
    status, body = await alice.request(
        "POST",
        "/api/messages",
        data=b"[" * 30_000 + b"]" * 30_000,
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["error"]) == (400, "invalid_json")


async def test_body_over_the_limit_is_413(server):
    alice = await server.user("alice")
    status, body = await alice.request(
        "POST",
        "/api/messages",
        data=b'{"text": "' + b"a" * 70_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert status == 413 and body["error"] in {"body_too_large", "too_large"}


async def test_messages(server):
    alice = await server.user("alice")
    message = await alice.send("hello")
    assert set(message) == {"id", "from", "to", "text", "timestamp"}
    assert message["from"] == "alice" and message["to"] is None and message["id"] >= 1

    for text, status, error in [
        ("", 400, "empty_text"),
        ("   \n", 400, "empty_text"),
        ("x" * 2001, 413, "text_too_long"),
    ]:
        got_status, body = await alice.request("POST", "/api/messages", json={"text": text})
        assert (got_status, body["error"]) == (status, error)
    status, body = await alice.request("POST", "/api/messages", json={"text": 42})
    assert status == 400
    assert (await alice.send("x" * 2000))["text"] == "x" * 2000


async def test_message_flood_is_429(make_server):
    async with make_server(message_burst=3, message_rate=0.1) as server:
        alice = await server.user("alice")
        for n in range(3):
            await alice.send(f"m{n}")
        status, body = await alice.request("POST", "/api/messages", json={"text": "one more"})
        assert status == 429 and body["error"] == "rate_limited"


async def test_history_and_online(server):
    alice = await server.user("alice")
    ids = [(await alice.send(f"m{n}"))["id"] for n in range(5)]
    status, body = await alice.request("GET", "/api/history?limit=2")
    assert status == 200 and [m["id"] for m in body["messages"]] == ids[-2:]
    status, body = await alice.request("GET", f"/api/history?before={ids[2]}&limit=10")
    assert [m["id"] for m in body["messages"]] == ids[:2]
    for query in ("limit=0", "limit=201", "limit=x", "before=-1", "before=abc", "limit=1e3"):
        status, body = await alice.request("GET", f"/api/history?{query}")
        assert status == 400, query
        assert body["error"].startswith("invalid_")

    status, body = await alice.request("GET", "/api/online")
    assert (status, body) == (200, {"users": []})
    stream = await alice.open_stream()
    status, body = await alice.request("GET", "/api/online")
    assert body == {"users": ["alice"]}
    stream.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/me"),
        ("GET", "/api/online"),
        ("GET", "/api/history"),
        ("POST", "/api/messages"),
        ("GET", "/sse"),
    ],
)
async def test_user_endpoints_need_sign_in(server, method, path):
    client = server.client()
    status, body = await client.request(method, path, json={"text": "x"})
    assert status == 401 and body["error"] == "not_signed_in" and body["message"]
    client.token = "not-a-jwt"
    status, body = await client.request(method, path, json={"text": "x"})
    assert status == 401 and body["error"] == "invalid_token"


async def test_push_and_broadcast(server):
    alice, bob = await server.user("alice"), await server.user("bob")
    alice_stream, bob_stream = await alice.open_stream(), await bob.open_stream()
    alice_second = await alice.open_stream()
    service = server.client()

    status, body = await service.request(
        "POST",
        "/api/push",
        headers=server.service_headers,
        json={"user_ids": ["alice", "nobody"], "event": "order_created", "data": {"n": 1}},
    )
    assert (status, body) == (202, {"queued": 2})
    assert await alice_stream.next_json("order_created") == {"n": 1}
    assert await alice_second.next_json("order_created") == {"n": 1}

    status, body = await service.request(
        "POST",
        "/api/broadcast",
        headers=server.service_headers,
        json={"event": "notice", "data": "line one\nline two"},
    )
    assert (status, body) == (202, {"queued": 3})
    assert await bob_stream.next_json("notice") == "line one\nline two"
    assert not [e for e in bob_stream.received if e.type == "order_created"]

    status, body = await service.request("GET", "/api/stats", headers=server.service_headers)
    assert status == 200 and body["connections"] == 3 and body["users_online"] == 2
    for stream in (alice_stream, alice_second, bob_stream):
        stream.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"user_ids": ["a"], "event": "evil\nevent: message", "data": 1}, "invalid_event"),
        ({"user_ids": ["a"], "event": "x\r", "data": 1}, "invalid_event"),
        ({"user_ids": ["a"], "event": "x\x00y", "data": 1}, "invalid_event"),
        ({"user_ids": ["a"], "event": "", "data": 1}, "invalid_event"),
        ({"user_ids": ["a"], "event": "e" * 65, "data": 1}, "invalid_event"),
        ({"user_ids": ["a"], "event": "message", "data": 1}, "reserved_event"),
        ({"user_ids": ["a"], "event": "heartbeat", "data": 1}, "reserved_event"),
        ({"user_ids": ["a"], "event": "ok"}, "invalid_data"),
        ({"user_ids": [], "event": "ok", "data": 1}, "invalid_user_ids"),
        ({"user_ids": "alice", "event": "ok", "data": 1}, "invalid_user_ids"),
        ({"user_ids": [""], "event": "ok", "data": 1}, "invalid_user_ids"),
    ],
)
async def test_push_rejects_bad_events(server, body, error):
    status, reply = await server.client().request(
        "POST", "/api/push", headers=server.service_headers, json=body
    )
    assert (status, reply["error"]) == (400, error)


async def test_push_data_too_large_is_413(server):
    status, reply = await server.client().request(
        "POST",
        "/api/broadcast",
        headers=server.service_headers,
        json={"event": "big", "data": "x" * 40_000},
    )
    assert (status, reply["error"]) == (413, "data_too_large")


@pytest.mark.parametrize("path", ["/api/push", "/api/broadcast", "/api/stats"])
async def test_push_api_needs_the_service_key(server, path):
    user = await server.user("alice")  # a user's token is not the service key
    method = "GET" if path.endswith("stats") else "POST"
    for headers in (
        {},
        {"Authorization": f"Bearer {user.token}"},
        {"Authorization": f"Bearer {SERVICE_KEY}x"},
        {"Authorization": "Basic abc"},
    ):
        status, body = await server.client().request(
            method, path, headers=headers, json={"event": "x", "data": 1}
        )
        assert status == 401 and body["error"] == "invalid_service_key"


async def test_unknown_route_and_method_are_json(server):
    status, body = await server.client().request("GET", "/api/nope")
    assert status == 404 and body["error"] == "not_found"
    status, body = await server.client().request("DELETE", "/api/messages")
    assert status == 405 and body["error"] == "method_not_allowed"


async def test_page_and_status(server):
    status, page = await server.client().request("GET", "/")
    assert status == 200 and "<html" in page.lower()
    status, body = await server.client().request("GET", "/api/status")
    assert body == {
        "exercises": {name: "done" for name in ("heartbeat", "tokens", "message_store", "private")},
        "mode": "solutions",
    }
