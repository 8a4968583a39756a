"""Run the API page's curl commands against a live server and record what they print.

    .venv/bin/python tools/make_api_transcripts.py           # rewrite tools/api_transcripts.txt
    .venv/bin/python tools/make_api_transcripts.py --check   # exit 1 if the stored one is stale

The commands are in ``tools/api_examples.sh``, in sections (``## name``). They run in one
``bash``, in order, in an empty temporary folder, against ``python -m my_chat`` started in
that folder on a free loopback port (so its data is in ``var/``, as with ``make chat``). The
commands say ``127.0.0.1:8080``, as a reader types them; the port is swapped on the way in and
back on the way out. The result is ``tools/api_transcripts.txt``: one snippet section per
example, ``$ command`` followed by its output, which chapters/api.md includes.

``--check`` (and ``tests/test_api_transcripts.py``) runs everything again and compares, with
what changes on every run normalised: tokens, ids, keys, times. Needs ``curl`` and ``jq``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from my_chat.launch import ChildServer, chat_command  # noqa: E402
from my_chat.serve import free_port  # noqa: E402

EXAMPLES = ROOT / "tools" / "api_examples.sh"
TRANSCRIPTS = ROOT / "tools" / "api_transcripts.txt"
SHOWN_ADDRESS = "127.0.0.1:8080"
_SECTION = re.compile(r"^## (?P<name>[\w-]+)$")
_SEPARATOR = "@@@ transcript step {} @@@"

# What differs from run to run, and what it becomes for comparing.
_VOLATILE = [
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+"), "<jwt>"),
    (re.compile(r'"jti": "[\w-]+"'), '"jti": "<jti>"'),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<id>"),
    (re.compile(r"\b1\d{12}\b"), "<ms>"),
    (re.compile(r"\b1\d{9}\b"), "<s>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?"), "<time>"),
    (re.compile(r"(?im)^(date|expires|set-cookie): .*$"), r"\1: <varies>"),
    (re.compile(r"[\w-]{40,}"), "<key>"),
]


class TranscriptError(Exception):
    """A command that could not run, or a server that did not start."""


def sections(text: str) -> list[tuple[str, list[str]]]:
    """(name, commands) in file order; comments before the first section are skipped."""
    found: list[tuple[str, list[str]]] = []
    block: list[str] = []

    def flush() -> None:
        if found and any(line.strip() for line in block):
            found[-1][1].append("\n".join(block).strip("\n"))
        block.clear()

    for line in text.splitlines():
        if match := _SECTION.match(line):
            flush()
            found.append((match["name"], []))
        elif not found:
            continue
        elif not line.strip():
            flush()
        else:
            block.append(line)
    flush()
    return found


@contextlib.contextmanager
def running_server(folder: Path) -> Iterator[int]:
    """my_chat with its data in ``folder/var`` (what it would choose there by itself)."""
    env = {**os.environ}
    for name in ("MY_CHAT_JWT_SECRET", "MY_CHAT_SERVICE_KEY", "MY_CHAT_REDIS_URL"):
        env.pop(name, None)
    env.pop("MY_CHAT_DATA_DIR", None)
    port = free_port()
    server = ChildServer(
        # No jitter on retry:, so that the transcript is the same from run to run.
        chat_command(port, folder / "var", "--log-level", "warning", "--retry-jitter-ms", "0"),
        port=port,
        log_path=folder.parent / "server.log",
        env=env,
        cwd=folder,
    )
    try:
        server.start()
    except RuntimeError as error:
        raise TranscriptError(str(error)) from None
    try:
        yield port
    finally:
        server.stop()


def run_examples(examples: list[tuple[str, list[str]]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every section's (command, output) pairs, from one bash session against a new server."""
    for tool in ("curl", "jq", "bash"):
        if shutil.which(tool) is None:
            raise TranscriptError(f"{tool} is not installed")
    steps = [command for _, commands in examples for command in commands]
    with tempfile.TemporaryDirectory(prefix="api-transcripts-") as tmp:
        folder = Path(tmp) / "chat"
        folder.mkdir()
        with running_server(folder) as port:
            script = []
            for number, command in enumerate(steps):
                script.append(f"printf '\\n{_SEPARATOR.format(number)}\\n'")
                script.append(command.replace(SHOWN_ADDRESS, f"127.0.0.1:{port}"))
            result = subprocess.run(
                ["bash", "--noprofile", "--norc"],
                input="\n".join(script) + "\n",
                capture_output=True,
                text=True,
                cwd=folder,
                timeout=120,
            )
    if result.stderr.strip():
        raise TranscriptError(f"the commands wrote to stderr:\n{result.stderr}")
    outputs = re.split(r"\n@@@ transcript step \d+ @@@\n", "\n" + result.stdout)[1:]
    if len(outputs) != len(steps):
        raise TranscriptError(f"expected {len(steps)} outputs, got {len(outputs)}")
    outputs = [o.replace(f"127.0.0.1:{port}", SHOWN_ADDRESS).strip("\n") for o in outputs]
    recorded, index = [], 0
    for name, commands in examples:
        pairs = []
        for command in commands:
            pairs.append((command, outputs[index].replace("\r\n", "\n")))
            index += 1
        recorded.append((name, pairs))
    return recorded


def transcript_text(recorded: list[tuple[str, list[tuple[str, str]]]]) -> str:
    lines = [
        "# Made by tools/make_api_transcripts.py from tools/api_examples.sh: do not edit.",
        "# Each section is one example on the API page, as a terminal shows it.",
    ]
    for name, pairs in recorded:
        lines.append(f"# --8<-- [start:{name}]")
        for command, output in pairs:
            lines.append("$ " + command.replace("\n", "\n  ").replace("\n    ", "\n  "))
            if output:
                lines.append(output)
        lines.append(f"# --8<-- [end:{name}]")
    return "\n".join(lines) + "\n"


def normalise(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def make() -> str:
    return transcript_text(run_examples(sections(EXAMPLES.read_text(encoding="utf-8"))))


def stale_diff(stored: str, fresh: str) -> list[str]:
    """The normalised differences between the stored transcript and a fresh run."""
    return list(
        difflib.unified_diff(
            normalise(stored).splitlines(),
            normalise(fresh).splitlines(),
            "stored tools/api_transcripts.txt",
            "a fresh run",
            lineterm="",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the stored transcript; write nothing"
    )
    args = parser.parse_args(argv)
    try:
        fresh = make()
    except TranscriptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.check:
        diff = stale_diff(TRANSCRIPTS.read_text(encoding="utf-8"), fresh)
        print("\n".join(diff) if diff else f"{TRANSCRIPTS.name}: up to date")
        return 1 if diff else 0
    TRANSCRIPTS.write_text(fresh, encoding="utf-8")
    print(f"wrote {TRANSCRIPTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
