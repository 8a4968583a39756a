"""Sign-up, sign-in and who is asking.

A user proves who they are with a token: ``Authorization: Bearer <token>`` from a program,
or the HttpOnly ``my_chat_session`` cookie from the page. The stream accepts the same two and
never a token in its URL, because URLs end up in access logs and browser history (the guide's
gateway reads ``?token=`` from the URL). Other services use the service key instead.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import time

from aiohttp import web

from my_chat.accounts import MAX_PASSWORD, MIN_PASSWORD, USERNAME_PATTERN, UsernameTaken
from my_chat.context import context_of
from my_chat.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    Unauthorized,
    read_json_object,
    require_string,
)
from my_chat.ratelimit import limit
from my_chat.sessions import (
    SESSION_REVOKED,
    Session,
    SessionRevoked,
)

SESSION_COOKIE = "my_chat_session"

routes = web.RouteTableDef()


# --8<-- [start:authenticate]
def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def authenticate(request: web.Request) -> str:
    """The signed-in user, from the bearer token or the session cookie; else ``401``."""
    return authenticate_session(request).user


def authenticate_session(request: web.Request) -> Session:
    """The session of the bearer token or the cookie; ``401`` if missing, invalid or ended.

    An expired token is ``invalid_token`` like any other bad token; one that was signed out
    is ``session_revoked``, so a client can tell "sign in again" from "your token is broken".
    """
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized("not_signed_in", "sign in first: send a bearer token or the cookie")
    try:
        return context_of(request).sessions.verify(token)
    except SessionRevoked:
        raise Unauthorized(SESSION_REVOKED, "this session was signed out; sign in again") from None
    except InvalidToken as error:
        raise Unauthorized("invalid_token", f"the token is not valid: {error}") from None


# --8<-- [end:authenticate]


def require_service(request: web.Request) -> None:
    """Only backend services holding the service key get past this."""
    token = bearer_token(request)
    expected = context_of(request).service_key
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("invalid_service_key", "this call needs the service key as a bearer")


# --8<-- [start:client-address]
def client_address(request: web.Request) -> str:
    """The address the rate limits count: the peer's, or the browser's behind a trusted proxy.

    ``X-Forwarded-For`` lists every hop, each proxy appending the address it was called from,
    so only its right-hand end is written by proxies we trust; anything to the left of them
    may be made up by the client. Walk it from the right, past the trusted proxies: the first
    address that is not one of them is the client. From any other peer the header is ignored.
    """
    peer = request.remote or "unknown"
    trusted = trusted_networks(tuple(context_of(request).settings.trusted_proxies))
    if not is_trusted(peer, trusted):
        return peer
    nearest = peer
    hops = ",".join(request.headers.getall("X-Forwarded-For", ())).split(",")
    for hop in reversed([hop.strip() for hop in hops if hop.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return nearest  # not an address, so no trusted proxy wrote it
        if not is_trusted(hop, trusted):
            return hop
        nearest = hop
    return nearest


@functools.lru_cache(maxsize=8)
def trusted_networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def is_trusted(address: str, trusted: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


# --8<-- [end:client-address]


async def read_credentials(request: web.Request) -> tuple[str, str]:
    body = await read_json_object(request)
    username, password = require_string(body, "username"), require_string(body, "password")
    return username, password


def signed_in(request: web.Request, username: str, status: int) -> web.Response:
    context = context_of(request)
    token = context.sessions.issue(username)
    response = web.json_response({"username": username, "token": token}, status=status)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int(context.settings.token_ttl),
        secure=request.secure,
    )
    return response


@routes.post("/api/signup")
async def signup(request: web.Request) -> web.Response:
    context = context_of(request)
    username, password = await read_credentials(request)
    if not USERNAME_PATTERN.fullmatch(username):
        raise BadRequest(
            "invalid_username", "a username is 1 to 32 letters, digits, '_', '.' or '-'"
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise BadRequest(
            "invalid_password", f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )
    await limit(context.signup_limiter, client_address(request), "sign-ups from this address")
    try:
        await context.accounts.create(username, password, int(time.time() * 1000))
    except UsernameTaken:
        raise Conflict("username_taken", f"the name {username!r} is taken") from None
    return signed_in(request, username, 201)


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    context = context_of(request)
    username, password = await read_credentials(request)
    key = f"{client_address(request)}|{username.lower()}"
    if await context.login_limiter.peek(key) > 0:
        await limit(context.login_limiter, key, "failed sign-ins")
    stored_name = await context.accounts.check_password(username, password)
    if stored_name is None:
        await context.login_limiter.retry_after(key)  # count the failure
        raise Unauthorized("wrong_credentials", "wrong username or password")
    return signed_in(request, stored_name, 200)


# --8<-- [start:logout]
@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    """End the session of the token this was called with (its streams close); always 204."""
    try:
        session = authenticate_session(request)
    except Unauthorized:
        session = None  # no session, or one that has ended already: nothing to revoke
    if session is not None:
        await context_of(request).sessions.revoke(session)
    return signed_out()


@routes.post("/api/logout-all")
async def logout_all(request: web.Request) -> web.Response:
    """End every session of the signed-in user, on every device and every process."""
    user = authenticate(request)
    await context_of(request).sessions.revoke_all(user)
    return signed_out()


@routes.post("/api/password")
async def change_password(request: web.Request) -> web.Response:
    """Set a new password (the old one is required); every other session of the user ends."""
    context = context_of(request)
    user = authenticate(request)
    body = await read_json_object(request)
    old_password = require_string(body, "old_password")
    new_password = require_string(body, "new_password")
    if not MIN_PASSWORD <= len(new_password) <= MAX_PASSWORD:
        raise BadRequest(
            "invalid_password", f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )
    key = f"{client_address(request)}|{user.lower()}"
    if await context.login_limiter.peek(key) > 0:
        await limit(context.login_limiter, key, "failed password checks")
    if await context.accounts.check_password(user, old_password) is None:
        await context.login_limiter.retry_after(key)  # count the failure, as a failed sign-in
        raise Forbidden("wrong_password", "the old password is not right")
    await context.accounts.set_password(user, new_password)
    await context.sessions.revoke_all(user)
    # This device stays signed in, with a token of the new generation.
    return signed_in(request, user, 200)


def signed_out() -> web.Response:
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# --8<-- [end:logout]


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    return web.json_response({"username": authenticate(request)})
