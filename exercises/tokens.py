"""Exercise 2: JWT sign-in.

Issue and verify the tokens that prove who a user is. Use PyJWT (``import jwt``).

- ``issue_token`` signs the claims ``sub`` (the username), ``iat`` (issued at), ``exp``
  (expires, ``ttl`` seconds later), ``iss`` and ``aud`` (both ``ISSUER`` / ``AUDIENCE``)
  with HS256 and ``secret``.
- ``verify_token`` checks the signature with an explicit list of allowed algorithms (never
  trust the token's own ``alg`` header: that is how ``alg: none`` tokens get in), checks
  ``exp``, ``iss`` and ``aud``, requires every claim above, and returns the username. A
  ``sub`` that is missing, empty or not a string is refused too. Any problem raises
  ``InvalidToken``.
"""

# Generated from solutions/tokens.py by tools/make_exercises.py —
# edit this file, it is yours.

from __future__ import annotations

import time

import jwt

from my_chat.errors import InvalidToken

ALGORITHM = "HS256"
ISSUER = "my_chat"
AUDIENCE = "my_chat"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "iss", "aud"]


def issue_token(username: str, *, secret: str, ttl: float, now: float | None = None) -> str:
    """A signed JWT for ``username``, valid for ``ttl`` seconds from ``now``."""
    # TODO: build the claims, then sign them with jwt.encode
    raise NotImplementedError("TODO: issue_token() in exercises/tokens.py")


def verify_token(token: str, *, secret: str) -> str:
    """The username in ``token``; ``InvalidToken`` if the token is not valid in every way."""
    # TODO: decode with explicit algorithms, audience, issuer and required claims
    raise NotImplementedError("TODO: verify_token() in exercises/tokens.py")
