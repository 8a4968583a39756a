"""Session tokens: JWTs from the tokens exercise, or, until it is done, in-memory sessions.

With ``--exercises`` and the JWT exercise not yet done, sign-in still works so the other
exercises can be tried in the browser: the server hands out random session ids that it keeps
in memory (and forgets on restart), and says so on start-up and in the page.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from my_chat.errors import InvalidToken
from my_chat.parts import Parts


class Sessions(Protocol):
    def issue(self, username: str) -> str: ...

    def verify(self, token: str) -> str: ...


class JwtSessions:
    def __init__(self, parts: Parts, secret: str, ttl: float) -> None:
        self._tokens = parts.tokens
        self._secret = secret
        self._ttl = ttl

    def issue(self, username: str) -> str:
        return self._tokens.issue_token(username, secret=self._secret, ttl=self._ttl)

    def verify(self, token: str) -> str:
        return self._tokens.verify_token(token, secret=self._secret)


class MemorySessions:
    def __init__(self) -> None:
        self._users: dict[str, str] = {}

    def issue(self, username: str) -> str:
        token = "session-" + secrets.token_urlsafe(24)
        self._users[token] = username
        return token

    def verify(self, token: str) -> str:
        try:
            return self._users[token]
        except KeyError:
            raise InvalidToken("unknown session") from None
