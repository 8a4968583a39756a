"""The benchmark's quick run (N = 200): every frame reaches every stream, and the JSON is whole.

Nothing here is about speed; the benchmark reports speed, tests do not judge it. The quick run
starts my_chat and the reference server as real subprocesses and holds real sockets from the
load-generator processes, exactly as ``make bench`` does, only smaller.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

TOP_LEVEL_KEYS = {
    "schema",
    "created",
    "machine",
    "settings",
    "chat",
    "sizes",
    "storm",
    "throughput",
    "redis",
    "targets",
    "targets_n",
    "duration_s",
}
MACHINE_KEYS = {"cpu_count", "cpu_model", "python", "aiohttp", "uvloop_servers", "uvloop_loadgen"}
SIDE_KEYS = {"connect", "memory", "push", "ramp", "sign_in_s", "server_stats"}
LATENCY_KEYS = {"p50_ms", "p99_ms", "max_ms", "quantiles_ms"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    output = tmp_path_factory.mktemp("bench") / "quick.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(output.read_text()), finished.stdout


@pytest.mark.timeout(300)
def test_every_stream_gets_every_broadcast_from_both_servers(quick_report) -> None:
    report, _ = quick_report
    (size,) = report["sizes"]
    assert size["n"] == 200
    for side, phases in (("my_chat", ("push", "chat")), ("reference", ("push",))):
        assert size[side]["connect"]["live"] == 200, size[side]["connect"]
        for phase in phases:
            result = size[side][phase]
            assert result["all_delivered"], (side, phase, result)
            assert result["streams_with_all"] == 200
            assert result["delivered"] == result["expected"] == 200 * result["broadcasts"]
            assert result["streams_with_extra"] == 0


@pytest.mark.timeout(300)
def test_every_chat_message_reaches_all_hundred_clients(quick_report) -> None:
    report, _ = quick_report
    for side in ("my_chat", "reference"):
        result = report["chat"][side]
        assert result["streams"] == 100
        assert result["all_delivered"], (side, result)
        assert result["delivered"] == 100 * report["settings"]["chat_messages"]


@pytest.mark.timeout(300)
def test_the_restart_storm_loses_duplicates_and_reorders_nothing(quick_report) -> None:
    """kill -9 mid-chat, a restart, every stream back with Last-Event-ID: every message the
    server acknowledged reaches every stream exactly once, in order."""
    report, _ = quick_report
    (storm,) = report["storm"]
    assert storm["streams"] == 200 and storm["live_after"] == 200, storm
    assert storm["resume_s"] is not None, storm
    assert storm["messages_acked"] > 0, storm
    assert (storm["lost"], storm["duplicated"], storm["out_of_order"]) == (0, 0, 0), storm


@pytest.mark.timeout(300)
def test_every_acknowledged_chat_message_reaches_every_listener_under_load(quick_report) -> None:
    report, _ = quick_report
    results = [report["throughput"]["my_chat"]] + [r["throughput"] for r in report["redis"]]
    assert len(results) == 2  # one process, then two behind Redis
    for result in results:
        assert result["accepted"] > 0 and result["refused"] == {}, result
        assert (result["lost"], result["duplicated"]) == (0, 0), result


@pytest.mark.timeout(300)
def test_two_processes_behind_redis_deliver_every_frame_to_both_halves(quick_report) -> None:
    report, _ = quick_report
    (redis,) = report["redis"]
    assert redis["connect"]["live"] == 200
    for phase in ("push", "chat"):
        assert redis[phase]["all_delivered"], redis[phase]
        assert redis[phase]["streams_with_extra"] == 0


@pytest.mark.timeout(300)
def test_report_has_the_expected_shape(quick_report) -> None:
    report, printed = quick_report
    assert report.keys() >= TOP_LEVEL_KEYS
    assert report["machine"].keys() >= MACHINE_KEYS
    assert report["settings"]["sizes"] == [200]
    (size,) = report["sizes"]
    for side in ("my_chat", "reference"):
        assert size[side].keys() >= SIDE_KEYS
        assert size[side]["push"]["latency"].keys() >= LATENCY_KEYS
        assert len(size[side]["push"]["latency"]["quantiles_ms"]) == 101
        assert size[side]["memory"]["rss_after"] > 0
        assert size[side]["ramp"]["steps"], "the ramp ran at least one step"
    assert "chat" in size["my_chat"]
    assert "push p99 (ms)" in size["ratio"]
    names = " | ".join(target["name"] for target in report["targets"])
    for checked in ("connected in", "memory", "broadcast p99", "sustained rate", "chat POST"):
        assert checked in names
    for checked in ("accepted/s", "restart storm", "Redis, 2 processes"):
        assert checked in names
    assert all(target["passed"] in (True, False, None) for target in report["targets"])
    assert "Targets" in printed and "my_chat" in printed and "reference" in printed


@pytest.mark.parametrize(
    "argv",
    [
        [
            "bench.stream_memory",
            "--streams",
            "40",
            "--accounts",
            "10",
            "--history",
            "5",
            "--top",
            "3",
        ],
        ["bench.chat_cpu", "--senders", "2", "--seconds", "0.5", "--rounds", "1"],
    ],
    ids=["stream_memory", "chat_cpu"],
)
def test_the_measuring_scripts_run_to_the_end(argv, tmp_path):
    """``make bench-memory`` and ``bench/chat_cpu.py`` are measured by hand, not in CI: this
    keeps them runnable (a renamed import broke both once without any test noticing)."""
    done = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip(), "the script printed no figures"
