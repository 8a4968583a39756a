"""The guide's own phase-5 chat room in Go: extracted as printed, built, and run.

The guide prints ``client.go``, ``handler.go``, ``main.go`` and ``index.html`` for its chat
room. ``printed/`` holds them exactly as printed (a test compares them with the guide);
``fixes.toml`` and ``missing.go`` are the smallest changes that make them build. Building
needs no network: Debian's ``golang-go`` and the ``-dev`` packages of the two libraries the
chat room imports put their sources under ``/usr/share/gocode/src``, which become the
module's ``vendor/`` folder.

Notebook 5 builds both versions and measures, on the real binary, the flaws the chapters
describe.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRINTED = HERE / "printed"
GOCODE = Path("/usr/share/gocode/src")
# The guide's `go get` lines, as Debian packages them (the versions are Debian's).
LIBRARIES = {
    "github.com/google/uuid": "golang-github-google-uuid-dev",
    "github.com/gorilla/mux": "golang-github-gorilla-mux-dev",
}
# Where each file is printed in the guide: the heading above its code block.
GUIDE_FILES = {
    "client.go": "### 步骤2",
    "handler.go": "### 步骤3",
    "main.go": "### 步骤4",
    "index.html": "### 步骤5",
}
COMPILE_ERROR = re.compile(r"^\./(?P<file>[\w.]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$")


def missing_tools() -> list[str]:
    """The Debian packages still needed to build the chat room (empty when all are there)."""
    missing = [] if shutil.which("go") else ["golang-go"]
    missing += [pkg for lib, pkg in LIBRARIES.items() if not (GOCODE / lib).is_dir()]
    return missing


def extract_from_guide(guide: Path) -> dict[str, str]:
    """The chat room's files, cut out of the guide's markdown: the first code block after
    each file's heading."""
    text = guide.read_text(encoding="utf-8")
    block = re.compile(r"```\w*\n(.*?)```", re.S)
    return {
        name: block.search(text, text.index(heading)).group(1)
        for name, heading in GUIDE_FILES.items()
    }


def printed_sources() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(PRINTED.iterdir())}


@dataclass(frozen=True)
class Fix:
    file: str
    why: str
    error: str = ""
    old: str | None = None  # None: the whole file is added
    new: str = ""


def fixes() -> list[Fix]:
    table = tomllib.loads((HERE / "fixes.toml").read_text(encoding="utf-8"))
    return [Fix(**entry) for entry in table["fix"]] + [Fix(**entry) for entry in table["add"]]


def fixed_sources() -> dict[str, str]:
    """The printed files with every fix applied, each exactly once, plus the added files."""
    sources = printed_sources()
    for fix in fixes():
        if fix.old is None:
            sources[fix.file] = (HERE / fix.file).read_text(encoding="utf-8")
            continue
        count = sources[fix.file].count(fix.old)
        if count != 1:
            raise ValueError(f"{fix.file}: the text to replace occurs {count} times, not once")
        sources[fix.file] = sources[fix.file].replace(fix.old, fix.new)
    return sources


@dataclass
class Build:
    folder: Path
    ok: bool
    output: str

    @property
    def binary(self) -> Path:
        return self.folder / "chat"

    def errors(self) -> list[tuple[str, int, str]]:
        """The compiler's complaints as (file, line, message)."""
        found = (COMPILE_ERROR.match(line) for line in self.output.splitlines())
        return [(m["file"], int(m["line"]), m["message"]) for m in found if m]


def build(sources: dict[str, str], folder: Path) -> Build:
    """Write ``sources`` as module ``my-chat`` into ``folder``, vendor the two libraries from
    Debian's sources, and run ``go build`` with the network off."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    requires = "\n".join(f"\t{lib} v0.0.0-debian" for lib in LIBRARIES)
    (folder / "go.mod").write_text(f"module my-chat\n\ngo 1.19\n\nrequire (\n{requires}\n)\n")
    modules = []
    for lib in LIBRARIES:
        target = folder / "vendor" / lib
        if not target.exists():
            shutil.copytree(GOCODE / lib, target, ignore=shutil.ignore_patterns("*_test.go"))
        modules.append(f"# {lib} v0.0.0-debian\n## explicit\n{lib}\n")
    (folder / "vendor" / "modules.txt").write_text("".join(modules))
    env = {**os.environ, "GOFLAGS": "-mod=vendor", "GOPROXY": "off", "GO111MODULE": "on"}
    env.setdefault("GOCACHE", str(Path.home() / ".cache" / "go-build"))
    done = subprocess.run(
        ["go", "build", "-o", "chat", "."],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Build(folder, done.returncode == 0, done.stdout + done.stderr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Running:
    """The built chat room running as a process on a loopback port."""

    def __init__(self, built: Build) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(built.binary)],
            cwd=built.folder,  # it serves index.html from its working directory
            env={**os.environ, "ADDR": f"127.0.0.1:{self.port}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Go chat room did not start: {self.process.stderr.read()}")
            time.sleep(0.02)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def goroutine_dump(self) -> str:
        """Stop the process with SIGQUIT: Go's runtime prints every goroutine's stack."""
        self.process.send_signal(signal.SIGQUIT)
        _, stderr = self.process.communicate(timeout=10)
        return stderr

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


@contextlib.contextmanager
def running(built: Build) -> Iterator[Running]:
    server = Running(built)
    try:
        yield server
    finally:
        server.stop()
