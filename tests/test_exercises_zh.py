"""The learner's tools in Chinese (issue #17): the checker follows ``--lang zh`` or the locale,
and every message, hint and task exists in both languages.

The checker runs as a subprocess, on a toy workbook (tests/test_exercise_tooling.py builds
it) or, for commands that only read, on the real repository.
"""

from __future__ import annotations

import re
import shutil
import string
import tomllib
from pathlib import Path

import pytest

from tests.test_exercise_tooling import build_workbook, load_checker, run

ROOT = Path(__file__).resolve().parents[1]
HINTS = ROOT / "exercises" / "hints"
SECTION_BREAK = re.compile(r"^---[ \t]*$", re.MULTILINE)
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # CJK text or punctuation

ENGLISH = {"LANG": "C.UTF-8"}
CHINESE = {"LANG": "zh_CN.UTF-8"}


def messages(language: str) -> dict[str, str]:
    name = "messages.toml" if language == "en" else f"messages.{language}.toml"
    return tomllib.loads((HINTS / name).read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def sections(path: Path) -> list[str]:
    parts = SECTION_BREAK.split(path.read_text(encoding="utf-8"))
    return [part for part in parts if part.strip()]


def listed_exercises() -> list[str]:
    return load_checker().Workbook(ROOT).order()


def pending() -> set[str]:
    lines = (HINTS / "zh_pending.txt").read_text(encoding="utf-8").splitlines()
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


# the files


def test_messages_have_the_same_keys_and_placeholders_in_both_languages() -> None:
    english, chinese = messages("en"), messages("zh")
    assert sorted(english) == sorted(chinese), (
        f"only in messages.toml: {sorted(set(english) - set(chinese))}; "
        f"only in messages.zh.toml: {sorted(set(chinese) - set(english))}"
    )
    for key, text in english.items():
        assert placeholders(text) == placeholders(chinese[key]), key
        assert CJK.search(chinese[key]), f"messages.zh.toml: {key} is not translated"


def test_english_phase_titles_are_orders_so_their_translation_is_shown() -> None:
    english = messages("en")
    phases = load_checker().Workbook(ROOT).phases()
    for phase in phases:
        assert english.get(f"phase_title_{phase.number}") == phase.title, phase.number


def test_every_exercise_has_chinese_hints_and_task_unless_still_pending() -> None:
    missing, finished_but_pending = [], []
    for name in listed_exercises():
        wanted = [HINTS / f"{name}.zh.md", HINTS / f"{name}.task.zh.md"]
        absent = [path.name for path in wanted if not path.exists()]
        if name in pending():
            if not absent:
                finished_but_pending.append(name)
        elif absent:
            missing.extend(absent)
    assert not missing, f"write these Chinese files in exercises/hints/: {missing}"
    assert not finished_but_pending, (
        f"delete these from exercises/hints/zh_pending.txt, their Chinese is there: "
        f"{finished_but_pending}"
    )
    assert pending() <= set(listed_exercises()), "zh_pending.txt names an unknown exercise"


@pytest.mark.parametrize("name", listed_exercises())
def test_chinese_hints_have_as_many_sections_as_the_english(name: str) -> None:
    chinese = HINTS / f"{name}.zh.md"
    if not chinese.exists():
        assert name in pending(), f"{chinese.name} is missing"
        pytest.skip(f"{name}: Chinese still being written (zh_pending.txt)")
    english = sections(HINTS / f"{name}.md")
    translated = sections(chinese)
    assert len(translated) == len(english), f"{chinese.name}: {len(translated)} sections"
    assert all(CJK.search(section) for section in translated), chinese.name


@pytest.mark.parametrize("name", listed_exercises())
def test_chinese_task_keeps_the_tasks_bullets_and_code(name: str) -> None:
    task = HINTS / f"{name}.task.zh.md"
    if not task.exists():
        assert name in pending(), f"{task.name} is missing"
        pytest.skip(f"{name}: Chinese still being written (zh_pending.txt)")
    english = load_checker().Workbook(ROOT).docstring(name)
    chinese = task.read_text(encoding="utf-8")
    assert CJK.search(chinese.splitlines()[0]), f"{task.name}: its first line is the title"
    bullets = re.compile(r"^\s*- ", re.MULTILINE)
    assert len(bullets.findall(chinese)) == len(bullets.findall(english)), task.name
    # Numbers the tests check (status codes, limits) survive the translation.
    for number in sorted(set(re.findall(r"\*\*(\d{3})\*\*", english))):
        assert number in chinese, f"{task.name} lost the status {number}"


def test_the_chinese_introduction_covers_the_english_commands() -> None:
    intro = SECTION_BREAK.split((HINTS / "README.md").read_text(encoding="utf-8"))[0]
    chinese = (HINTS / "README.zh.md").read_text(encoding="utf-8")
    for command in re.findall(r"make [a-z-]+(?: ARGS=\"[a-z]+ NAME\")?", intro):
        assert command in chinese, command


# the checker, as the learner runs it


ALPHA_HALF_DONE = '''"""Write ``double(x)``, which returns twice its argument.

A second paragraph for the learner.
"""


def double(x: int) -> int:
    return 2 * x


class Box:
    def area(self, side: float) -> float:
        return side
'''


@pytest.fixture
def bilingual(tmp_path: Path) -> Path:
    """The toy workbook, with the real Chinese messages and introduction, a Chinese task
    for alpha, and hints for alpha in English only."""
    root = build_workbook(tmp_path / "repo")
    for name in ("messages.zh.toml", "README.zh.md"):
        shutil.copy(HINTS / name, root / "exercises" / "hints" / name)
    task = "把参数翻倍的 ``double(x)``。\n\n第二段。\n"
    (root / "exercises" / "hints" / "alpha.task.zh.md").write_text(task, encoding="utf-8")
    return root


def checker(root: Path, *args: str, **env: str) -> str:
    finished = run(["-m", "exercises", *args], root, **env)
    assert finished.returncode in (0, 1), finished.stderr
    return finished.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [((), CHINESE), (("--lang", "zh"), ENGLISH), ((), {"LANG": "C", "LC_ALL": "zh_TW.UTF-8"})],
    ids=["LANG=zh_CN.UTF-8", "--lang zh", "LC_ALL=zh_TW"],
)
def test_the_checker_speaks_chinese_under_a_chinese_locale_or_lang_zh(
    bilingual: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    listed = checker(bilingual, "list", *args, **env)
    assert "共五个阶段" in listed  # README.zh.md's introduction
    assert "把参数翻倍的 ``double(x)``。" in listed  # the title from alpha.task.zh.md
    assert "共 2 个练习，已完成 0 个。" in listed
    assert "beta：尚未开始" in checker(bilingual, "check", "beta", *args, **env)
    (bilingual / "exercises" / "alpha.py").write_text(ALPHA_HALF_DONE, encoding="utf-8")
    failing = checker(bilingual, "check", "alpha", *args, **env)
    assert "alpha：2 个测试中通过了 1 个。" in failing
    assert "任务：把参数翻倍的 ``double(x)``。（完整说明：make task NAME=alpha）" in failing
    task = checker(bilingual, "task", "alpha", *args, **env)
    assert "alpha 的任务" in task and "第二段。" in task and "A second paragraph" not in task


def test_the_checker_speaks_english_otherwise(bilingual: Path) -> None:
    for args, env in [
        ((), ENGLISH),
        (("--lang", "en"), CHINESE),
        ((), {"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}),
    ]:
        listed = checker(bilingual, "list", *args, **env)
        assert "Five phases" in listed and "0 of 2 exercises done." in listed, (args, env)
        assert "Write ``double(x)``, which returns twice its argument." in listed
        # The English introduction names 中文 once, for the learner who looks for it.
        progress = listed.split("\n\n  1. ", 1)[1]
        assert not CJK.search(progress), (args, env)
        assert "beta: not started" in checker(bilingual, "check", "beta", *args, **env)
        (bilingual / "exercises" / "alpha.py").write_text(ALPHA_HALF_DONE, encoding="utf-8")
        failing = checker(bilingual, "check", "alpha", *args, **env)
        assert "alpha: 1 of 2 tests pass." in failing
        assert "The task: Write ``double(x)``, which returns twice its argument." in failing
        task = checker(bilingual, "task", "alpha", *args, **env)
        assert "A second paragraph for the learner." in task and not CJK.search(task)


def test_a_missing_translation_falls_back_to_english_with_a_note(bilingual: Path) -> None:
    hint = checker(bilingual, "hint", "alpha", "--lang", "zh")
    assert "（alpha 的提示还没有翻译，下面是英文原文。）" in hint
    assert "Multiply." in hint and "alpha 的提示 1/2：" in hint
    task = checker(bilingual, "task", "beta", "--lang", "zh")
    assert "（beta 的任务说明还没有翻译，下面是英文原文。）" in task
    assert "Greet people, politely and loudly." in task
    assert "not translated" not in checker(bilingual, "hint", "alpha", "--lang", "en")


def test_chinese_hints_come_from_name_zh_md(bilingual: Path) -> None:
    hints = bilingual / "exercises" / "hints"
    (hints / "alpha.zh.md").write_text("乘一下。\n\n---\n\n`return 2 * x`\n", encoding="utf-8")
    first = checker(bilingual, "hint", "alpha", **CHINESE)
    assert "乘一下。" in first and "还没有翻译" not in first
    assert "Multiply." in checker(bilingual, "hint", "alpha", "--all", **ENGLISH)


def test_the_real_checker_shows_the_chinese_task_and_help() -> None:
    """Read-only commands on the real repository: its own Chinese files are used."""
    task = checker(ROOT, "task", "p1_short_poll", **CHINESE)
    expected = (HINTS / "p1_short_poll.task.zh.md").read_text(encoding="utf-8").strip()
    assert expected in task
    assert "阶段 1，第 1 步" in load_checker().Workbook(ROOT, "zh").title("p1_short_poll")
    helped = checker(ROOT, "--help", "--lang", "zh", **ENGLISH)
    assert messages("zh")["help_task"] in helped
    assert messages("en")["help_task"] in checker(ROOT, "--help", **ENGLISH)


def test_the_loop_watch_speaks_the_checkers_language(monkeypatch: pytest.MonkeyPatch) -> None:
    from exercises import _loopwatch

    monkeypatch.setenv("EXERCISES_LANG", "zh")
    assert "事件循环在 x.py:3 被阻塞了 1 秒" in _loopwatch._say(
        "loopwatch_blocked", seconds="1", where="x.py:3"
    )
    monkeypatch.setenv("EXERCISES_LANG", "en")
    assert "the test ran over its time limit of 8 s" == _loopwatch._say(
        "loopwatch_time_limit", seconds="8"
    )


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (None, {"LANG": "zh_CN.UTF-8"}, "zh"),
        (None, {"LC_MESSAGES": "zh_SG", "LANG": "en_US.UTF-8"}, "zh"),
        (None, {"LC_ALL": "en_GB.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        (None, {}, "en"),
        ("zh", {"LANG": "C"}, "zh"),
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
    ],
)
def test_language_choice(option: str | None, environ: dict[str, str], expected: str) -> None:
    assert load_checker().choose_language(option, environ) == expected
