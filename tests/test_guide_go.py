"""The guide's phase-5 Go chat room: as printed it does not compile; the smallest fixes do.

Notebook 5 measures the running binary's flaws; these tests hold the claims the chapters make
about the code itself: which errors the compiler reports, that every fix is needed, and that
the fixed room runs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.request
from pathlib import Path

import pytest

import guide_go

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "sse-im-guide.zh.md"

if guide_go.missing_tools():
    message = "the guide's Go needs: apt-get install " + " ".join(guide_go.missing_tools())
    if os.environ.get("CI"):
        raise RuntimeError(message + " (.ci/run installs them)")
    pytest.skip(message, allow_module_level=True)

# What `go build` says about the files as printed, as (file, message).
PRINTED_ERRORS = {
    ("client.go", 'imported and not used: "net/http"'),
    ("client.go", "m.BroadcastSystemMessage undefined"),
    ("client.go", "m.SendOnlineList undefined"),
    ("handler.go", "manager.Register undefined"),
    ("handler.go", "undefined: fmt"),
    ("handler.go", "manager.SendChat undefined"),
    ("main.go", 'imported and not used: "github.com/gorilla/mux"'),
}


def short(errors: list[tuple[str, int, str]]) -> set[tuple[str, str]]:
    return {(file, message.split(" (")[0]) for file, _, message in errors}


# The guide sits beside the repository, not in a student release.
@pytest.mark.needs_solutions
@pytest.mark.needs_guide
def test_the_printed_files_are_the_guides_own():
    assert guide_go.extract_from_guide(SEED) == guide_go.printed_sources()


def test_as_printed_it_fails_with_the_errors_chapter_5_names(tmp_path):
    built = guide_go.build(guide_go.printed_sources(), tmp_path)
    assert not built.ok
    assert short(built.errors()) == PRINTED_ERRORS
    chapter = (ROOT / "chapters" / "05-build-the-chat-room.md").read_text(encoding="utf-8")
    for name in ("net/http", "fmt", "gorilla/mux", "Register", "SendChat"):
        assert f"`{name}`" in chapter
    assert "`BroadcastSystemMessage`" in chapter and "`SendOnlineList`" in chapter


def test_every_fix_is_needed(tmp_path):
    """Leave out any one fix for a compile error, and the compiler names that error again."""
    fixes = [fix for fix in guide_go.fixes() if fix.error]
    assert fixes
    for left_out in fixes:
        sources = guide_go.printed_sources()
        for fix in fixes:
            if fix is left_out:
                continue
            if fix.old is None:
                sources[fix.file] = (guide_go.HERE / fix.file).read_text(encoding="utf-8")
            else:
                sources[fix.file] = sources[fix.file].replace(fix.old, fix.new)
        built = guide_go.build(sources, tmp_path / left_out.file.replace(".", "_"))
        assert not built.ok, f"{left_out.why}: builds without this fix"
        reported = " ".join(message for _, _, message in built.errors())
        first_error = left_out.error.split(",")[0].strip()
        assert first_error in reported, (left_out.error, reported)


def read_until(sock: socket.socket, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
    data = b""
    while (found := pattern.search(data)) is None:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return found


def test_the_fixed_room_builds_serves_its_page_and_streams(tmp_path):
    built = guide_go.build(guide_go.fixed_sources(), tmp_path)
    assert built.ok, built.output
    with guide_go.running(built) as room:
        with urllib.request.urlopen(f"{room.url}/index.html", timeout=5) as page:
            assert "EventSource" in page.read().decode()
        with socket.create_connection(("127.0.0.1", room.port), timeout=5) as stream:
            stream.sendall(b"GET /sse?username=tester HTTP/1.0\r\nHost: go\r\n\r\n")
            found = read_until(stream, re.compile(rb"event: online_list\ndata: (.*)\n\n"))
        head = found.string
        assert b"text/event-stream" in head
        assert b"event: connection_id" in head
        assert json.loads(found.group(1)) == ["tester"]
