"""Phase 2, step 2: the incremental parser. Run: python -m exercises check p2_parser"""

from __future__ import annotations

import pytest


@pytest.fixture
def parser(impl):
    return impl.module("p2_parser").EventStreamParser()


def feed_all(parser, *chunks: bytes):
    return [(e.type, e.data, e.id) for chunk in chunks for e in parser.feed(chunk)]


STREAM = (
    "\ufeff: a comment\r\n"
    "retry: 1500\r\n"
    "event: chat\r\n"
    "id: 41\r\n"
    "data: héllo ✓\r\n"
    "data:second\r\n"
    "\r\n"
    "data:  two spaces\r"
    "\r"
    "id: 42\n"
    "data\n"
    "\n"
).encode()
EXPECTED = [
    ("chat", "héllo ✓\nsecond", "41"),
    ("message", " two spaces", "41"),
    ("message", "", "42"),
]


def test_a_blank_line_ends_an_event_with_its_data_joined(parser):
    assert feed_all(parser, b"data: a\ndata: b\n") == []
    assert feed_all(parser, b"\n") == [("message", "a\nb", "")]


def test_the_type_is_the_event_field_or_message(parser):
    assert feed_all(parser, b"event: chat\ndata: x\n\ndata: y\n\n") == [
        ("chat", "x", ""),
        ("message", "y", ""),
    ]


def test_crlf_lf_and_cr_all_end_lines(parser):
    assert feed_all(parser, b"data: a\r\n\r\ndata: b\n\ndata: c\r\r") == [
        ("message", "a", ""),
        ("message", "b", ""),
        ("message", "c", ""),
    ]


def test_the_whole_stream_in_one_chunk(parser):
    assert feed_all(parser, STREAM) == EXPECTED
    assert parser.retry == 1500


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_chunks_split_anywhere_give_the_same_events(impl, cut):
    parser = impl.module("p2_parser").EventStreamParser()
    assert feed_all(parser, STREAM[:cut], STREAM[cut:]) == EXPECTED


def test_one_byte_at_a_time_gives_the_same_events(parser):
    assert feed_all(parser, *(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_a_bom_is_skipped_only_at_the_start(parser):
    assert feed_all(parser, b"\xef\xbb\xbfdata: a\n\n") == [("message", "a", "")]
    # A second BOM is part of a line: here it makes an unknown field, so no event.
    assert feed_all(parser, b"\xef\xbb\xbfdata: b\n\n") == []


def test_only_one_space_after_the_colon_is_dropped(parser):
    assert feed_all(parser, b"data:x\n\ndata: x\n\ndata:  x\n\n") == [
        ("message", "x", ""),
        ("message", "x", ""),
        ("message", " x", ""),
    ]


def test_comments_and_unknown_fields_are_ignored(parser):
    assert feed_all(parser, b": keep-alive\nfoo: bar\ndata: x\n:another\n\n") == [
        ("message", "x", "")
    ]


def test_last_event_id_stays_for_later_events(parser):
    events = feed_all(parser, b"id: 7\ndata: a\n\ndata: b\n\n")
    assert events == [("message", "a", "7"), ("message", "b", "7")]
    assert parser.last_event_id == "7"


def test_an_id_with_nul_is_ignored(parser):
    assert feed_all(parser, b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")[-1] == (
        "message",
        "b",
        "1",
    )


def test_an_id_counts_even_without_data(parser):
    assert feed_all(parser, b"id: 9\n\n") == []
    assert parser.last_event_id == "9"


@pytest.mark.parametrize(
    ("line", "expected"),
    [(b"retry: 250", 250), (b"retry: 2.5", None), (b"retry: -1", None), (b"retry: soon", None)],
)
def test_retry_is_set_only_by_digits(parser, line, expected):
    feed_all(parser, line + b"\n\n")
    assert parser.retry == expected


def test_an_event_without_data_is_not_dispatched(parser):
    assert feed_all(parser, b"event: chat\n\ndata: x\n\n") == [("message", "x", "")]
