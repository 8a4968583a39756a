"""Schemathesis hooks for the run against my_chat (loaded through ``SCHEMATHESIS_HOOKS``).

* A link that copies a message id into ``Last-Event-ID`` hands over the id as a number;
  HTTP headers are text, so it is sent as text.
* Signing out revokes the token it is called with. Called with the run's own token, every
  later request would get 401 and test nothing, so those calls use a fresh user's token.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from typing import Any

import schemathesis

# Calls that end the session they are made with (the ones present in the document).
REVOKING = {("POST", "/api/logout"), ("POST", "/api/logout-all"), ("POST", "/api/password")}


def _fresh_token() -> str:
    name = "st-" + secrets.token_hex(6)
    request = urllib.request.Request(
        os.environ["MY_CHAT_TEST_URL"] + "/api/signup",
        # The password of the document's examples, so changing it works as the example says.
        data=json.dumps({"username": name, "password": "correct horse"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.headers:
        for name, value in list(case.headers.items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                case.headers[name] = str(value)
    if (case.method.upper(), case.operation.path) not in REVOKING:
        return
    run_token = os.environ["MY_CHAT_TEST_TOKEN"]
    fresh = None
    # Credentials are in the case by now: Schemathesis applies auth before this hook.
    for values in (case.headers or {}, case.cookies or {}):
        for name, value in list(values.items()):
            if isinstance(value, str) and run_token in value:
                fresh = fresh or _fresh_token()
                values[name] = value.replace(run_token, fresh)
