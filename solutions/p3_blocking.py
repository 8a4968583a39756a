"""Phase 3, step 7: spotting a blocking call.

One blocking call inside an ``async def`` stops the whole event loop: no other client is
served, no heartbeat goes out, until it returns. (Go's scheduler moves other goroutines to
other threads; asyncio has one thread, and nothing moves.) Each function below was first
written like this, and each line blocks the loop::

    async def pause(seconds):
        time.sleep(seconds)

    async def fetch_text(url):
        return blocking_fetch(url)                    # urllib: waits for the network

    async def hash_password(password, salt):
        return blocking_hash(password, salt)          # scrypt: seconds of CPU

Write them again so that **the event loop keeps running while each one waits**, and each
still returns what it returned before:

- ``pause(seconds)`` returns after ``seconds``, and other tasks run meanwhile.
- ``fetch_text(url)`` returns the body of ``GET url`` as text. The test's server runs on the
  same event loop, so a blocking fetch can never be answered: it times out.
- ``hash_password(password, salt)`` returns ``blocking_hash(password, salt)``, and other tasks
  run while it is computed. Keep ``blocking_hash`` as it is: run it somewhere else.

``python -m exercises check`` notices a blocked loop and names the line that blocks it.
"""

from __future__ import annotations

import asyncio
import hashlib
import urllib.request


def blocking_fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:
        return response.read().decode()


def blocking_hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


async def pause(seconds: float) -> None:
    ### BEGIN SOLUTION: the sleep that yields to the loop
    await asyncio.sleep(seconds)
    ### END SOLUTION


async def fetch_text(url: str) -> str:
    ### BEGIN SOLUTION: run the blocking fetch in a worker thread (or use aiohttp)
    return await asyncio.to_thread(blocking_fetch, url)
    ### END SOLUTION


async def hash_password(password: str, salt: bytes) -> bytes:
    ### BEGIN SOLUTION: run blocking_hash in a worker thread
    return await asyncio.to_thread(blocking_hash, password, salt)
    ### END SOLUTION
