"""Numbers the text states and the code decides: each claim is checked against the code.

Tables of settings, events, errors and limits are generated from the code at build time
(``tools/text_facts.py``, through the mkdocs hook); this file checks the generators, and the
numbers that prose and diagrams state in passing ("all seven events", "every 30 s",
"256 KiB"). Each claim is a pattern that must still be found in its file: rewording a
sentence makes the test say so, instead of the check silently stopping.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from my_chat import accounts, events, push
from my_chat.config import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import text_facts  # noqa: E402

DEFAULTS = Settings()
# The guide's gateway declares three event names (connection_id, heartbeat, reconnect).
GUIDE_EVENTS = 3
WORDS = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


def _number(text: str) -> float:
    text = text.lower().replace(",", "")
    return WORDS[text] if text in WORDS else float(text)


def kib(value: int) -> float:
    return value / 1024


# (file, pattern with one group per number, the values the code gives, in order)
CLAIMS: list[tuple[str, str, Callable[[], tuple[float, ...]]]] = [
    (
        "chapters/04-gateway-module-by-module.md",
        r"lists all (\w+), with",
        lambda: (len(events.RESERVED_EVENTS),),
    ),
    (
        "chapters/04-gateway-module-by-module.md",
        r"my_chat has (\w+) more events than the guide",
        lambda: (len(events.RESERVED_EVENTS) - GUIDE_EVENTS,),
    ),
    (
        "chapters/02-sse-in-depth.md",
        r"section periodic \(every (\d+) s",
        lambda: (DEFAULTS.periodic_interval,),
    ),
    (
        "chapters/02-sse-in-depth.md",
        r"section healthcheck \(every (\d+) s",
        lambda: (DEFAULTS.healthcheck_interval,),
    ),
    (
        "chapters/02-sse-in-depth.md",
        r"some heartbeat comes at least every (\d+) seconds",
        lambda: (DEFAULTS.periodic_interval,),
    ),
    (
        "chapters/02-sse-in-depth.md",
        r"waits retry = (\d+) ms \+ up to (\d+) ms",
        lambda: (DEFAULTS.retry_ms, DEFAULTS.retry_jitter_ms),
    ),
    (
        "chapters/04-gateway-module-by-module.md",
        r"one frame for all every (\d+) s",
        lambda: (DEFAULTS.periodic_interval,),
    ),
    (
        "chapters/04-gateway-module-by-module.md",
        r"one frame per connection every (\d+) s",
        lambda: (DEFAULTS.healthcheck_interval,),
    ),
    (
        "chapters/04-gateway-module-by-module.md",
        r"`Settings.buffer_limit` bytes \((\d+) KiB\)",
        lambda: (kib(DEFAULTS.buffer_limit),),
    ),
    (
        "chapters/04-gateway-module-by-module.md",
        r"or the latest (\d+)\)",
        lambda: (DEFAULTS.history_on_connect,),
    ),
    (
        "chapters/04-gateway-module-by-module.md",
        r"At most ([\d,]+) users per call and (\d+) KiB of data",
        lambda: (push.MAX_USERS_PER_PUSH, kib(push.MAX_DATA_BYTES)),
    ),
    (
        "chapters/appendix-performance.md",
        r"(\d+) KiB are waiting for it",
        lambda: (kib(DEFAULTS.buffer_limit),),
    ),
    (
        "chapters/appendix-scaling-out.md",
        r"waits retry \((\d+) to (\d+) s\)",
        lambda: (DEFAULTS.retry_ms / 1000, (DEFAULTS.retry_ms + DEFAULTS.retry_jitter_ms) / 1000),
    ),
    (
        "chapters/appendix-scaling-out.md",
        r"default cap of ([\d,]+) messages",
        lambda: (DEFAULTS.retention_count,),
    ),
    (
        "chapters/api.md",
        r"passwords (\d+) to (\d+) characters",
        lambda: (accounts.MIN_PASSWORD, accounts.MAX_PASSWORD),
    ),
    (
        "chapters/api.md",
        r"latest `--history` messages \(default (\d+)\)",
        lambda: (DEFAULTS.history_on_connect,),
    ),
    (
        "chapters/api.md",
        r"`--retention-count` messages \(default ([\d,]+)\) and none older than\s+"
        r"`--retention-days` \(default (\d+)\)",
        lambda: (DEFAULTS.retention_count, DEFAULTS.retention_days),
    ),
    (
        "chapters/appendix-security.md",
        r"\| request body \| (\d+) KiB \|",
        lambda: (kib(DEFAULTS.max_body),),
    ),
    (
        "chapters/appendix-security.md",
        r"\| message text \| ([\d,]+) characters \|",
        lambda: (DEFAULTS.max_text,),
    ),
    (
        "chapters/appendix-security.md",
        r"\| pushed event data \| (\d+) KiB \|",
        lambda: (kib(push.MAX_DATA_BYTES),),
    ),
    (
        "chapters/appendix-security.md",
        r"\| messages per user \| a burst of (\d+), then (\d+) per second \|",
        lambda: (DEFAULTS.message_burst, DEFAULTS.message_rate),
    ),
]


def text_of(relative: str) -> str:
    path = ROOT / relative
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(cell["source"]) for cell in cells)
    return path.read_text(encoding="utf-8")


def claim_problems(claims=CLAIMS, read: Callable[[str], str] = text_of) -> list[str]:
    problems = []
    for relative, pattern, expected in claims:
        matches = list(re.finditer(pattern, read(relative)))
        if not matches:
            problems.append(f"{relative}: the claim /{pattern}/ is no longer in the text")
        for match in matches:
            stated = tuple(_number(group) for group in match.groups())
            if stated != tuple(float(v) for v in expected()):
                problems.append(
                    f"{relative}: {match[0]!r} states {stated}, the code says {expected()}"
                )
    return problems


def test_numbers_in_the_text_are_the_code_s():
    problems = claim_problems()
    assert not problems, "\n".join(problems)


def test_a_wrong_default_in_the_code_is_caught(monkeypatch):
    monkeypatch.setattr(DEFAULTS, "history_on_connect", 20)
    problems = claim_problems()
    assert any("history" in p and "20" in p for p in problems), problems


def test_a_wrong_event_count_in_the_text_is_caught():
    def planted(relative: str) -> str:
        return re.sub(r"lists all \w+,", "lists all six,", text_of(relative))

    problems = claim_problems(read=planted)
    assert any("lists all six" in p for p in problems), problems


def test_every_list_of_the_server_s_own_event_names_is_complete():
    """Prose that lists the reserved names ("the server's own names (...)") lists them all."""
    listed = re.compile(r"own (?:event )?names[^.]*?\(([^)]*)\)", re.S)
    problems = []
    for path in sorted((ROOT / "chapters").glob("*.md")):
        for match in listed.finditer(path.read_text(encoding="utf-8")):
            if "<!-- generated:" in match[1]:
                continue
            names = set(re.findall(r"`(\w+)`", match[1]))
            if names and names != set(events.RESERVED_EVENTS):
                problems.append(f"{path.name}: lists {sorted(names)}")
    assert not problems, f"the server's own names are {sorted(events.RESERVED_EVENTS)}: {problems}"


# --- the generated tables ---------------------------------------------------------------


def test_the_settings_table_has_every_setting_with_its_default_and_a_description():
    rows = text_facts.settings_rows(text_facts.words())
    assert [row[0] for row in rows] == [f"`{f.name}`" for f in dataclasses.fields(Settings)]
    undescribed = [row[0] for row in rows if not row[3].strip()]
    assert not undescribed, (
        f"settings with no description: {undescribed}. Give the flag a help text, put a "
        "comment above the field in my_chat/config.py, or describe it in tools/facts.en.toml"
    )
    by_name = {row[0]: row for row in rows}
    assert by_name["`retry_ms`"][2] == "1000" == str(DEFAULTS.retry_ms)
    assert by_name["`buffer_limit`"][2] == "262,144 (256 KiB)"
    assert by_name["`history_on_connect`"][1] == "`--history`"


def test_the_settings_table_follows_a_changed_default(monkeypatch):
    import my_chat.config

    changed = dataclasses.make_dataclass(
        "Settings", [("retry_ms", int, dataclasses.field(default=1234))], bases=(Settings,)
    )
    monkeypatch.setattr(my_chat.config, "Settings", changed)
    rows = {row[0]: row for row in text_facts.settings_rows(text_facts.words())}
    assert rows["`retry_ms`"][2] == "1234"


def test_the_events_table_has_every_event_and_its_fields():
    table = text_facts.events_table(text_facts.words())
    for name in events.RESERVED_EVENTS:
        assert f"| `{name}` |" in table
    assert '`{"id", "from", "to", "text", "timestamp"}`' in table  # Message.to_payload's keys


def test_an_event_the_words_file_does_not_describe_fails_the_build():
    words = text_facts.words()
    del words["events"]["when"]["online"]
    with pytest.raises(text_facts.FactsError, match="online"):
        text_facts.events_table(words)


# Some codes are raised by the exercises' model answers (solutions/), which a student
# release leaves out: there the learner has not written them yet.
@pytest.mark.needs_solutions
def test_the_errors_table_finds_the_codes_the_server_raises():
    codes = {(status, code) for status, code, _, _ in text_facts.error_codes()}
    assert (400, "reserved_event") in codes
    assert (409, "username_taken") in codes
    assert (401, "invalid_token") in codes
    assert (404, "unknown_recipient") in codes  # in solutions/private.py
    assert (415, "unsupported_media_type") in codes  # ApiError(..., status=415)
    assert (400, "malformed_request") in codes  # error_response(400, ...), aiohttp's parser
    assert (500, "internal") in codes
    # Error classes with their own code: super().__init__("code", ...)
    assert {(408, "head_timeout"), (408, "body_timeout"), (503, "redis_unavailable")} <= codes


def test_the_cli_table_lists_every_flag_of_the_real_parser():
    table = text_facts.cli_table(text_facts.words())
    for flag in ("--port", "--history", "--buffer-limit", "--redis", "--exercises"):
        assert f"`{flag}`" in table


def test_every_marker_in_the_chapters_renders():
    for path in sorted((ROOT / "chapters").glob("*.md")):
        language = "zh" if path.name.endswith(".zh.md") else "en"
        text = path.read_text(encoding="utf-8")
        rendered = text_facts.render(text, origin=path.name, language=language)
        assert text_facts.MARKER.search(rendered) is None, path.name


def test_an_unknown_marker_fails():
    with pytest.raises(text_facts.FactsError, match="nonsense"):
        text_facts.render("<!-- generated: nonsense -->")


def test_a_marker_shown_as_code_is_left_alone():
    text = "Write `<!-- generated: settings -->` where the table goes."
    assert text_facts.render(text) == text


def test_a_table_inside_a_box_is_indented_with_it():
    rendered = text_facts.render('??? info "Flags"\n    <!-- generated: cli -->\n')
    lines = rendered.splitlines()
    assert lines[1].startswith("    | Flag |") and lines[2].startswith("    |---|")
    assert all(line.startswith("    ") for line in lines[1:] if line.strip())
