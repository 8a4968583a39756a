"""Phase 2, step 1: the SSE event encoder.

An SSE stream is UTF-8 text: each event is a few ``field: value`` lines and a blank line.
Write ``encode_event(data, *, event=None, id=None, retry=None) -> bytes``:

- The result is UTF-8 bytes and ends with the blank line that dispatches the event
  (``\\n\\n``).
- The fields come in this order, each written as ``name: value\\n``, and only when given:
  ``event``, ``id``, ``retry``, then the data. ``encode_event("hi", event="chat", id="7")``
  is ``b"event: chat\\nid: 7\\ndata: hi\\n\\n"``.
- ``data`` is written as one ``data:`` line per line of text: it is split on CRLF, CR and
  LF (all three), so a parser gets the text back with its line breaks as LF.
  ``data=""`` is still one ``data: `` line (an event with no data line is never
  dispatched).
- Injection is refused: an ``event`` or ``id`` holding CR or LF would end its line early
  and let the rest forge new fields, so it raises ``ValueError``; so does an ``id``
  holding NUL (browsers ignore such an id).
- ``retry`` is a whole number of milliseconds: ``ValueError`` when negative,
  ``TypeError`` when it is not an ``int`` (``True`` is not a number of milliseconds either).
"""

from __future__ import annotations

import re

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode_event(
    data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """One SSE event as bytes, ending with the blank line that dispatches it."""
    ### BEGIN SOLUTION: check event, id, retry; write the header lines, data lines, a blank line
    lines = []
    if event is not None:
        if LINE_BREAK.search(event):
            raise ValueError(f"event must be one line: {event!r}")
        lines.append(f"event: {event}")
    if id is not None:
        if LINE_BREAK.search(id) or "\0" in id:
            raise ValueError(f"id must be one line without NUL: {id!r}")
        lines.append(f"id: {id}")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"retry must be an int of milliseconds, not {retry!r}")
        if retry < 0:
            raise ValueError(f"retry must not be negative: {retry}")
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {line}" for line in LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")
    ### END SOLUTION
