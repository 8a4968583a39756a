"""Schemathesis against a real my_chat process, over HTTP, from the served OpenAPI document.

Every check Schemathesis has, in every phase: the coverage phase (boundary and invalid values
of every field), fuzzing (random valid and invalid requests), and the stateful phase, which
follows the document's links: sign up, sign in, message that user, read the history before
the message, resume a stream after it. The settings are in tests/schemathesis.toml; the run's
own user signs up here, and its token and the service key reach Schemathesis through the
environment. Seeded and sized for CI; ``make explore`` runs it longer with a fresh seed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ROOT, SERVICE_KEY

CONFIG = ROOT / "tests" / "schemathesis.toml"
HOOKS = ROOT / "tests" / "schemathesis_hooks.py"
# The server's own limits would answer most of a fuzzer's requests with 429 and test nothing
# else; the limits have their own tests.
UNLIMITED = ("--signup-per-minute", "0", "--message-burst", "1000000", "--message-rate", "1e6")


# The run's own user, with the password of the document's examples; "alice", the examples'
# user, exists too, so the examples work as written (and she is someone else to message).
USER, PASSWORD = "schemathesis", "correct horse"


def sign_up(url: str, username: str = USER, password: str = PASSWORD) -> str:
    request = urllib.request.Request(
        f"{url}/api/signup",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


def run_schemathesis(
    url: str, token: str, report: Path, *extra: str
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MY_CHAT_TEST_URL": url,
        "MY_CHAT_TEST_TOKEN": token,
        "MY_CHAT_SERVICE_KEY": SERVICE_KEY,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "NO_COLOR": "1",
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/api/openapi.json",
        "--checks",
        "all",
        "--report",
        "junit",
        "--report-dir",
        str(report),
        *extra,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(600)
def test_the_server_keeps_every_promise_of_its_openapi_document(server_process, tmp_path):
    server = server_process(*UNLIMITED)
    token = sign_up(server.url)
    sign_up(server.url, "alice")
    extra: tuple[str, ...] = ()
    if os.environ.get("MY_CHAT_EXPLORE"):
        # make explore: many more cases, and a new seed each time (the output names it).
        extra = ("--max-examples", "300", "--seed", str(random.randrange(2**31)))
    result = run_schemathesis(server.url, token, tmp_path / "report", *extra)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"Schemathesis found problems:\n{output}\n\nserver log:\n" + (server.log()[-5000:])
    )
    # It did run, all four phases and the links between operations.
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in output, output
    assert "API Links:" in output, output
    # The run's token still works: had a sign-out revoked it, every later request would have
    # been a 401, which Schemathesis accepts, and the run would have tested nothing.
    me = urllib.request.Request(
        f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(me, timeout=10) as response:
        assert json.loads(response.read()) == {"username": USER}
    # No handler failed, even where the answer still looked fine. (aiohttp logs the requests
    # its parser refuses, such as the probe with a NUL byte in a header; those are not ours.)
    for failure in ("unexpected error in", "stream failed"):
        assert failure not in server.log(), server.log()


@pytest.mark.timeout(120)
def test_schemathesis_fails_on_a_server_that_breaks_its_document(server_process, tmp_path):
    """The run above can fail: against a document that promises what the server does not do."""
    server = server_process(*UNLIMITED)
    token = sign_up(server.url)
    document = json.loads((ROOT / "my_chat" / "openapi.json").read_text(encoding="utf-8"))
    # Promise a field that /api/me never sends.
    me = document["components"]["schemas"]["Me"]
    me["required"] = [*me["required"], "display_name"]
    me["properties"]["display_name"] = {"type": "string"}
    broken = tmp_path / "openapi.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    env = {
        **os.environ,
        "MY_CHAT_TEST_URL": server.url,
        "MY_CHAT_TEST_TOKEN": token,
        "MY_CHAT_SERVICE_KEY": SERVICE_KEY,
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            str(broken),
            "--url",
            server.url,
            "--checks",
            "all",
            "--include-operation-id",
            "me",
            "--phases",
            "fuzzing",
            "--max-examples",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "display_name" in result.stdout + result.stderr


async def test_a_parameter_given_twice_is_refused(server):
    """Found by Schemathesis: ``?last_event_id=&last_event_id=junk`` was a 200, the junk unread."""
    alice = await server.user("alice")
    for path in (
        "/sse?last_event_id=&last_event_id=junk",
        "/sse?last_event_id=1&last_event_id=2",
        "/api/history?limit=5&limit=-1",
        "/api/history?before=&before=x",
    ):
        # A bounded wait: accepted, the stream would never end.
        status, body = await alice.request("GET", path, timeout=aiohttp.ClientTimeout(total=10))
        assert status == 400 and body["error"].startswith("invalid_"), (path, body)
    status, body = await alice.request("GET", "/sse", headers={"Last-Event-ID": "1, 2"})
    assert status == 400
    status, body = await alice.request("GET", "/api/history?limit=5")
    assert status == 200
