"""JSON errors: every failure the API reports is ``{"error": code, "message": text}``."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

logger = logging.getLogger("my_chat")


class ApiError(Exception):
    """An error the client caused, answered with ``status`` and a JSON body."""

    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    status = 429


class ExerciseNotDone(ApiError):
    status = 501


class StartupError(Exception):
    """A problem at start-up that has a plain explanation (no stack trace needed)."""


class InvalidToken(Exception):
    """A token that is missing, malformed, expired, or signed with another key."""


def error_response(status: int, code: str, message: str, headers=None) -> web.Response:
    return web.json_response(
        {"error": code, "message": message}, status=status, headers=headers or None
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


# aiohttp's parser messages quote the refused bytes after the reason ("Invalid method
# encountered:\n\n  b'GARBAGE'"); the reason is kept, the client's own bytes are not echoed.
_QUOTED_INPUT = re.compile(r":?\s*(?:b'|b\"|bytearray\().*", re.DOTALL)


# --8<-- [start:refused-early]
def refused_early(status: int, exc: BaseException | None, message: str | None) -> web.Response:
    """The JSON error for a request no handler answered: aiohttp's HTTP parser refused it
    (``400``: a malformed request line, a header line over 8,190 bytes, TLS sent to the HTTP
    port...), or it failed outside the error middleware (``500``). aiohttp's own answer is
    plain text that quotes the client's bytes back."""
    # Literal codes and messages: tools/text_facts.py lists them in the API's error table.
    headers = {"X-Content-Type-Options": "nosniff"}
    if status == 500:
        response = error_response(
            500, "internal", "the server failed on this request; it is logged", headers
        )
    elif status == 400:
        reason = getattr(exc, "message", None) or message or str(exc or "")
        lines = reason.strip().splitlines()
        reason = _QUOTED_INPUT.sub("", lines[0]).rstrip(".: ") if lines else ""
        detail = f": {reason}" if reason else ""
        response = error_response(
            400, "malformed_request", f"the request is not valid HTTP/1.1{detail}", headers
        )
    else:
        code = _HTTP_CODES.get(status, "http_error")
        lines = (message or "").strip().splitlines()
        response = error_response(status, code, lines[0] if lines else code, headers)
    response.force_close()  # what came after the refused bytes cannot be trusted to be a request
    return response


# --8<-- [end:refused-early]


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every error into JSON, so no client ever sees an HTML error page or a bare 500."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.code, error.message, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "http_error")
        headers = {k: v for k, v in error.headers.items() if k.lower() in {"allow", "retry-after"}}
        return error_response(error.status, code, error.reason or code, headers)
    except ConnectionResetError:
        raise  # the client went away; there is nobody to answer
    except Exception:
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal", "the server failed on this request; it is logged")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or the matching 4xx error."""
    if request.content_type != "application/json":
        raise ApiError(
            "unsupported_media_type", "send JSON with Content-Type: application/json", status=415
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge("body_too_large", "the request body is too large") from None
    try:
        body = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("invalid_json", "the body must be a JSON object")
    if not _is_unicode(body):
        raise BadRequest(
            "invalid_unicode",
            "the body holds a lone surrogate (such as \\ud800), which is not Unicode text",
        )
    return body


def _refuse_constant(name: str) -> object:
    # NaN and Infinity are not JSON (RFC 8259), though Python reads them; browsers cannot.
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999 reads as infinity
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def _is_unicode(body: dict[str, Any]) -> bool:
    """False if any string in ``body`` holds a lone surrogate, which UTF-8 cannot encode.

    JSON lets ``"\\ud800"`` through and Python decodes it to a string that SQLite, Redis and
    PyJWT then fail on; refusing it here keeps it out of every handler at once.
    """
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def require_string(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise BadRequest("invalid_field", f"'{field}' must be a string")
    return value
