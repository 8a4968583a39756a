"""The site's build hooks: the exercise stubs it shows are the generated ones."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import markdown
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import mkdocs_hooks  # noqa: E402

pytestmark = pytest.mark.needs_solutions


def include(base_path: list[str], target: str) -> str:
    md = markdown.Markdown(
        extensions=["pymdownx.snippets"],
        extension_configs={"pymdownx.snippets": {"base_path": base_path, "check_paths": True}},
    )
    return md.convert(f'--8<-- "{target}"')


def test_the_site_includes_the_generated_stub_not_the_learners_copy(tmp_path, monkeypatch):
    """A learner's edits to exercises/ never show up on the site as "the whole stub"."""
    pristine = mkdocs_hooks.pristine_stubs()
    assert "heartbeat.py" in pristine
    monkeypatch.setattr(mkdocs_hooks, "DOCS_STUBS", tmp_path / "docs-stubs")
    # Stand-in for a stub that differs from the working copy (as after a learner's edits).
    monkeypatch.setattr(
        mkdocs_hooks,
        "pristine_stubs",
        lambda: {**pristine, "heartbeat.py": "GENERATED_FROM_SOLUTIONS = True\n"},
    )
    config = SimpleNamespace(mdx_configs={"pymdownx.snippets": {"base_path": ["."]}})
    mkdocs_hooks.on_config(config)
    base_path = config.mdx_configs["pymdownx.snippets"]["base_path"]
    assert base_path[0] == str(tmp_path / "docs-stubs") and base_path[-1] == "."
    monkeypatch.chdir(ROOT)
    assert "GENERATED_FROM_SOLUTIONS" in include(base_path, "exercises/heartbeat.py")
    assert "GENERATED_FROM_SOLUTIONS" not in include(["."], "exercises/heartbeat.py")
    # Everything else still resolves from the repository root.
    assert "encode_event" in include(base_path, "my_chat/sse.py")


def test_the_pristine_stubs_are_what_make_exercises_generates():
    import make_exercises

    assert mkdocs_hooks.pristine_stubs() == make_exercises.generated_files(ROOT / "solutions")
