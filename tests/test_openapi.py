"""The OpenAPI document: valid OpenAPI 3.1, in step with the routes, served, and rendered.

Schemathesis checks the running server against the document (tests/test_schemathesis.py);
these tests keep the document itself honest: every route the app has is documented, every
documented path is routed, and what the document promises holds together.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web

from my_chat.openapi import DOCUMENT_PATH, document
from my_chat.server import STATIC_DIR, create_app
from tests.conftest import ROOT, fast_settings

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def documented_operations(doc: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def routed_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) for every route, with paths as OpenAPI writes them.

    aiohttp answers HEAD wherever it answers GET (it adds the route itself); the document
    describes GET only.
    """
    routed = set()
    for resource in app.router.resources():
        for route in resource:
            if route.method != "HEAD":
                routed.add((route.method, resource.canonical))
    return routed


def test_document_is_valid_openapi_3_1():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(doc).validate()


def test_every_route_is_documented_and_every_documented_path_routed(tmp_path):
    app = create_app(fast_settings(tmp_path))
    routed, documented = routed_operations(app), documented_operations(document())
    assert routed - documented == set(), "routes missing from my_chat/openapi.json"
    assert documented - routed == set(), "documented operations the app does not route"


def test_static_file_names_match_the_folder():
    operation = document()["paths"]["/static/{filename}"]["get"]
    (parameter,) = operation["parameters"]
    assert sorted(parameter["schema"]["enum"]) == sorted(
        p.name for p in STATIC_DIR.iterdir() if p.is_file()
    )
    operation = document()["paths"]["/static/texts/{filename}"]["get"]
    (parameter,) = operation["parameters"]
    texts = STATIC_DIR / "texts"
    assert sorted(parameter["schema"]["enum"]) == sorted(p.name for p in texts.iterdir())


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        target: dict = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_every_error_answer_uses_the_error_schema_and_every_operation_is_named():
    doc = document()
    ids = set()
    for method, path, operation in _operations(doc):
        assert operation.get("operationId"), (method, path)
        ids.add(operation["operationId"])
        assert "security" in operation, f"{method} {path}: say who may call it"
        for status, response in operation["responses"].items():
            response = _resolve(doc, response)
            if status.startswith(("4", "5")):
                schema = _resolve(doc, response["content"]["application/json"]["schema"])
                # The shared error schema, or one that adds to it (/healthz names stopped tasks).
                assert {"error", "message"} <= set(schema["required"]), (method, path, status)
    assert len(ids) == len(list(_operations(doc))), "operationIds must be unique"


def test_links_name_existing_operations_and_their_parameters():
    doc = document()
    by_id = {op["operationId"]: op for _, _, op in _operations(doc)}
    links = 0
    for _, _, operation in _operations(doc):
        for response in operation["responses"].values():
            for link in _resolve(doc, response).get("links", {}).values():
                links += 1
                target = by_id[link["operationId"]]
                names = {
                    f"{p['in']}.{p['name']}"
                    for p in (_resolve(doc, p) for p in target.get("parameters", []))
                }
                assert set(link.get("parameters", {})) <= names, link
                if "requestBody" in link:
                    assert "requestBody" in target, link
    assert links >= 4, "the stateful phase needs links: sign-up -> login -> messages -> history"


def test_service_and_user_security_match_the_code():
    """Push endpoints take the service key only; user endpoints the token or the cookie."""
    doc = document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["serviceKey"] == {**schemes["serviceKey"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["name"] == "my_chat_session"
    for method, path, operation in _operations(doc):
        names = {name for requirement in operation["security"] for name in requirement}
        if path in {"/api/push", "/api/broadcast", "/api/stats", "/metrics"}:
            assert names == {"serviceKey"}, (method, path)
        elif names:
            assert "serviceKey" not in names, (method, path)


async def test_the_document_is_served(server):
    status, body = await server.client().request("GET", "/api/openapi.json")
    assert status == 200
    assert body == json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools/mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_page_gets_a_reference_of_every_operation(hooks):
    page = (ROOT / "chapters/api.md").read_text(encoding="utf-8")
    assert hooks.OPENAPI_MARKER in page
    rendered = hooks.render_openapi_reference(document())
    for method, path, operation in _operations(document()):
        start = f"| `{method} {path}` |"
        row = next(line for line in rendered.splitlines() if line.startswith(start))
        for status in operation["responses"]:
            assert re.search(rf"\b{status}\b", row), (method, path, status)
    assert "/api/openapi.json" in rendered


def test_the_package_ships_the_document():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"openapi.json"' in pyproject
    assert Path(DOCUMENT_PATH).parent.name == "my_chat"


async def test_static_files_as_documented_and_a_missing_one_is_a_json_404(server):
    client = server.client()
    async with server.session.get(f"{server.url}/static/app.js") as response:
        assert response.status == 200 and "javascript" in response.content_type
    for name in ("nope.js", "..%2Fserver.py", "%2e%2e/openapi.json"):
        status, body = await client.request("GET", f"/static/{name}")
        assert status == 404 and body["error"] == "not_found", name
    status, _ = await client.request("GET", "/api/status")
    assert status == 200
