"""A real nginx for tests and notebooks, running the shipped ``deploy/nginx/my_chat.conf``.

Like ``tests/redis_server.py``: free loopback ports, a folder of its own (configuration, pid
file, logs, temporary files), no path that needs root, and stopped by whoever started it.

The shipped file is the part a deployment drops into ``/etc/nginx/conf.d/``. Around it this
module writes the small main configuration Debian's ``/etc/nginx/nginx.conf`` would be (pid
file, error log, workers, temporary folders), and renders the shipped file with exactly these
substitutions, each of which must match the file exactly once:

* ``listen 443 ssl http2;`` and ``listen 80;`` listen on free ports of 127.0.0.1 instead;
* ``/etc/ssl/my_chat/fullchain.pem`` and ``privkey.pem`` are a throwaway self-signed
  certificate and its key;
* ``/var/log/nginx/`` is the test's own folder;
* the upstream's one ``server 127.0.0.1:8080 ...;`` line is repeated once per my_chat
  process, with that process's port;
* and whatever a test varies on purpose (``replace=``), such as a short
  ``proxy_read_timeout`` or buffering turned back on, under the same exactly-once rule.

Everything else, every setting the stream depends on, runs as shipped.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "deploy" / "nginx" / "my_chat.conf"
NGINX = "/usr/sbin/nginx"
UPSTREAM_LINE = "    server 127.0.0.1:8080 max_fails=1 fail_timeout=10s;\n"

MAIN_CONFIG = """\
# Written by tests/nginx_server.py: what Debian's /etc/nginx/nginx.conf does, in one folder.
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
{user}
events {{
    worker_connections 1024;
}}
http {{
    default_type application/octet-stream;
    client_body_temp_path {folder}/temp/body;
    proxy_temp_path {folder}/temp/proxy;
    fastcgi_temp_path {folder}/temp/fastcgi;
    uwsgi_temp_path {folder}/temp/uwsgi;
    scgi_temp_path {folder}/temp/scgi;
    include {folder}/my_chat.conf;
}}
"""


def nginx_path() -> str | None:
    if Path(NGINX).exists():
        return NGINX
    return shutil.which("nginx")


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, named as the config expects."""

    folder: Path

    @property
    def cert(self) -> Path:
        return self.folder / "fullchain.pem"

    @property
    def key(self) -> Path:
        return self.folder / "privkey.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(folder: Path) -> Certificate:
    """A throwaway certificate from the ``openssl`` command, valid for two days."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("openssl is not installed (Debian: apt-get install openssl)")
    folder.mkdir(parents=True, exist_ok=True)
    certificate = Certificate(folder)
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(certificate.key),
            "-out",
            str(certificate.cert),
        ],
        check=True,
        capture_output=True,
    )
    return certificate


def replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    if count != 1:
        raise ValueError(f"{old!r} occurs {count} times in {SHIPPED_CONFIG}, not once")
    return text.replace(old, new)


def render_config(
    *,
    upstream_ports: list[int],
    https_port: int,
    http_port: int,
    certificate: Certificate,
    log_folder: Path,
    replace: dict[str, str] | None = None,
    source: Path = SHIPPED_CONFIG,
) -> str:
    """The shipped file with the substitutions the module docstring lists, and no others."""
    text = source.read_text()
    upstreams = "".join(
        UPSTREAM_LINE.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for port in upstream_ports
    )
    for old, new in {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "/etc/ssl/my_chat/fullchain.pem": str(certificate.cert),
        "/etc/ssl/my_chat/privkey.pem": str(certificate.key),
        "/var/log/nginx/": f"{log_folder}/",
        UPSTREAM_LINE: upstreams,
        **(replace or {}),
    }.items():
        text = replace_once(text, old, new)
    return text


class NginxServer:
    """nginx in a child process, in front of my_chat processes on ``upstream_ports``."""

    def __init__(
        self,
        folder: Path,
        upstream_ports: list[int],
        certificate: Certificate,
        *,
        replace: dict[str, str] | None = None,
    ) -> None:
        executable = nginx_path()
        if executable is None:
            raise RuntimeError(
                "nginx is not installed: the nginx tests need a real one "
                "(Debian/Ubuntu: apt-get install nginx)"
            )
        self.executable = executable
        self.folder = folder
        self.upstream_ports = list(upstream_ports)
        self.certificate = certificate
        self.replace = dict(replace or {})
        self.https_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def write_config(self) -> Path:
        (self.folder / "temp").mkdir(parents=True, exist_ok=True)
        (self.folder / "my_chat.conf").write_text(
            render_config(
                upstream_ports=self.upstream_ports,
                https_port=self.https_port,
                http_port=self.http_port,
                certificate=self.certificate,
                log_folder=self.folder,
                replace=self.replace,
            )
        )
        user = ""
        if os.geteuid() == 0:
            # nginx started by root runs its workers as `nobody`, who cannot enter a test's
            # private temporary folder; run them as the user who started the test instead.
            user = (
                f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
            )
        main = self.folder / "nginx.conf"
        main.write_text(MAIN_CONFIG.format(folder=self.folder, user=user))
        return main

    def start(self, timeout: float = 10.0) -> NginxServer:
        main = self.write_config()
        # -e: the error log from the first moment, before the configuration is read.
        self.process = subprocess.Popen(
            [
                self.executable,
                "-p",
                f"{self.folder}/",
                "-c",
                str(main),
                "-e",
                str(self.folder / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.error_log()}")
            if self._accepts(self.https_port) and self._accepts(self.http_port):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {timeout} s:\n{self.error_log()}")

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.folder / "my_chat.access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: nginx's fast shutdown, which does not wait for open streams to end."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
