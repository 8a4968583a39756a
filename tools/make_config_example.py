"""Write ``my_chat.example.toml``: every setting of ``Settings``, with its default and comment.

    python tools/make_config_example.py           # write it
    python tools/make_config_example.py --check   # exit 1 if it is out of step with Settings

Everything comes from ``my_chat/config.py``: the fields and their order, the defaults, and
the comment lines written just above each field (and the blank lines between groups). A new
field therefore needs nothing here, only a run of this tool; ``tests/test_config_file.py``
fails until that run is done.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from my_chat.config import Settings  # noqa: E402

CONFIG_SOURCE = ROOT / "my_chat" / "config.py"
EXAMPLE = ROOT / "my_chat.example.toml"

HEADER = """\
# my_chat's settings, each with its default: python -m my_chat --config my_chat.toml
#
# Generated from my_chat/config.py by tools/make_config_example.py: do not edit it by hand.
# Copy it, keep the lines you change, and delete the rest. A setting can also be given in
# the environment (MY_CHAT_ and its name in capitals) or on the command line; the command
# line wins over the environment, and the environment over this file.
# Settings that are not set by default (such as the secrets) are shown commented out.
"""


def toml_value(value: object) -> str:
    """``value`` written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        # A JSON string is a valid TOML basic string for every text a setting holds.
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def field_layout(source: str) -> dict[str, tuple[list[str], bool]]:
    """For each field of ``Settings``: the comment lines just above it, and whether a blank
    line comes before those (a new group)."""
    lines = source.splitlines()
    tree = ast.parse(source)
    settings = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )
    layout: dict[str, tuple[list[str], bool]] = {}
    for node in settings.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        comments: list[str] = []
        row = node.lineno - 2  # the line above, 0-based
        while row >= 0 and lines[row].strip().startswith("#"):
            comments.insert(0, lines[row].strip())
            row -= 1
        blank_before = row >= 0 and not lines[row].strip()
        layout[node.target.id] = (comments, blank_before)
    return layout


def render() -> str:
    defaults = Settings()
    layout = field_layout(CONFIG_SOURCE.read_text())
    out = [HEADER]
    for index, field in enumerate(dataclasses.fields(Settings)):
        comments, blank_before = layout.get(field.name, ([], False))
        if index and (blank_before or comments):
            out.append("")
        out.extend(line.replace("``", "`") for line in comments)
        value = getattr(defaults, field.name)
        if value is None:
            out.append(f'# {field.name} = ""  # not set')
        else:
            out.append(f"{field.name} = {toml_value(value)}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    text = render()
    name = EXAMPLE.relative_to(ROOT)
    if args.check:
        if not EXAMPLE.exists() or EXAMPLE.read_text() != text:
            print(
                f"{name} is out of step with Settings: run python tools/make_config_example.py",
                file=sys.stderr,
            )
            return 1
        print(f"{name} matches Settings")
        return 0
    EXAMPLE.write_text(text)
    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
