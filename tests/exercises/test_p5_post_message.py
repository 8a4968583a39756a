"""Phase 5, step 3: posting a message. Run: python -m exercises check p5_post_message"""

from __future__ import annotations

import json
import time

import pytest

from my_chat.errors import ApiError
from tests.exercises.p5_client import running


@pytest.fixture
def step(impl):
    return impl.module("p5_post_message")


def test_message_text_accepts_text_and_refuses_empty_or_too_long(step):
    assert step.message_text({"text": "hello"}) == "hello"
    for body in ({}, {"text": ""}, {"text": "  \n"}, {"text": 5}):
        with pytest.raises(ApiError) as caught:
            step.message_text(body)
        assert (caught.value.status, caught.value.code) == (400, "empty_text"), body
    assert step.message_text({"text": "x" * step.MAX_TEXT}) == "x" * step.MAX_TEXT
    with pytest.raises(ApiError) as caught:
        step.message_text({"text": "x" * (step.MAX_TEXT + 1)})
    assert (caught.value.status, caught.value.code) == (413, "text_too_long")


async def test_a_good_message_answers_201_with_the_message(step):
    async with running(step.create_app()) as server:
        before = int(time.time() * 1000)
        status, body = await server.request(
            "POST", "/api/messages", params={"user": "alice"}, json={"text": "hello"}
        )
        assert status == 201, body
        assert set(body) == {"id", "from", "to", "text", "timestamp"}
        assert (body["from"], body["to"], body["text"]) == ("alice", None, "hello")
        assert isinstance(body["id"], int)
        assert before <= body["timestamp"] <= int(time.time() * 1000)


async def test_every_stream_gets_the_message_once_with_its_id(step):
    async with running(step.create_app()) as server:
        streams = [await server.open_stream({"user": n}) for n in ("alice", "bob", "bob")]
        try:
            for stream in streams:
                await stream.next("connection_id")
            status, sent = await server.request(
                "POST", "/api/messages", params={"user": "alice"}, json={"text": "hi all"}
            )
            assert status == 201, sent
            for stream in streams:
                event = await stream.next("message")
                assert json.loads(event.data) == sent
                assert event.last_event_id == str(sent["id"])
            await server.request(
                "POST", "/api/messages", params={"user": "bob"}, json={"text": "second"}
            )
            for stream in streams:
                assert json.loads((await stream.next("message")).data)["text"] == "second"
        finally:
            for stream in streams:
                stream.close()


async def test_ids_grow_by_one_per_message(step):
    async with running(step.create_app()) as server:
        ids = []
        for n in range(3):
            status, body = await server.request(
                "POST", "/api/messages", params={"user": "alice"}, json={"text": f"m{n}"}
            )
            assert status == 201, body
            ids.append(body["id"])
        assert ids == [ids[0], ids[0] + 1, ids[0] + 2]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        (
            {
                "params": {"user": "alice"},
                "data": "{not json",
                "headers": {"Content-Type": "application/json"},
            },
            400,
            "invalid_json",
        ),
        ({"params": {"user": "alice"}, "json": [1, 2]}, 400, "invalid_json"),
        ({"params": {"user": "alice"}, "data": "text=hi"}, 415, "unsupported_media_type"),
        ({"params": {"user": "alice"}, "json": {"text": " "}}, 400, "empty_text"),
        ({"json": {"text": "hi"}}, 400, "missing_user"),
    ],
)
async def test_a_bad_request_is_a_json_error_then_the_next_message_goes_through(
    step, request_kwargs, status, code
):
    async with running(step.create_app()) as server:
        stream = await server.open_stream({"user": "bob"})
        try:
            await stream.next("connection_id")
            got, body = await server.request("POST", "/api/messages", **request_kwargs)
            assert (got, body.get("error")) == (status, code), body
            got, sent = await server.request(
                "POST", "/api/messages", params={"user": "alice"}, json={"text": "ok"}
            )
            assert got == 201, sent
            assert json.loads((await stream.next("message")).data)["text"] == "ok"
            assert [e.type for e in stream.received].count("message") == 1
        finally:
            stream.close()
