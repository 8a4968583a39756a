"""The Server-Sent Events wire format, built by hand.

An SSE response is ``text/event-stream``: UTF-8 text made of *lines*, each ended by
CRLF, LF or a lone CR. Lines are grouped into *events*; a blank line ends an event::

    event: chat
    id: 42
    data: {"text": "hello"}
    data: {"text": "a second line of the same event"}

Each line is ``field: value``. The parser drops exactly one space after the colon, so
``data:x`` and ``data: x`` mean the same, and ``data:  x`` carries the value `` x``.
The fields are:

``event``
    The event's type (what ``addEventListener`` listens for); ``message`` when absent.
``data``
    One line of the payload. Several ``data`` lines are joined with LF, so a payload
    with line breaks is sent as one ``data`` line per line.
``id``
    The last event ID. The browser remembers it and sends it back as the
    ``Last-Event-ID`` header when it reconnects, so the server can replay what was missed.
``retry``
    How many milliseconds the browser waits before reconnecting.

A line starting with ``:`` is a comment: ignored by the parser, but it keeps an idle
connection (and every proxy in between) from timing out. Unknown fields are ignored too.

This module has both halves: :func:`encode_event` / :func:`encode_comment` for the
server, and :class:`EventStreamParser`, which follows the WHATWG HTML Standard's
"interpreting an event stream" algorithm step by step, for clients and tests.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "EventStreamParser",
    "ServerSentEvent",
    "encode_comment",
    "encode_event",
]

# The three line ends SSE knows. Not str.splitlines(): it also splits on \v, \f,
# \x1c-\x1e, \x85, \u2028 and \u2029, which are ordinary characters in an event stream.
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_BOM: Final = "\ufeff"


# --8<-- [start:encode]
def _split_lines(text: str) -> list[str]:
    if "\r" not in text and "\n" not in text:  # the common case: one line, no regex
        return [text]
    return _LINE_BREAK.split(text)


def _check_single_line(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")


def encode_event(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Encode one event as UTF-8 bytes, ending with the blank line that dispatches it.

    Fields come in the order ``event``, ``id``, ``retry``, then one ``data`` line per
    line of *data* (split on CRLF, CR and LF), then a blank line. Every value is written
    after ``": "``, so a value that starts with a space keeps it: the parser removes
    only the one space we added.

    Parsing the result gives back *data* with CRLF and CR turned into LF (an event
    stream cannot carry a lone CR). That includes ``data=""``: it is written as a
    ``data:`` line with an empty value, which browsers dispatch as an event whose data
    is the empty string. (Only an event with *no* ``data`` line at all is never
    dispatched, which is why this function always writes one.)

    ``event=""`` is written too and arrives as type ``message``; ``id=""`` resets the
    client's last event ID.

    Raises ``ValueError`` if *event* or *id* contains CR, LF or NUL (they would end the
    line early, or make browsers ignore the id), or if *retry* is negative;
    ``TypeError`` if *retry* is not an ``int``; ``UnicodeEncodeError`` for text that
    has no UTF-8 form (lone surrogates).
    """
    head = ""
    if event is not None:
        _check_single_line("event", event)
        head += f"event: {event}\n"
    if id is not None:
        _check_single_line("id", id)
        head += f"id: {id}\n"
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"SSE retry must be an int of milliseconds, not {retry!r}")
        if retry < 0:
            raise ValueError(f"SSE retry must not be negative: {retry}")
        head += f"retry: {retry}\n"
    if "\r" not in data and "\n" not in data:
        body = f"data: {data}\n\n"
    else:
        body = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data)) + "\n"
    return (head + body).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """Encode a comment: one ``:`` line per line of *text*, then a blank line.

    Parsers ignore comments, so they are free to use as keep-alive traffic. The blank
    line is harmless between events (it dispatches nothing) and pushes the comment
    through buffering proxies as a complete block.
    """
    lines = "".join(f": {line}\n" if line else ":\n" for line in _split_lines(text))
    return (lines + "\n").encode("utf-8")


