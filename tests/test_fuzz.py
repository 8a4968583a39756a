"""Random bodies, headers and queries never get a 500 or a non-JSON error."""

from __future__ import annotations

import json
import random

ENDPOINTS = [
    ("POST", "/api/signup"),
    ("POST", "/api/login"),
    ("POST", "/api/messages"),
    ("POST", "/api/push"),
    ("POST", "/api/broadcast"),
    ("GET", "/api/history"),
    ("GET", "/sse"),
]
WEIRD_STRINGS = [
    "",
    " ",
    "\x00",
    "\r\n",
    "event: message",
    "a" * 3000,
    "你好",
    "\ud7ff",
    "𝄞",
    "alice",
    "message",
    "../../etc/passwd",
    "<script>",
    "-1",
    "1e309",
    "0",
]


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice(WEIRD_STRINGS)
    if kind == 1:
        return rng.choice([0, -1, 2**64, 1.5, float("1e308")])
    if kind == 2:
        return rng.choice([None, True, False])
    if kind == 3:
        return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 4:
        return rng.choice(WEIRD_STRINGS)
    if kind == 5:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["username", "password", "text", "to", "from", "user_ids", "event", "data", "x"]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


async def test_random_input_never_breaks_the_server(server):
    alice = await server.user("alice")
    rng = random.Random(20261124)
    statuses = set()
    for n in range(400):
        method, path = rng.choice(ENDPOINTS)
        headers = {}
        if rng.random() < 0.7:
            headers["Authorization"] = rng.choice(
                [
                    f"Bearer {alice.token}",
                    "Bearer " + server.service_headers["Authorization"][7:],
                    "Bearer x",
                    "Basic Zm9v",
                    "",
                ]
            )
        if rng.random() < 0.2:
            headers["Last-Event-ID"] = rng.choice(["1", "x", "99999999999999999999", "", "0"])
        query = rng.choice(
            [
                "",
                "?limit=5",
                "?limit=-3",
                "?before=0",
                "?before=1&limit=200",
                "?last_event_id=abc",
                "?limit=%00",
            ]
        )
        body = random_value(rng)
        data = (
            json.dumps(body).encode()
            if rng.random() < 0.9
            else bytes(rng.randrange(256) for _ in range(rng.randrange(50)))
        )
        async with server.session.request(
            method,
            f"{server.url}{path}{query}",
            data=data,
            headers={"Content-Type": "application/json", **headers},
        ) as response:
            statuses.add(response.status)
            assert response.status < 500, (n, method, path, body)
            if response.status >= 400:
                reply = await response.json()
                assert set(reply) == {"error", "message"}, reply
            elif path == "/sse":
                response.close()
    assert {400, 401} <= statuses
