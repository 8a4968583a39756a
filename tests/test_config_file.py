"""``python -m my_chat --config FILE``: TOML settings, their precedence, and plain refusals."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from my_chat import sse_pb2, sse_pb2_grpc
from my_chat.__main__ import parse_args
from my_chat.config import Settings
from my_chat.config_file import env_name
from tests.conftest import SERVICE_KEY
from tests.ports import free_port
from tests.redis_server import RedisServer, redis_server_path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "my_chat.example.toml"


def run_my_chat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("MY_CHAT_")}
    return subprocess.run(
        [sys.executable, "-m", "my_chat", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **(env or {})},
        cwd=ROOT,
    )


def test_the_example_file_is_in_step_with_settings():
    result = subprocess.run(
        [sys.executable, "tools/make_config_example.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_example_file_names_every_setting_and_loads_as_the_defaults():
    text = EXAMPLE.read_text()
    for field in dataclasses.fields(Settings):
        assert re.search(rf"^(# )?{field.name} = ", text, re.MULTILINE), field.name
    assert parse_args(["--config", str(EXAMPLE)], environ={}) == Settings()


def test_command_line_over_environment_over_file_over_defaults(tmp_path: Path):
    config = tmp_path / "my_chat.toml"
    config.write_text(
        'port = 1111\nperiodic_interval = 5\nexercises = true\nhost = "0.0.0.0"\n'
        'data_dir = "/srv/chat"\nlog_level = "debug"\n'
    )
    env = {"MY_CHAT_PORT": "2222", "MY_CHAT_HOST": "::1"}

    both = parse_args(["--config", str(config), "--port", "3333"], environ=env)
    assert both.port == 3333  # command line
    assert both.host == "::1"  # environment over file
    assert both.periodic_interval == 5.0  # file over default
    assert both.exercises is True  # an option not given does not undo the file
    assert both.data_dir == Path("/srv/chat")
    assert both.log_level == "debug"
    assert both.retry_ms == Settings().retry_ms  # default

    assert parse_args(["--config", str(config)], environ=env).port == 2222
    assert parse_args(["--config", str(config)], environ={}).port == 1111
    assert parse_args([], environ={}).port == Settings().port
    assert parse_args([], environ={"MY_CHAT_REDIS_URL": ""}).redis_url is None


BAD_FILES = [
    ("prot = 9000\n", "unknown setting 'prot' (did you mean 'port'?)"),
    ("[server]\nport = 9000\n", "unknown setting 'server'"),
    ('port = "9000"\n', "'port' must be a whole number, not '9000'"),
    ("port = 70000\n", "'port' must be a port from 0 to 65535, not 70000"),
    ("grpc_port = -1\n", "'grpc_port' must be a port from 0 to 65535"),
    ("periodic_interval = -1.5\n", "'periodic_interval' must be above 0, not -1.5"),
    ("retention_days = -1\n", "'retention_days' must be 0 or more, not -1.0"),
    ("healthcheck_interval = nan\n", "'healthcheck_interval' must be a finite number"),
    ("exercises = 1\n", "'exercises' must be true or false, not 1"),
    ('log_level = "loud"\n', "'log_level' must be one of debug, info, warning, error"),
    ("port = 8080\nport = 8081\n", "not valid TOML"),
]


@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_a_bad_file_is_refused_in_process_with_a_message_naming_the_key(
    tmp_path: Path, content: str, message: str
):
    from my_chat.config_file import SettingsError

    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(SettingsError) as caught:
        parse_args(["--config", str(config)], environ={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--config", "{bad}"), {}, "{bad}: 'periodic_interval' must be above 0, not -1.0"),
        (("--config", "{missing}"), {}, "--config {missing}: no such file"),
        ((), {"MY_CHAT_PORT": "eighty"}, "MY_CHAT_PORT: 'port' must be a whole number"),
        (("--retention-days", "-3"), {}, "--retention-days: 'retention_days' must be 0 or more"),
    ],
)
def test_the_process_stops_with_one_plain_line_and_exit_code_2(tmp_path: Path, args, env, expected):
    bad = tmp_path / "bad.toml"
    bad.write_text("periodic_interval = -1\n")
    paths = {"bad": str(bad), "missing": str(tmp_path / "missing.toml")}
    result = run_my_chat(*(arg.format(**paths) for arg in args), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"python -m my_chat: {expected.format(**paths)}"), lines[0]
    assert "Traceback" not in result.stderr


def test_every_setting_has_an_environment_variable():
    names = {env_name(field.name) for field in dataclasses.fields(Settings)}
    assert {"MY_CHAT_DATA_DIR", "MY_CHAT_REDIS_URL", "MY_CHAT_SERVICE_KEY"} <= names
    settings = parse_args([], environ={"MY_CHAT_UVLOOP": "yes", "MY_CHAT_MESSAGE_RATE": "0.5"})
    assert settings.uvloop is True
    assert settings.message_rate == 0.5


def test_the_presence_ttl_comes_from_the_environment_or_the_command_line():
    """Once read only from MY_CHAT_PRESENCE_TTL; now a setting like the others, still above 0."""
    from my_chat.config_file import SettingsError

    assert parse_args([], environ={}).presence_ttl == 15.0
    assert parse_args([], environ={"MY_CHAT_PRESENCE_TTL": "1.5"}).presence_ttl == 1.5
    flag = parse_args(["--presence-ttl", "4"], environ={"MY_CHAT_PRESENCE_TTL": "1.5"})
    assert flag.presence_ttl == 4.0
    with pytest.raises(SettingsError) as caught:
        parse_args([], environ={"MY_CHAT_PRESENCE_TTL": "0"})
    assert "'presence_ttl' must be above 0" in str(caught.value)


@pytest.mark.slow
@pytest.mark.redis
async def test_a_server_runs_on_a_config_file_in_redis_mode(server_process, tmp_path: Path):
    """The file turns on Redis and gRPC; the command line still picks the HTTP port."""
    if redis_server_path() is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    with RedisServer(tmp_path / "redis") as redis:
        grpc_port = free_port()
        config = tmp_path / "my_chat.toml"
        config.write_text(f'redis_url = "{redis.url}"\ngrpc_port = {grpc_port}\nport = 1\n')
        process = await asyncio.to_thread(server_process, "--config", str(config))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            online = await sse_pb2_grpc.SSEServiceStub(channel).OnlineUsers(
                sse_pb2.OnlineUsersRequest(), metadata=(("x-service-key", SERVICE_KEY),)
            )
        assert list(online.user_ids) == []
        assert "sharing the chat through Redis" in process.log()
        assert await asyncio.to_thread(process.terminate) == 0
