"""Print the names of the workbook's direct dependencies, one a line, from pyproject.toml.

The weekly drift check upgrades exactly these to their newest releases and runs the tests:

    python tools/direct_dependencies.py | xargs pip install --upgrade
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def direct_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return sorted({re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0] for spec in specs})


if __name__ == "__main__":
    print("\n".join(direct_dependencies()))
