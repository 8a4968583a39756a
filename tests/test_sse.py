"""The SSE wire format: encoder, incremental parser, and the two together.

The parser is checked against the examples of the WHATWG HTML Standard (section
"Server-sent events") and against the streams of the web-platform-tests
``eventsource/format-*`` tests, each fed whole, in random chunks and byte by byte.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from my_chat.sse import EventStreamParser, ServerSentEvent, encode_comment, encode_event

Chunker = Callable[[bytes], list[bytes]]


def whole(stream: bytes) -> list[bytes]:
    return [stream]


def byte_by_byte(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


def random_chunks(seed: int) -> Chunker:
    def chunker(stream: bytes) -> list[bytes]:
        rng = random.Random(seed)
        chunks, position = [], 0
        while position < len(stream):
            size = rng.choice((0, 1, 2, 3, 5, 8, 13))  # 0: empty chunks must be harmless
            chunks.append(stream[position : position + size])
            position += size
        return chunks

    return chunker


CHUNKERS: dict[str, Chunker] = {
    "whole": whole,
    "byte-by-byte": byte_by_byte,
    **{f"random-{seed}": random_chunks(seed) for seed in range(5)},
}


def parse(chunks: Iterable[bytes | str]) -> tuple[list[ServerSentEvent], EventStreamParser]:
    parser = EventStreamParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events, parser


def message(data: str, last_event_id: str = "", type: str = "message") -> ServerSentEvent:
    return ServerSentEvent(type=type, data=data, last_event_id=last_event_id)


@dataclass(frozen=True)
class Case:
    stream: bytes
    events: list[ServerSentEvent]
    retry: int | None = None
    last_event_id: str = ""
    notes: list[str] = field(default_factory=list)


def wpt(body: str | bytes, newline: str = "\n\n") -> bytes:
    """The body wpt's ``resources/message.py`` sends: message + newline + ``"\\n"``.

    ``newline=none`` in a test URL is ``newline=""`` here.
    """
    raw = body.encode() if isinstance(body, str) else body
    return raw + newline.encode() + b"\n"


LONG = "x" * 2048

CASES: dict[str, Case] = {
    # --- WHATWG HTML, "Server-sent events" (introduction and authoring examples) ---
    "spec-three-messages": Case(
        b"data: This is the first message.\n\n"
        b"data: This is the second message, it\ndata: has two lines.\n\n"
        b"data: This is the third message.\n\n",
        [
            message("This is the first message."),
            message("This is the second message, it\nhas two lines."),
            message("This is the third message."),
        ],
    ),
    "spec-add-remove": Case(
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [
            message("73857293", type="add"),
            message("2153", type="remove"),
            message("113411", type="add"),
        ],
    ),
    "spec-yhoo": Case(b"data: YHOO\ndata: +2\ndata: 10\n\n", [message("YHOO\n+2\n10")]),
    "spec-comment-first-second-third": Case(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [message("first event", "1"), message("second event", ""), message(" third event", "")],
    ),
    # The end of the stream is not a blank line: the last block is never dispatched.
    "spec-third-event-without-blank-line": Case(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n",
        [message("first event", "1"), message("second event", "")],
    ),
    "spec-empty-data-blocks": Case(b"data\n\ndata\ndata\n\ndata:", [message(""), message("\n")]),
    "spec-space-after-colon-optional": Case(
        b"data:test\n\ndata: test\n\n", [message("test"), message("test")]
    ),
    # --- web-platform-tests eventsource/format-*.(htm|js), streams as their server sends them ---
    "wpt-format-bom": Case(
        wpt("\ufeffdata:1\n\n\ufeffdata:2\n\ndata:3"), [message("1"), message("3")]
    ),
    "wpt-format-bom-2": Case(
        wpt("\ufeff\ufeffdata:1\n\ndata:2\n\ndata:3"), [message("2"), message("3")]
    ),
    "wpt-format-comments": Case(
        wpt(
            f"data:1\r:\0\n:\r\ndata:2\n:{LONG}\rdata:3\n:data:fail\r:{LONG}\ndata:4\n",
            newline="",
        ),
        [message("1\n2\n3\n4")],
    ),
    # The id in the unfinished last block never becomes the last event ID.
    "wpt-format-data-before-final-empty-line": Case(
        wpt("retry:1000\ndata:test1\n\nid:test\ndata:test2", newline=""),
        [message("test1")],
        retry=1000,
    ),
    "wpt-format-field-data": Case(
        wpt("data:\n\ndata\ndata\n\ndata:test"), [message(""), message("\n"), message("test")]
    ),
    "wpt-format-field-event": Case(
        wpt("event:test\ndata:x\n\ndata:x"), [message("x", type="test"), message("x")]
    ),
    "wpt-format-field-event-empty": Case(wpt("event: \ndata:data"), [message("data")]),
    # format-field-id and format-field-id-2 (resources/last-event-id.py), first connection.
    # Their second half is the browser reconnecting with Last-Event-ID: here that is
    # parser.last_event_id, what a client would send.
    "wpt-format-field-id": Case(
        "id: …\nretry: 200\ndata: hello\n\n".encode(),
        [message("hello", "…")],
        retry=200,
        last_event_id="…",
    ),
    # format-field-id-3 (resources/last-event-id2.py), its three streams.
    "wpt-format-field-id-3-persists": Case(
        b"id: 1\ndata: 1\n\ndata:2\n\n", [message("1", "1"), message("2", "1")], last_event_id="1"
    ),
    "wpt-format-field-id-3-changes-and-persists": Case(
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [message("1", "1"), message("2", "2"), message("3", "2")],
        last_event_id="2",
    ),
    "wpt-format-field-id-3-resets": Case(
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [message("1", "1"), message("2", ""), message("3", "")],
    ),
    # format-field-id-null: an id containing U+0000 is ignored. (An old wpt revision
    # expected "\0\0"; the standard has since said to ignore such ids, and current wpt agrees.)
    "wpt-format-field-id-null": Case(
        b"id: \0\0\nretry: 200\ndata: hello\n\n", [message("hello")], retry=200
    ),
    "wpt-format-field-parsing": Case(
        wpt(
            "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\n"
            "data:3\rdata:\r\n data:32\ndata:4\n",
            newline="",
        ),
        [message("\0\n 2\n1\n3\n\n4")],
    ),
    # format-field-retry and -bogus measure the reconnection delay in a browser; here the
    # delay is parser.retry. "02000" is 2000 (decimal, not octal); "1000x" is ignored.
    "wpt-format-field-retry": Case(wpt("retry:02000\ndata:x"), [message("x")], retry=2000),
    "wpt-format-field-retry-bogus": Case(
        wpt("retry:2000\nretry:1000x\ndata:x"), [message("x")], retry=2000
    ),
    "wpt-format-field-retry-empty": Case(wpt("retry\ndata:test"), [message("test")]),
    "wpt-format-field-unknown": Case(
        wpt("data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test"),
        [message("test\n\ntest")],
    ),
    "wpt-format-leading-space": Case(
        wpt("data:\ttest\rdata: \ndata:test"), [message("\ttest\n\ntest")]
    ),
    "wpt-format-newlines": Case(
        wpt("data:test\r\ndata\ndata:test\r\n\r", newline=""), [message("test\n\ntest")]
    ),
    "wpt-format-null-character": Case(wpt("data:\0\n\n"), [message("\0")]),
    # Served as charset=windows-1252: event streams are always UTF-8 regardless.
    "wpt-format-utf-8": Case(wpt(b"data:ok\xe2\x80\xa6"), [message("ok…")]),
    # --- more corners of the algorithm ---
    "id-is-taken-over-by-a-block-without-data": Case(
        b"id: 7\n\ndata: x\n\n", [message("x", "7")], last_event_id="7"
    ),
    "event-type-is-reset-by-a-block-without-data": Case(
        b"event: foo\n\ndata: x\n\n", [message("x")]
    ),
    "only-cr-lf-crlf-end-lines": Case(
        "data: a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i\n\n".encode(),
        [message("a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i")],
    ),
    "colons-after-the-first-belong-to-the-value": Case(
        b"data: a: b\nevent:x:y\n\n", [message("a: b", type="x:y")]
    ),
    "only-one-space-is-stripped": Case(
        b"data:   x\nid:  1\n\n", [message("  x", " 1")], last_event_id=" 1"
    ),
    "field-names-are-case-sensitive": Case(b"Data: no\nDATA: no\ndata: yes\n\n", [message("yes")]),
    "retry-needs-plain-ascii-digits": Case(
        (
            "retry: 5\nretry: \u0663\nretry: 1 \nretry: -1\nretry: +7\nretry:  9\nretry: 1e3\n"
            "retry: \uff11\ndata: x\n\n"
        ).encode(),
        [message("x")],
        retry=5,
    ),
    "retry-zero": Case(b"retry: 0\ndata: x\n\n", [message("x")], retry=0),
    "invalid-utf-8-becomes-replacement-character": Case(
        b"data: a\xffb\xe4\xbdc\n\n", [message("a\ufffdb\ufffdc")]
    ),
    "bom-only-at-the-start": Case(
        b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbf\n\n",
        [message("a"), message("\ufeff")],
    ),
    "cr-cr-is-two-line-ends": Case(b"data: a\r\rdata: b\r\r", [message("a"), message("b")]),
    "lf-cr-is-two-line-ends": Case(b"data: a\n\rdata: b\n\r", [message("a"), message("b")]),
    "multi-byte-characters": Case(
        "event: 聊天\ndata: 你好 😀\nid: ключ\n\n".encode(),
        [message("你好 😀", "ключ", type="聊天")],
        last_event_id="ключ",
    ),
}


@pytest.mark.parametrize("chunker", CHUNKERS.values(), ids=CHUNKERS.keys())
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_parser_matches_the_standard(case: Case, chunker: Chunker) -> None:
    events, parser = parse(chunker(case.stream))
    assert events == case.events
    assert parser.retry == case.retry
    assert parser.last_event_id == case.last_event_id


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_parser_reads_decoded_text_too(case: Case) -> None:
    text = case.stream.decode("utf-8", errors="replace")
    assert parse([text])[0] == case.events
    assert parse(list(text))[0] == case.events


def test_cr_at_the_end_of_a_chunk_ends_the_line_and_the_next_lf_is_its_crlf() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: a\r") == []
    # If this LF counted as a line of its own, the blank line would dispatch "a" alone.
    assert parser.feed(b"\ndata: b\r") == []
    assert parser.feed(b"\n\r") == [message("a\nb")]  # dispatched now, not on the next chunk
    assert parser.feed(b"\ndata: c\n\n") == [message("c")]


def test_only_one_lf_is_skipped_after_a_cr_even_across_empty_chunks() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\xe2") == []  # half a character decodes to nothing yet
    assert parser.feed(b"\x80\xa6") == []  # "…" after the CR: no LF to skip
    assert parser.feed(b"\n") == []  # ends the line "…", a field name without a colon
    assert parser.feed(b"\n") == [message("a")]


def test_a_multi_byte_character_split_across_chunks() -> None:
    stream = "data: 你😀\n\n".encode()
    for split in range(len(stream) + 1):
        events, _ = parse([stream[:split], stream[split:]])
        assert events == [message("你😀")], split


def test_a_bom_split_across_chunks_is_still_stripped() -> None:
    events, _ = parse([b"\xef", b"\xbb", b"\xbfdata: x\n\n"])
    assert events == [message("x")]
    # The second BOM is part of the first field name, so that block has no data.
    events, _ = parse([b"\xef\xbb\xbf", b"\xef\xbb\xbfdata: x\n\ndata: y\n\n"])
    assert events == [message("y")]


def test_a_text_chunk_has_its_bom_stripped_at_the_start() -> None:
    assert parse(["\ufeffdata: x\n\n"])[0] == [message("x")]
    assert parse(["", "\ufeffdata: x\n\n"])[0] == [message("x")]


def test_close_discards_the_unfinished_block() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"id: 1\ndata: done\n\ndata: half") == [message("done", "1")]
    parser.close()
    assert parser.last_event_id == "1"
    with pytest.raises(ValueError, match="close"):
        parser.feed(b"\n\n")


def test_a_long_line_in_many_small_chunks() -> None:
    line = "y" * 100_000
    stream = f"data: {line}\n\n".encode()
    events, _ = parse(stream[i : i + 7] for i in range(0, len(stream), 7))
    assert events == [message(line)]


# --- encoder ---


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        (
            {"data": "a\nb", "event": "chat", "id": "42", "retry": 3000},
            b"event: chat\nid: 42\nretry: 3000\ndata: a\ndata: b\n\n",
        ),
        ({"data": "a\r\nb\rc\nd"}, b"data: a\ndata: b\ndata: c\ndata: d\n\n"),
        ({"data": "a\n"}, b"data: a\ndata: \n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": " x", "event": " e", "id": " 1"}, b"event:  e\nid:  1\ndata:  x\n\n"),
        ({"data": "{}", "id": ""}, b"id: \ndata: {}\n\n"),
        ({"data": "{}", "retry": 0}, b"retry: 0\ndata: {}\n\n"),
        ({"data": "你好", "event": "聊天"}, "event: 聊天\ndata: 你好\n\n".encode()),
        ({"data": "a\x0bb\u2028c\x85d"}, "data: a\x0bb\u2028c\x85d\n\n".encode()),
    ],
)
def test_encode_event_bytes(kwargs: dict, expected: bytes) -> None:
    assert encode_event(**kwargs) == expected


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\0b", "\r\n", "\n"])
@pytest.mark.parametrize("name", ["event", "id"])
def test_encode_event_rejects_line_breaks_and_nul_in_event_and_id(name: str, bad: str) -> None:
    with pytest.raises(ValueError, match=name):
        encode_event("x", **{name: bad})


def test_encode_event_rejects_a_negative_retry() -> None:
    with pytest.raises(ValueError, match="negative"):
        encode_event("x", retry=-1)


@pytest.mark.parametrize("retry", [True, 1.5, "100"])
def test_encode_event_rejects_a_retry_that_is_not_an_int(retry: object) -> None:
    with pytest.raises(TypeError, match="retry"):
        encode_event("x", retry=retry)  # type: ignore[arg-type]


def test_encode_event_rejects_lone_surrogates() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_event("\ud800")


def test_empty_data_is_dispatched_as_an_empty_event() -> None:
    # A data line with an empty value makes the data buffer "\n", which is not empty:
    # browsers dispatch it (the standard's "data\n\n" example, wpt format-field-data).
    events, _ = parse([encode_event("")])
    assert events == [message("")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", b":\n\n"),
        ("keep-alive", b": keep-alive\n\n"),
        ("a\nb\r\nc", b": a\n: b\n: c\n\n"),
        ("a\n\nb", b": a\n:\n: b\n\n"),
    ],
)
def test_encode_comment_bytes(text: str, expected: bytes) -> None:
    assert encode_comment(text) == expected


@pytest.mark.parametrize("text", ["", "ping", "data: not an event\nid: 9\nretry: 1", "x" * 2048])
def test_comments_between_events_change_nothing(text: str) -> None:
    events, parser = parse(
        [encode_event("a", id="1"), encode_comment(text), encode_event("b"), encode_comment(text)]
    )
    assert events == [message("a", "1"), message("b", "1")]
    assert parser.retry is None
    assert parser.last_event_id == "1"


# --- encoder and parser together ---

# Line breaks, NUL, spaces, colons and BOMs much more often than st.text() alone offers.
tricky_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\r", "\n", "\0", " ", ":", "\ufeff", "\x85", "\u2028"]),
        st.characters(exclude_categories=["Cs"]),  # lone surrogates cannot be UTF-8
    )
)
single_line = tricky_text.filter(lambda s: not re.search(r"[\r\n\0]", s))


def normalise_line_breaks(data: str) -> str:
    return re.sub(r"\r\n|\r", "\n", data)


@given(
    data=tricky_text,
    event=st.none() | single_line,
    id=st.none() | single_line,
    retry=st.none() | st.integers(0, 10**9),
    rng=st.randoms(use_true_random=False),
)
def test_round_trip(
    data: str, event: str | None, id: str | None, retry: int | None, rng: random.Random
) -> None:
    stream = encode_event(data, event=event, id=id, retry=retry)
    cuts = sorted(rng.sample(range(len(stream) + 1), k=min(4, len(stream) + 1)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    events, parser = parse(chunks)
    assert events == [
        ServerSentEvent(
            type=event or "message", data=normalise_line_breaks(data), last_event_id=id or ""
        )
    ]
    assert parser.retry == retry
    assert parser.last_event_id == (id or "")


@given(st.lists(st.tuples(tricky_text, st.none() | single_line), max_size=5))
def test_round_trip_of_a_sequence_of_events(items: list[tuple[str, str | None]]) -> None:
    stream = b"".join(encode_event(data, id=id) for data, id in items)
    events, _ = parse(byte_by_byte(stream))
    expected, last_id = [], ""
    for data, id in items:
        last_id = last_id if id is None else id  # an event without id keeps the last one
        expected.append(message(normalise_line_breaks(data), last_id))
    assert events == expected


stream_fragments = st.sampled_from(
    [b"data", b"event", b"id", b"retry", b":", b" ", b"\r", b"\n", b"\r\n", b"7", b"x",
     b"\0", b"\xef\xbb\xbf", "你".encode(), b"\xff", b"\xe4"]
)  # fmt: skip


@given(st.lists(stream_fragments).map(b"".join), st.randoms(use_true_random=False))
def test_chunking_never_changes_the_result(stream: bytes, rng: random.Random) -> None:
    cuts = sorted(rng.sample(range(len(stream) + 1), k=min(6, len(stream) + 1)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    events, parser = parse([stream])
    for chunked in (chunks, byte_by_byte(stream)):
        chunked_events, chunked_parser = parse(chunked)
        assert chunked_events == events
        assert chunked_parser.retry == parser.retry
        assert chunked_parser.last_event_id == parser.last_event_id
