"""Phase 3, step 1: tasks and ``gather``.

Where Go starts a goroutine per request and waits on a ``sync.WaitGroup``, asyncio wraps
each coroutine in a task and awaits them together. Write ``fetch_text(session, url)``, one
GET that returns the body as text, and ``fetch_all(session, urls)``, which uses it:

- It GETs every URL **at the same time**, not one after the other (the test server only
  answers once all the requests have arrived, so one at a time never finishes).
- It returns the response bodies as text, **in the order of** ``urls``, whatever order the
  answers come in.
- An answer with a status of 400 or more makes ``fetch_text`` raise
  ``aiohttp.ClientResponseError`` (``response.raise_for_status()``), and ``fetch_all`` raises
  it.
- When it raises, **no task it started is left running**: cancel the others and wait for
  them before raising (``asyncio.gather`` alone does not cancel them;
  ``asyncio.TaskGroup`` does, but raises an ``ExceptionGroup``, so unwrap it).
"""

# Generated from solutions/p3_gather.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio

import aiohttp


async def fetch_text(session: aiohttp.ClientSession, url: str) -> str:
    """One GET; the body as text; ``ClientResponseError`` for a status >= 400."""
    # TODO: GET, raise_for_status, return the text
    raise NotImplementedError("TODO: fetch_text() in exercises/p3_gather.py")


async def fetch_all(session: aiohttp.ClientSession, urls: list[str]) -> list[str]:
    """Every URL's body, fetched concurrently, in the order of ``urls``."""
    # TODO: one task per URL, gather them; on error cancel and await the rest
    raise NotImplementedError("TODO: fetch_all() in exercises/p3_gather.py")
