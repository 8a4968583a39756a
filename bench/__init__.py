"""The benchmark behind ``make bench``: my_chat beside a raw-asyncio reference server.

:mod:`bench.run` orchestrates, :mod:`bench.loadgen` holds the streams (in separate
processes), :mod:`bench.reference_server` is the reference. See ``bench/README.md``.
"""
