"""Settings from a TOML file, the environment and the command line: the guide's ``conf.MustLoad``.

The guide's gateway reads ``etc/*.yaml`` into a config struct and refuses to start on a bad
file. ``python -m my_chat --config my_chat.toml`` does the same with the standard library's
``tomllib``. Every field of :class:`~my_chat.config.Settings` can come from four places; the
first that has it wins:

1. the command line (``--port 9000``);
2. the environment, ``MY_CHAT_`` and the field's name in capitals (``MY_CHAT_PORT=9000``);
3. the file, the field's name as the key (``port = 9000``);
4. the default in ``Settings``.

Nothing is guessed. An unknown key, a value of the wrong type or an impossible value (a
negative interval, a port out of range) stops start-up with one line that names the key and
where it came from. ``my_chat.example.toml`` lists every setting with its default; it is
generated from ``Settings`` by ``tools/make_config_example.py``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from my_chat.config import Settings

ENV_PREFIX = "MY_CHAT_"
LOG_LEVELS = ("debug", "info", "warning", "error")
# Settings for which 0 makes no sense; every other number only has to be 0 or more.
ABOVE_ZERO = frozenset(
    {
        "periodic_interval",
        "healthcheck_interval",
        "token_ttl",
        "buffer_limit",
        "history_page_max",
        "max_text",
        "max_body",
        "message_burst",
        "message_rate",
        "loop_lag_interval",
        "presence_ttl",
    }
)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class SettingsError(Exception):
    """A setting that cannot be used; the message is one line naming it and its source."""


def field_types() -> dict[str, Any]:
    """Each field of ``Settings`` and its type, in the order they are declared."""
    hints = typing.get_type_hints(Settings)
    return {field.name: hints[field.name] for field in dataclasses.fields(Settings)}


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _base_type(hint: Any) -> tuple[Any, bool]:
    """``(type, may be None)`` for a hint such as ``str | None``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), True
    return hint, False


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        item = typing.get_args(kind)[0]
        return f"a list of {_describe(item)}s"
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        Path: "a path (a string)",
    }.get(kind, getattr(kind, "__name__", str(kind)))


def _from_toml(kind: Any, value: object) -> object:
    """``value`` as read from TOML, checked against ``kind``; ValueError if it does not fit."""
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ValueError
        items = [_from_toml(typing.get_args(kind)[0], item) for item in value]
        return tuple(items) if origin is tuple else items
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind in (str, Path):
        if isinstance(value, str):
            return kind(value)
    else:
        try:
            if isinstance(value, kind):
                return value
        except TypeError:  # a type isinstance cannot check: say so, rather than guess
            pass
    raise ValueError


def _from_text(kind: Any, text: str) -> object:
    """``text`` (from the environment) as ``kind``; ValueError if it is not one."""
    origin = typing.get_origin(kind)
    if origin in (list, tuple):
        items = [_from_text(typing.get_args(kind)[0], t.strip()) for t in text.split(",") if t]
        return tuple(items) if origin is tuple else items
    if kind is bool:
        word = text.strip().lower()
        if word in TRUE_WORDS + FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError
    if kind in (int, float, str, Path):
        return kind(text.strip() if kind in (int, float) else text)
    raise ValueError


def _shown(value: object) -> str:
    return repr(str(value)) if isinstance(value, Path) else repr(value)


def check_value(name: str, value: object, source: str) -> None:
    """Refuse values no setting can have: negative or non-finite numbers, bad ports, levels."""
    where = f"{source}: '{name}'"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{where} must be a finite number, not {value}")
        if name == "port" or name.endswith("_port"):
            if not 0 <= value <= 65535:
                raise SettingsError(f"{where} must be a port from 0 to 65535, not {value}")
        elif name in ABOVE_ZERO and value <= 0:
            raise SettingsError(f"{where} must be above 0, not {value}")
        elif value < 0:
            raise SettingsError(f"{where} must be 0 or more, not {value}")
    if name == "log_level" and value not in LOG_LEVELS:
        raise SettingsError(f"{where} must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    if name == "host" and not value:
        raise SettingsError(f"{where} must not be empty")


def read_file(path: Path) -> dict[str, object]:
    """The settings in a TOML file, typed and checked; ``SettingsError`` names the bad key."""
    try:
        with path.open("rb") as file:
            table = tomllib.load(file)
    except FileNotFoundError:
        raise SettingsError(f"--config {path}: no such file") from None
    except OSError as error:
        raise SettingsError(f"--config {path}: cannot read it ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    types_ = field_types()
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in types_:
            close = difflib.get_close_matches(key, types_, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SettingsError(f"{path}: unknown setting '{key}'{hint}")
        kind, _ = _base_type(types_[key])
        try:
            values[key] = _from_toml(kind, value)
        except ValueError:
            raise SettingsError(
                f"{path}: '{key}' must be {_describe(kind)}, not {_shown(value)}"
            ) from None
        check_value(key, values[key], str(path))
    return values


def read_environment(environ: Mapping[str, str]) -> dict[str, object]:
    """The settings set as ``MY_CHAT_<NAME>``; an empty variable counts as not set."""
    values: dict[str, object] = {}
    for name, hint in field_types().items():
        text = environ.get(env_name(name), "")
        if not text:
            continue
        kind, _ = _base_type(hint)
        try:
            values[name] = _from_text(kind, text)
        except ValueError:
            raise SettingsError(
                f"{env_name(name)}: '{name}' must be {_describe(kind)}, not {text!r}"
            ) from None
        check_value(name, values[name], env_name(name))
    return values


def load_settings(
    config: Path | None,
    environ: Mapping[str, str],
    command_line: Mapping[str, object],
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults, overridden by the file, then the environment, then the command line.

    ``command_line`` holds only the options that were given; ``flags`` names the option of
    each setting (``history_on_connect`` is ``--history``), for the error messages.
    """
    values: dict[str, object] = {}
    if config is not None:
        values.update(read_file(config))
    values.update(read_environment(environ))
    for name, value in command_line.items():
        if isinstance(value, list):  # a repeated flag (action="append"): settings keep tuples
            value = tuple(value)
        check_value(name, value, (flags or {}).get(name, "--" + name.replace("_", "-")))
        values[name] = value
    return Settings(**values)
