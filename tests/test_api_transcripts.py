"""The API page's curl examples still print what the page shows.

``tools/make_api_transcripts.py`` runs the commands of ``tools/api_examples.sh`` with real
``curl`` against a live ``python -m my_chat`` and stores what they print; chapters/api.md
includes it. Here they run again, and the stored transcript must match the fresh one once
tokens, ids, keys and times are normalised. When it does not, run the tool and read the diff.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import make_api_transcripts as transcripts  # noqa: E402

from tests.ports import free_port  # noqa: E402

# The transcript shows the model answers (private messages, tokens): it needs solutions/.
pytestmark = pytest.mark.needs_solutions


@pytest.fixture(scope="module")
def fresh() -> str:
    for tool in ("curl", "jq"):
        assert shutil.which(tool), f"{tool} is needed for the API transcripts (apt install {tool})"
    # The server's port from this worker's own block, not the kernel's (tests/ports.py).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transcripts, "free_port", free_port)
        return transcripts.make()


def test_the_stored_transcript_matches_a_fresh_run(fresh: str):
    diff = transcripts.stale_diff(transcripts.TRANSCRIPTS.read_text(encoding="utf-8"), fresh)
    assert not diff, (
        "chapters/api.md shows stale output; run tools/make_api_transcripts.py\n" + "\n".join(diff)
    )


def test_a_stale_transcript_is_caught(fresh: str):
    stored = transcripts.TRANSCRIPTS.read_text(encoding="utf-8")
    stale = stored.replace('"queued": 1', '"queued": 2', 1)
    assert stale != stored
    assert any('"queued": 2' in line for line in transcripts.stale_diff(stale, fresh))


def test_every_section_the_page_includes_exists():
    page = (ROOT / "chapters" / "api.md").read_text(encoding="utf-8")
    stored = transcripts.TRANSCRIPTS.read_text(encoding="utf-8")
    included = set(transcripts.re.findall(r'api_transcripts\.txt:([\w-]+)"', page))
    assert included
    for name in included:
        assert f"[start:{name}]" in stored, name


def test_volatile_parts_are_normalised_and_nothing_else():
    line = '{"id": 2, "token": "eyJa.eyJb.sig", "timestamp": 1796196238807, "text": "hi"}'
    assert transcripts.normalise(line) == (
        '{"id": 2, "token": "<jwt>", "timestamp": <ms>, "text": "hi"}'
    )
