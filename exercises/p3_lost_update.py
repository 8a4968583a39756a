"""Phase 3, step 5: fixing the lost update.

asyncio runs one coroutine at a time, but every ``await`` is a point where another one may
run. A read-modify-write with an ``await`` in the middle is therefore a race, exactly like
two goroutines without a mutex::

    async def deposit(self, amount):          # the bug
        balance = await self._load()          # two deposits both read 100...
        await self._store(balance + amount)   # ...and both store 100 + amount: one is lost

``Account`` keeps its balance in a store reached by ``await`` (here simulated; in real life
a database). Write ``deposit`` and ``withdraw`` so that they are safe when many run at once:

- ``deposit(amount)``: the balance grows by ``amount``. 200 concurrent deposits of 1 on a
  balance of 0 leave exactly 200.
- ``withdraw(amount)``: when the balance is at least ``amount``, it shrinks by ``amount``
  and the method returns ``True``; otherwise nothing changes and it returns ``False``. Ten
  concurrent withdrawals of 30 from 100 succeed exactly three times and leave 10: the
  balance is never negative.
- Both keep using ``_load`` and ``_store`` (the store is the truth; do not keep a copy),
  and hold ``self.lock`` (an ``asyncio.Lock``) around the whole read-check-write.
"""

# Generated from solutions/p3_lost_update.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import asyncio


class Account:
    def __init__(self, balance: int = 0) -> None:
        self._stored = balance
        self.lock = asyncio.Lock()

    async def _load(self) -> int:
        await asyncio.sleep(0)  # a round trip to the database
        return self._stored

    async def _store(self, balance: int) -> None:
        await asyncio.sleep(0)
        self._stored = balance

    async def balance(self) -> int:
        return await self._load()

    async def deposit(self, amount: int) -> None:
        """Add ``amount``, safely under concurrency."""
        # TODO: hold the lock around load and store
        raise NotImplementedError("TODO: deposit() in exercises/p3_lost_update.py")

    async def withdraw(self, amount: int) -> bool:
        """Take ``amount`` if the balance allows it; whether it was taken."""
        # TODO: hold the lock around load, check and store
        raise NotImplementedError("TODO: withdraw() in exercises/p3_lost_update.py")
