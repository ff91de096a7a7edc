"""Benchmarks of tractor's runtime against each transport's raw floor.

    python -m benchmarks                      # everything, 3 repeats
    python -m benchmarks --quick              # smoke run (CI), a few minutes
    python -m benchmarks --transports tcp nng --codecs msgpack \\
        --workloads rpc stream_small floor --repeat 5
    python -m benchmarks --list               # show the planned runs

Every measurement runs in a fresh process (``python -m benchmarks._run
<workload> <variant> <codec> ...``, which prints one JSON line), for every
installed transport in each of its address variants (tcp, uds, nng+tcp,
nng+ipc, zmq+tcp, zmq+ipc) and every codec, against two floors where the
library allows it: the library used naively (one message per call) and
used well (a burst per call). The markdown table goes to stdout, progress
to stderr, every raw sample to ``benchmarks/results/<timestamp>.json``
(``--json``), and a PNG chart of the ratios to the floors beside it when
matplotlib is installed (``--chart``). The exit status is 1
if any measurement failed, 0 otherwise.

Modules: :mod:`benchmarks._cli` (planning, running, exit status),
:mod:`benchmarks._run` (the per-process driver and the runtime
workloads), :mod:`benchmarks._floor` (the raw floors),
:mod:`benchmarks._workloads` (what the child actors run),
:mod:`benchmarks._report` (table, targets, machine, chart),
:mod:`benchmarks._profile` (cProfile of parent and child hot paths).
"""