# --8<-- [end:encode]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event, as ``EventSource`` would deliver it to a listener."""

    type: str
    data: str
    last_event_id: str


# --8<-- [start:parser]
class EventStreamParser:
    """Incremental parser for ``text/event-stream``, after the WHATWG HTML Standard.

    Feed it the response body in chunks of any size, as they arrive::

        parser = EventStreamParser()
        async for chunk in response.content.iter_any():
            for event in parser.feed(chunk):
                ...

    A chunk may end anywhere: in the middle of a line, of a UTF-8 character, or between
    the CR and LF of a CRLF. Bytes are decoded as UTF-8 (invalid bytes become U+FFFD);
    a ``str`` chunk is taken as already decoded text. Do not mix the two in one stream.

    After parsing, :attr:`last_event_id` is the last event ID string (what a browser
    would send as ``Last-Event-ID``) and :attr:`retry` the last valid ``retry`` value in
    milliseconds, or ``None`` if the stream has not set one.
    """

    def __init__(self) -> None:
        self.retry: int | None = None
        self.last_event_id: str = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True  # nothing decoded yet: a BOM here is stripped
        self._skip_lf = False  # the previous text ended with CR: a next LF is its CRLF
        self._partial_line: list[str] = []  # text after the last line end, in pieces
        self._data: list[str] = []  # the data buffer, one entry per data field
        self._event_type = ""
        self._last_event_id_buffer = ""
        self._closed = False

    def feed(self, chunk: bytes | str) -> list[ServerSentEvent]:
        """Parse the next piece of the stream; return the events it completes."""
        if self._closed:
            raise ValueError("feed() after close()")
        text = chunk if isinstance(chunk, str) else self._decoder.decode(chunk)
        if not text:  # e.g. half of a multi-byte character: nothing to do yet
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == _BOM:  # one BOM, at the very start of the stream only
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" not in text and "\n" not in text:  # no line ends yet: just collect
            if text:
                self._partial_line.append(text)
            return []

        lines = _LINE_BREAK.split(text)
        # The last piece has no line end after it (yet): keep it for the next chunk.
        rest = lines.pop()
        if self._partial_line:
            self._partial_line.append(lines[0])
            lines[0] = "".join(self._partial_line)
        self._partial_line = [rest] if rest else []
        # A CR at the very end ends its line now; if the next chunk starts with LF,
        # that LF belongs to the same CRLF and must not end an (empty) line of its own.
        self._skip_lf = text[-1] == "\r"

        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[0] != ":":  # lines starting with a colon are comments
                name, _, value = line.partition(":")  # no colon: name is the whole line
                if value[:1] == " ":
                    value = value[1:]
                self._process_field(name, value)
        return events

    def close(self) -> None:
        """End the stream. An event without its closing blank line is discarded."""
        self._decoder.decode(b"", final=True)
        self._partial_line.clear()
        self._data.clear()
        self._event_type = ""
        self._closed = True

    def _process_field(self, name: str, value: str) -> None:
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._last_event_id_buffer = value
        elif name == "retry":
            # Only ASCII digits count: str.isdigit() alone would accept "²" or "٣".
            # ("".isdigit() is False, so an empty value is ignored too.)
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        # Any other field name is ignored.

    def _dispatch(self) -> ServerSentEvent | None:
        # The id is taken over even when no event is dispatched.
        self.last_event_id = self._last_event_id_buffer
        if not self._data:
            self._event_type = ""
            return None
        # Joining with LF is the spec's "append value + LF, then drop the final LF".
        event = ServerSentEvent(
            type=self._event_type or "message",
            data="\n".join(self._data),
            last_event_id=self.last_event_id,
        )
        self._data = []
        self._event_type = ""
        return event


# --8<-- [end:parser]
