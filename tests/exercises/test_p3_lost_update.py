"""Phase 3, step 5: the lost update. Run: python -m exercises check p3_lost_update"""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def lost_update(impl):
    return impl.module("p3_lost_update")


async def test_one_deposit_adds_its_amount(lost_update):
    account = lost_update.Account(100)
    await account.deposit(25)
    assert await account.balance() == 125


async def test_200_concurrent_deposits_all_count(lost_update):
    account = lost_update.Account(0)
    await asyncio.wait_for(asyncio.gather(*(account.deposit(1) for _ in range(200))), 10)
    assert await account.balance() == 200


async def test_a_withdrawal_takes_the_amount_when_the_balance_allows(lost_update):
    account = lost_update.Account(50)
    assert await account.withdraw(20) is True
    assert await account.balance() == 30
    assert await account.withdraw(31) is False
    assert await account.balance() == 30


async def test_concurrent_withdrawals_never_overdraw(lost_update):
    account = lost_update.Account(100)
    results = await asyncio.wait_for(asyncio.gather(*(account.withdraw(30) for _ in range(10))), 10)
    assert results.count(True) == 3
    assert await account.balance() == 10


async def test_the_store_is_the_truth(lost_update):
    account = lost_update.Account(0)
    await account.deposit(5)
    await account._store(1000)  # someone else changed the database
    await account.deposit(1)
    assert await account.balance() == 1001


async def test_the_lock_is_held_during_the_update(lost_update):
    account = lost_update.Account(0)
    seen = []
    original = account._load

    async def watching_load():
        seen.append(account.lock.locked())
        return await original()

    account._load = watching_load
    await account.deposit(1)
    await account.withdraw(1)
    assert seen == [True, True]
