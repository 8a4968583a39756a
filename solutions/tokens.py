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
    ### BEGIN SOLUTION: build the claims, then sign them with jwt.encode
    issued_at = int(time.time() if now is None else now)
    claims = {
        "sub": username,
        "iat": issued_at,
        "exp": issued_at + int(ttl),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
    ### END SOLUTION


def verify_token(token: str, *, secret: str) -> str:
    """The username in ``token``; ``InvalidToken`` if the token is not valid in every way."""
    ### BEGIN SOLUTION: decode with explicit algorithms, audience, issuer and required claims
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    username = claims["sub"]
    if not isinstance(username, str) or not username:
        raise InvalidToken("the token names no user")
    return username
    ### END SOLUTION
