"""Exercise 2: JWT sign-in. Run: python -m exercises check tokens"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from my_chat.errors import InvalidToken

SECRET = "a secret of at least thirty-two bytes, for HS256"
OTHER = "another secret of at least thirty-two bytes, too"


@pytest.fixture
def tokens(impl):
    return impl.module("tokens")


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_round_trip(tokens):
    token = tokens.issue_token("alice", secret=SECRET, ttl=60)
    assert isinstance(token, str)
    assert tokens.verify_token(token, secret=SECRET) == "alice"


def test_issued_claims(tokens):
    now = time.time()
    token = tokens.issue_token("bob", secret=SECRET, ttl=600, now=now)
    claims = claims_of(token)
    assert claims["sub"] == "bob"
    assert claims["iss"] == tokens.ISSUER and claims["aud"] == tokens.AUDIENCE
    assert claims["iat"] == int(now)
    assert claims["exp"] == int(now) + 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def sign(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def good_claims(tokens, **changes) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "iat": now,
        "exp": now + 60,
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_token_signed_by_someone_else_verifies_if_the_claims_are_right(tokens):
    assert tokens.verify_token(sign(good_claims(tokens)), secret=SECRET) == "alice"


def alg_none(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda t: sign(good_claims(t), key=OTHER), id="wrong-key"),
        pytest.param(lambda t: alg_none(good_claims(t)), id="alg-none"),
        pytest.param(
            lambda t: sign(good_claims(t), key=SECRET + SECRET, algorithm="HS512"), id="HS512"
        ),
        pytest.param(lambda t: sign(good_claims(t, exp=int(time.time()) - 10)), id="expired"),
        pytest.param(
            lambda t: t.issue_token("alice", secret=SECRET, ttl=60, now=time.time() - 3600),
            id="issued-an-hour-ago",
        ),
        pytest.param(lambda t: sign(good_claims(t, aud="another-app")), id="wrong-audience"),
        pytest.param(lambda t: sign(good_claims(t, iss="another-issuer")), id="wrong-issuer"),
        pytest.param(lambda t: sign(good_claims(t, exp=None)), id="no-exp"),
        pytest.param(lambda t: sign(good_claims(t, iat=None)), id="no-iat"),
        pytest.param(lambda t: sign(good_claims(t, sub=None)), id="no-sub"),
        pytest.param(lambda t: sign(good_claims(t, aud=None)), id="no-aud"),
        pytest.param(lambda t: sign(good_claims(t, sub="")), id="empty-sub"),
        pytest.param(lambda t: "not.a.token", id="garbage"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_bad_tokens_raise_invalid_token(tokens, make_token):
    token = make_token(tokens)
    with pytest.raises(InvalidToken):
        tokens.verify_token(token, secret=SECRET)


def test_a_tampered_payload_is_rejected(tokens):
    header, _, signature = tokens.issue_token("alice", secret=SECRET, ttl=60).split(".")
    forged = (
        base64.urlsafe_b64encode(json.dumps(good_claims(tokens, sub="admin")).encode())
        .rstrip(b"=")
        .decode()
    )
    with pytest.raises(InvalidToken):
        tokens.verify_token(f"{header}.{forged}.{signature}", secret=SECRET)
