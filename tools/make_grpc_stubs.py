"""Generate the gRPC stubs from ``my_chat/sse.proto``, or check that they match it.

    python tools/make_grpc_stubs.py           # write my_chat/sse_pb2.py, .pyi, sse_pb2_grpc.py
    python tools/make_grpc_stubs.py --check   # exit 1 if the committed ones differ

Why committed, not generated at install: learners, the notebooks and CI then need no code
generation step (and no grpcio-tools, which is a development dependency only), and a reader
can open the generated code next to the chapter. The price is that the stubs can drift from
the ``.proto``; ``--check`` (run by ``tests/test_grpc.py``) catches that.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = "my_chat/sse.proto"
STUBS = ("my_chat/sse_pb2.py", "my_chat/sse_pb2.pyi", "my_chat/sse_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    """Run protoc (from grpcio-tools) on the proto, writing the stubs under ``out_dir``."""
    from grpc_tools import protoc

    # Run from the repository root with the path my_chat/sse.proto, so the generated
    # sse_pb2_grpc.py imports ``from my_chat import sse_pb2``, a package import that works.
    args = [
        "grpc_tools.protoc",
        f"--proto_path={ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")


def differences() -> list[str]:
    """The stubs whose committed text differs from freshly generated ones."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        return [
            name
            for name in STUBS
            if not (ROOT / name).exists()
            or (Path(tmp) / name).read_text() != (ROOT / name).read_text()
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = differences()
        if stale:
            print(
                f"out of date with {PROTO}: {', '.join(stale)}; "
                "run python tools/make_grpc_stubs.py",
                file=sys.stderr,
            )
            return 1
        print(f"the gRPC stubs match {PROTO}")
        return 0
    generate(ROOT)
    print(f"wrote {', '.join(STUBS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
