"""Attacks that must fail: forged senders, forged or stale tokens, tokens in URLs."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
import jwt
import pytest

from tests.conftest import fast_settings

SECRET = fast_settings(None).jwt_secret


def forge(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(**changes) -> dict:
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600, "iss": "my_chat", "aud": "my_chat"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_forged_from_is_ignored(server):
    alice = await server.user("alice")
    bob = await server.user("bob")
    stream = await bob.open_stream()
    status, message = await alice.request(
        "POST", "/api/messages", json={"text": "hi", "from": "bob", "sender": "bob"}
    )
    assert status == 201 and message["from"] == "alice"
    assert (await stream.next_json("message"))["from"] == "alice"
    stream.close()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(unsigned(valid_claims()), id="alg-none"),
        pytest.param(forge(valid_claims(exp=int(time.time()) - 5)), id="expired"),
        pytest.param(forge(valid_claims(), key="another-key-0123456789abcdef0123"), id="wrong-key"),
        pytest.param(forge(valid_claims(aud="someone-else")), id="wrong-audience"),
        pytest.param(forge(valid_claims(iss="someone-else")), id="wrong-issuer"),
        pytest.param(forge(valid_claims(exp=None)), id="no-exp"),
        pytest.param(forge(valid_claims(sub=None)), id="no-sub"),
        pytest.param(
            forge(valid_claims(), key=SECRET * 2, algorithm="HS512"), id="other-algorithm"
        ),
        pytest.param("a.b.c", id="garbage"),
    ],
)
async def test_bad_tokens_are_401_everywhere(server, token):
    await server.user("alice")
    client = server.client()
    client.token = token
    for method, path in (("GET", "/api/me"), ("GET", "/sse"), ("POST", "/api/messages")):
        status, body = await client.request(method, path, json={"text": "x"})
        assert status == 401, (path, body)
        assert body["error"] == "invalid_token"


async def test_a_correctly_signed_token_works(server):
    await server.user("alice")
    client = server.client()
    client.token = forge(valid_claims())
    status, body = await client.request("GET", "/api/me")
    assert (status, body) == (200, {"username": "alice"})


async def test_the_stream_never_takes_a_token_from_the_url(server):
    alice = await server.user("alice")
    for query in (f"token={alice.token}", f"access_token={alice.token}"):
        async with server.session.get(f"{server.url}/sse?{query}") as response:
            assert response.status == 401
            assert (await response.json())["error"] == "not_signed_in"


async def test_the_cookie_signs_the_page_in(server):
    await server.user("alice")
    # A browser-like session that keeps cookies, even for 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(
            f"{server.url}/api/login", json={"username": "alice", "password": "password-for-tests"}
        ) as response:
            assert response.status == 200
        async with browser.get(f"{server.url}/api/me") as response:
            assert (await response.json()) == {"username": "alice"}
        async with browser.get(f"{server.url}/sse") as response:
            assert response.status == 200
            assert b"connection_id" in await response.content.readuntil(b"\n\n")
        async with browser.post(f"{server.url}/api/logout") as response:
            assert response.status == 204
        async with browser.get(f"{server.url}/api/me") as response:
            assert response.status == 401


@pytest.mark.parametrize("last_event_id", ["abc", "-1", "1e5", "9" * 30, "１２"])
async def test_a_bad_last_event_id_is_400(server, last_event_id):
    alice = await server.user("alice")
    status, body = await alice.request(
        "GET", "/sse", headers={"Last-Event-ID": last_event_id.encode().decode("latin-1")}
    )
    assert status == 400 and body["error"] == "invalid_last_event_id"


async def test_secrets_are_generated_into_the_data_dir_not_the_code(make_server, tmp_path):
    async with make_server(jwt_secret=None, service_key=None) as server:
        data = tmp_path / "data"
        jwt_secret = (data / "jwt_secret").read_text().strip()
        service_key = (data / "service_key").read_text().strip()
        assert len(jwt_secret) >= 32 and len(service_key) >= 32
        assert (data / "jwt_secret").stat().st_mode & 0o077 == 0
        alice = await server.user("alice")
        assert jwt.decode(alice.token, jwt_secret, algorithms=["HS256"], audience="my_chat")
        status, _ = await server.client().request(
            "GET", "/api/stats", headers={"Authorization": f"Bearer {service_key}"}
        )
        assert status == 200
