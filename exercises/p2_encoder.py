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

# Generated from solutions/p2_encoder.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import re

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def encode_event(
    data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """One SSE event as bytes, ending with the blank line that dispatches it."""
    # TODO: check event, id, retry; write the header lines, data lines, a blank line
    raise NotImplementedError("TODO: encode_event() in exercises/p2_encoder.py")
