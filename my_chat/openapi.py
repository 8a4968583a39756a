"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the whole HTTP API.

The document is a file in the package (``openapi.json``), written by hand beside the code it
describes; ``tests/test_openapi.py`` keeps it and the routes in step, and Schemathesis checks
the running server against it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

DOCUMENT_PATH = Path(__file__).parent / "openapi.json"

routes = web.RouteTableDef()


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document, read once."""
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
