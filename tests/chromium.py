"""Debian's Chromium, as every browser test here launches it.

The flags keep it off the network (this machine has none beyond loopback) and out of the
sandbox, which needs privileges a CI container does not give.
"""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
