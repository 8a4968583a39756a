"""What every request passes before a handler sees it, and what every response carries.

* A state-changing request (POST, PUT, PATCH, DELETE) from a browser page on another origin
  is refused with ``403``: the browser names the page's origin in ``Origin``, and a form on
  an attacker's site must not be able to log a user out or post in their name.
* A state-changing request with a body that is not JSON is refused with ``415``. HTML forms
  can only send form encodings and ``text/plain``, so a JSON-only API cannot be driven by a
  cross-site form even where ``Origin`` is missing.
* Credentials that are not UTF-8 text are refused with ``401`` before any token library
  tries to read them.
* Every response says how the browser may use it: ``nosniff``, no framing, no referrer
  leaking to other sites, and on the page a Content-Security-Policy that runs only the
  server's own script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from my_chat.auth import SESSION_COOKIE
from my_chat.errors import ApiError, Forbidden, Unauthorized

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What an HTML form can send (and fetch without a CORS preflight).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})

# --8<-- [start:security-headers]
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # The page runs /static/app.js and nothing else: no inline script, no other site's
    # script, no plugin; it may not be framed (clickjacking) and forms post only here.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none';"
        " form-action 'self'; frame-ancestors 'none'"
    ),
}
# --8<-- [end:security-headers]


def _host_of(netloc: str, scheme: str) -> str:
    """``netloc`` in lower case, without the scheme's default port."""
    netloc = netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return netloc.removesuffix(default) if default else netloc


def same_origin(request: web.Request, origin: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``origin`` is this server (the ``Host`` it was asked for) or listed as allowed."""
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # includes "null", sent by sandboxed frames and file: pages
    host = request.host or ""
    return _host_of(parts.netloc, parts.scheme) in {
        _host_of(host, "http"),
        _host_of(host, "https"),
    }


def _is_text(value: str) -> bool:
    # aiohttp decodes header bytes that are not UTF-8 to lone surrogates (surrogateescape).
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def guard_request(request: web.Request, allowed_origins: tuple[str, ...]) -> None:
    """Raise the JSON error a request must get before it reaches a handler, if any."""
    credentials = [request.headers.get("Authorization", "")]
    if "Cookie" in request.headers:  # else no parse: its result would live as long as a stream
        credentials += [request.cookies.get(SESSION_COOKIE, "")]
    if not all(_is_text(value) for value in credentials):
        raise Unauthorized("invalid_token", "the credentials are not valid UTF-8 text")
    if request.method not in STATE_CHANGING:
        return
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(request, origin, allowed_origins):
        raise Forbidden("cross_origin", "requests from another site's pages are refused")
    if request.body_exists or "Content-Type" in request.headers:
        # An empty body is no body, whatever its type; but never one a form can send.
        empty = not request.body_exists and request.content_type not in FORM_TYPES
        if request.content_type != "application/json" and not empty:
            raise ApiError(
                "unsupported_media_type",
                "send JSON with Content-Type: application/json",
                status=415,
            )


def request_guards(allowed_origins: tuple[str, ...] = ()):
    """The middleware running :func:`guard_request` on every request."""

    # A plain function that hands back the handler's awaitable, not a coroutine awaiting it:
    # a coroutine here would stay suspended, a frame of a few hundred bytes, for as long as
    # each SSE stream is open.
    @web.middleware
    def guards(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Awaitable[web.StreamResponse]:
        guard_request(request, allowed_origins)
        return handler(request)

    return guards


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers above, on every answer (streams included)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
