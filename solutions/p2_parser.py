"""Phase 2, step 2: an incremental SSE parser.

A client reads an event stream in chunks of bytes, cut wherever the network cut them. Write
``EventStreamParser.feed(chunk) -> list[Event]``, which takes the next chunk and returns
the events it completes (often none), keeping whatever is unfinished for the next call.

- A **blank line** ends an event. Its ``data`` lines are joined with LF; its ``type`` is
  the last ``event`` field, or ``"message"`` when there is none; its ``id`` is the parser's
  ``last_event_id`` at that moment.
- Chunks may be **split anywhere**: in the middle of a line, between a CR and its LF, even
  inside one UTF-8 character. Feeding a stream in any pieces gives the same events.
- Lines end with **CRLF, LF or a lone CR**.
- A **BOM** (U+FEFF) at the very start of the stream is skipped, once.
- ``name: value``: exactly **one space** after the colon is dropped (``data:x`` and
  ``data: x`` are the same; ``data:  x`` keeps one space). A line with no colon is a field
  with an empty value.
- A line that starts with ``:`` is a **comment**, ignored; so are unknown fields.
- ``id`` sets ``last_event_id``, which stays for later events, even ones with no ``id``
  line; an ``id`` value that holds NUL is ignored. An ``id`` line counts even in an event
  that is never dispatched.
- ``retry`` sets ``self.retry`` (an int, milliseconds) when its value is all ASCII digits,
  and is ignored otherwise.
- An event with **no data** line is not dispatched (nothing is returned for it).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

LINE = re.compile(r"(.*?)(\r\n|\r|\n)", re.DOTALL)


@dataclass(frozen=True)
class Event:
    type: str
    data: str
    id: str


class EventStreamParser:
    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._type = ""
        self._started = False
        self._after_cr = False  # the last chunk ended with CR: drop an LF that starts this one

    def feed(self, chunk: bytes) -> list[Event]:
        """The events that ``chunk`` completes, in order."""
        ### BEGIN SOLUTION: decode incrementally, cut complete lines, process each field
        text = self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text:
            text = text.removeprefix("\n")
            self._after_cr = False
        self._buffer += text
        events = []
        position = 0
        for match in LINE.finditer(self._buffer):
            if match.group(2) == "\r" and match.end() == len(self._buffer):
                self._after_cr = True  # its LF may be in the next chunk
            position = match.end()
            event = self._line(match.group(1))
            if event is not None:
                events.append(event)
        self._buffer = self._buffer[position:]
        return events
        ### END SOLUTION

    def _line(self, line: str) -> Event | None:
        """Process one line; the event it dispatches, if any."""
        ### BEGIN SOLUTION: blank line dispatches; comment ignored; else split field and value
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        return None
        ### END SOLUTION

    def _dispatch(self) -> Event | None:
        ### BEGIN SOLUTION: build the event when there was data, then reset data and type
        data, kind = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None
        return Event(type=kind or "message", data="\n".join(data), id=self.last_event_id)
        ### END SOLUTION
