"""The benchmark behind ``make bench``: my_chat beside a raw-asyncio reference server.

:mod:`bench.run` is the command line: it runs the phases (:mod:`bench.phases`) against each
server (:mod:`bench.targets`) with the processes of :mod:`bench.processes`, and writes the
report (:mod:`bench.report`, :mod:`bench.stats`). :mod:`bench.loadgen` holds the streams (in
separate processes), :mod:`bench.reference_server` is the reference. See ``bench/README.md``.
"""
