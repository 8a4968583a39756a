"""``python -m my_chat --exercises``: the server on the learner's code, finished or not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chat_client import ChatClient, ServerProcess, client_session

ROOT = Path(__file__).resolve().parent.parent
# In the order of their numbers: the page numbers them by their place in /api/status.
PART_NAMES = ("heartbeat", "tokens", "message_store", "private")


def fresh_stubs_repo(tmp_path: Path) -> Path:
    """A copy of my_chat with freshly generated, untouched stubs as its exercises/."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "my_chat", root / "my_chat")
    subprocess.run(
        [sys.executable, "tools/make_exercises.py", "--out", str(root / "exercises")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return root


async def test_status_names_every_part(tmp_path):
    # Runs in a student release too: whatever the learner has done, the server starts.
    process = ServerProcess(tmp_path / "data", "--exercises", cwd=ROOT)
    process.start()
    try:
        async with client_session() as session, session.get(f"{process.url}/api/status") as r:
            body = await r.json()
        assert body["mode"] == "exercises"
        assert tuple(body["exercises"]) == PART_NAMES
        assert all(
            v == "done" or v == "not done" or v.startswith("broken:")
            for v in body["exercises"].values()
        )
        assert "Traceback" not in process.log()
    finally:
        process.stop()


@pytest.mark.needs_solutions
async def test_untouched_stubs_are_reported_and_the_chat_still_works(tmp_path):
    root = fresh_stubs_repo(tmp_path)
    # Run from the copy, so its exercises/ (the fresh stubs) are the ones imported.
    process = ServerProcess(tmp_path / "data", "--exercises", cwd=root)
    process.start()
    try:
        log = process.log()
        for name in PART_NAMES:
            assert f"{name}" in log and "not done" in log
        assert "Traceback" not in log
        async with client_session() as session:
            async with session.get(f"{process.url}/api/status") as response:
                body = await response.json()
            assert body == {"exercises": dict.fromkeys(PART_NAMES, "not done"), "mode": "exercises"}
            # Sign-in still works (in-memory sessions until the JWT exercise is done)...
            alice = await ChatClient(process.url, session).signup("alice")
            bob = await ChatClient(process.url, session).signup("bob")
            assert alice.token.startswith("session-")
            stream = await bob.open_stream()
            # ...the room works live, without history...
            sent = await alice.send("hello")
            assert (await stream.next_json("message"))["id"] == sent["id"]
            status, history = await alice.request("GET", "/api/history")
            assert (status, history) == (200, {"messages": []})
            # ...and private messages say which exercise they need.
            status, body = await alice.request(
                "POST", "/api/messages", json={"text": "psst", "to": "bob"}
            )
            assert status == 501 and body["error"] == "exercise_not_done"
            assert "exercise 4" in body["message"]
            # No heartbeat exercise, no heartbeats.
            assert not [e for e in stream.received if e.type == "heartbeat"]
            stream.close()
    finally:
        process.stop()
