"""Phase 2, step 1: the event encoder. Run: python -m exercises check p2_encoder

my_chat's own parser (my_chat.sse.EventStreamParser, which follows the WHATWG standard)
reads back what the encoder writes.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from my_chat.sse import EventStreamParser


@pytest.fixture
def encoder(impl):
    return impl.module("p2_encoder")


def parse(frame: bytes):
    return EventStreamParser().feed(frame)


def test_the_result_is_bytes_ending_with_a_blank_line(encoder):
    frame = encoder.encode_event("hi")
    assert isinstance(frame, bytes)
    assert frame.endswith(b"\n\n")
    assert frame == b"data: hi\n\n"


def test_fields_come_in_order_event_id_retry_data(encoder):
    assert encoder.encode_event("hi", event="chat", id="7") == b"event: chat\nid: 7\ndata: hi\n\n"
    assert encoder.encode_event("x", id="1", retry=500, event="e") == (
        b"event: e\nid: 1\nretry: 500\ndata: x\n\n"
    )


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb", "a\n\nb\n"])
def test_multi_line_data_is_one_data_line_per_line(encoder, text):
    frame = encoder.encode_event(text)
    events = parse(frame)
    assert len(events) == 1
    assert events[0].data == text.replace("\r\n", "\n").replace("\r", "\n")
    assert frame.count(b"data: ") == text.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def test_empty_data_is_still_one_data_line(encoder):
    assert encoder.encode_event("") == b"data: \n\n"
    assert [e.data for e in parse(encoder.encode_event(""))] == [""]


def test_the_text_is_utf8(encoder):
    assert encoder.encode_event("héllo ✓") == "data: héllo ✓\n\n".encode()


@given(data=st.text(), event=st.text(alphabet=st.characters(blacklist_characters="\r\n")))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_survives_a_round_trip(encoder, data, event):
    try:
        frame = encoder.encode_event(data, event=event)
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
        return
    (parsed,) = parse(frame)
    assert parsed.data == data.replace("\r\n", "\n").replace("\r", "\n")
    assert parsed.type == (event or "message")


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "chat\ndata: forged"},
        {"event": "chat\rid: 9"},
        {"id": "1\nevent: admin"},
        {"id": "1\r\n"},
        {"id": "1\0"},
    ],
    ids=["event-lf", "event-cr", "id-lf", "id-crlf", "id-nul"],
)
def test_injection_into_event_or_id_is_refused(encoder, fields):
    with pytest.raises(ValueError):
        encoder.encode_event("hi", **fields)


@pytest.mark.parametrize(
    ("retry", "error"), [(-1, ValueError), (1.5, TypeError), ("10", TypeError), (True, TypeError)]
)
def test_retry_must_be_a_whole_number_of_milliseconds(encoder, retry, error):
    with pytest.raises(error):
        encoder.encode_event("hi", retry=retry)
    assert encoder.encode_event("hi", retry=0) == b"retry: 0\ndata: hi\n\n"
