"""Phase 4, step 1: the registry. Run: python -m exercises check p4_registry"""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(eq=False)
class Conn:
    id: str
    user: str


@pytest.fixture
def registry(impl):
    return impl.module("p4_registry").Registry()


def test_the_first_connection_of_a_user_reports_true(registry):
    assert registry.register(Conn("c1", "ann")) is True
    assert registry.register(Conn("c2", "ann")) is False
    assert registry.register(Conn("c3", "bob")) is True


def test_registering_the_same_connection_twice_keeps_one(registry):
    connection = Conn("c1", "ann")
    registry.register(connection)
    assert registry.register(connection) is False
    assert len(registry) == 1


def test_the_last_connection_of_a_user_reports_true(registry):
    phone, tab = Conn("c1", "ann"), Conn("c2", "ann")
    registry.register(phone)
    registry.register(tab)
    assert registry.unregister(phone) is False
    assert registry.unregister(tab) is True
    assert registry.online_users() == []


def test_unregistering_an_unknown_connection_changes_nothing(registry):
    kept = Conn("c1", "ann")
    registry.register(kept)
    assert registry.unregister(Conn("c9", "ann")) is False
    assert registry.unregister(Conn("c1", "zed")) is False
    assert registry.unregister(kept) is True
    assert registry.unregister(kept) is False
    assert len(registry) == 0


def test_connections_of_a_user_in_registration_order(registry):
    first, second, other = Conn("b", "ann"), Conn("a", "ann"), Conn("c", "bob")
    for connection in (first, other, second):
        registry.register(connection)
    assert registry.connections_of("ann") == [first, second]
    assert registry.connections_of("nobody") == []


def test_every_connection_online_users_and_len(registry):
    connections = [Conn("1", "cy"), Conn("2", "ann"), Conn("3", "cy")]
    for connection in connections:
        registry.register(connection)
    assert sorted(c.id for c in registry.connections()) == ["1", "2", "3"]
    assert registry.online_users() == ["ann", "cy"]
    assert len(registry) == 3
