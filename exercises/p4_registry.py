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

# Generated from solutions/p4_registry.py by tools/make_exercises.py —
# edit this file, it is yours.

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
        # TODO: add it under its user; first when the user had none before
        raise NotImplementedError("TODO: register() in exercises/p4_registry.py")

    def unregister(self, connection: Connection) -> bool:
        """Remove ``connection``; whether it was the last of its user."""
        # TODO: remove it if present; last when the user has none left
        raise NotImplementedError("TODO: unregister() in exercises/p4_registry.py")

    def connections_of(self, user: str) -> list[Connection]:
        # TODO: the user's connections in registration order
        raise NotImplementedError("TODO: connections_of() in exercises/p4_registry.py")

    def connections(self) -> list[Connection]:
        # TODO: every connection of every user
        raise NotImplementedError("TODO: connections() in exercises/p4_registry.py")

    def online_users(self) -> list[str]:
        # TODO: users with a connection, sorted
        raise NotImplementedError("TODO: online_users() in exercises/p4_registry.py")

    def __len__(self) -> int:
        # TODO: how many connections
        raise NotImplementedError("TODO: __len__() in exercises/p4_registry.py")
