"""Phase 4, step 1: the connection registry, with first and last connections.

The guide's ``ClientManager`` keeps every open SSE connection, by user. A user may have
several (a phone and two tabs); "online" means at least one. Write ``Registry``:

- ``register(connection)`` adds it and returns ``True`` when it is its user's **first**
  connection (the user just came online), ``False`` otherwise. Registering the same
  connection twice keeps one and returns ``False`` the second time.
- ``unregister(connection)`` removes it and returns ``True`` when it was its user's
  **last** connection (the user just went offline). A connection that is not registered
  (never, or already removed) returns ``False`` and changes nothing.
- ``connections_of(user)`` lists the user's connections, in the order they registered
  (``[]`` for an unknown user).
- ``connections()`` lists every connection; ``online_users()`` the users with at least one
  connection, sorted; ``len(registry)`` counts connections.

Each connection has an ``id`` (unique) and a ``user``.
"""

from __future__ import annotations

from typing import Protocol


class Connection(Protocol):
    id: str
    user: str


class Registry:
    def __init__(self) -> None:
        # user -> {connection id -> connection}; dicts keep the order they were filled in
        self._by_user: dict[str, dict[str, Connection]] = {}

    def register(self, connection: Connection) -> bool:
        """Add ``connection``; whether it is the first of its user."""
        ### BEGIN SOLUTION: add it under its user; first when the user had none before
        mine = self._by_user.setdefault(connection.user, {})
        first = not mine
        if connection.id in mine:
            return False
        mine[connection.id] = connection
        return first
        ### END SOLUTION

    def unregister(self, connection: Connection) -> bool:
        """Remove ``connection``; whether it was the last of its user."""
        ### BEGIN SOLUTION: remove it if present; last when the user has none left
        mine = self._by_user.get(connection.user)
        if not mine or mine.get(connection.id) is not connection:
            return False
        del mine[connection.id]
        if mine:
            return False
        del self._by_user[connection.user]
        return True
        ### END SOLUTION

    def connections_of(self, user: str) -> list[Connection]:
        ### BEGIN SOLUTION: the user's connections in registration order
        return list(self._by_user.get(user, {}).values())
        ### END SOLUTION

    def connections(self) -> list[Connection]:
        ### BEGIN SOLUTION: every connection of every user
        return [c for mine in self._by_user.values() for c in mine.values()]
        ### END SOLUTION

    def online_users(self) -> list[str]:
        ### BEGIN SOLUTION: users with a connection, sorted
        return sorted(self._by_user)
        ### END SOLUTION

    def __len__(self) -> int:
        ### BEGIN SOLUTION: how many connections
        return sum(len(mine) for mine in self._by_user.values())
        ### END SOLUTION
