"""``python -m benchmarks``: plan the measurements, run each one in a fresh
process, and report.

Every measurement is ``python -m benchmarks._run <workload> <variant>
<codec> ...`` in its own process group (so nothing it starts can outlive
it); its result is the JSON line it prints. A failing measurement becomes
an error row and the run goes on; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime

from . import _report
from ._run import MARK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results')

WORKLOADS = ['spawn', 'spawn_many', 'memory', 'rpc', 'rpc_inflight',
             'bidir', 'stream_small', 'stream_large', 'fanin', 'pipeline',
             'floor']
DATA_WORKLOADS = ['rpc', 'rpc_inflight', 'bidir', 'stream_small',
                  'stream_large', 'fanin', 'pipeline']
#: many actors at once: under the first codec and the default start method
#: only (--quick: on the first transport variant only), no floor
SCALE_WORKLOADS = ['spawn_many', 'memory']
START_METHODS = ['forkserver', 'spawn', 'trio']

#: the transport floor a workload is compared with, where it is not its
#: own: a round trip over a two-way stream against rpc's request/reply
#: (the pipeline's are not a transport's: see _floor.PIPELINE_FLOORS)
TRANSPORT_FLOOR_OF = {'bidir': 'rpc', 'pipeline': None}
#: workloads measured right after another one's rows of the same variant
#: (when both are asked for), because they are compared with it: bidir's
#: round trip is compared with rpc's
RUNS_WITH = {'rpc': ('bidir',)}

#: workload -> (messages, warm-up), full and --quick (about 10-20x less);
#: rpc_inflight's count is its calls at each level of calls in flight,
#: spawn_many's and memory's their actors (spawn_many's warm-up: cycles of
#: one actor before, so the forkserver is up)
COUNTS = {
    'spawn_many': (500, 1),
    'memory': (100, 0),
    'rpc': (2000, 200),
    'rpc_inflight': (10_000, 200),
    'bidir': (2000, 200),
    'stream_small': (100_000, 0),
    'stream_large': (200, 0),
    'fanin': (100_000, 0),  # 2 children x 50,000
    'pipeline': (200_000, 0),
}
QUICK_COUNTS = {
    'spawn_many': (50, 1),
    'memory': (20, 0),
    'rpc': (200, 20),
    'rpc_inflight': (1000, 20),
    'bidir': (200, 20),
    'stream_small': (10_000, 0),
    'stream_large': (20, 0),
    'fanin': (10_000, 0),  # 2 children x 5,000
    'pipeline': (20_000, 0),
}


def _csv(values) -> list:
    out = []
    for v in values or ():
        out += [x.strip() for x in v.split(',') if x.strip()]
    return out


#: the secured variant of a transport that speaks TLS: the same transport
#: with ``tls=True`` (see tractor._tls), measured beside its plaintext self
SECURED = {'tcp': 'tcp+tls', 'nng': 'nng+tls', 'zmq': 'zmq+curve'}


def variants_of(name: str, transports) -> list:
    """The address variants of one registered transport: its name alone
    when it has one scheme (tcp, uds), ``name+scheme`` for each otherwise
    (nng+tcp, nng+ipc); then its secured variant (tcp+tls, nng+tls,
    zmq+curve) if it has one."""
    tr = transports.get_transport(name)
    schemes = tuple(tr.schemes)
    out = [name] if len(schemes) == 1 else [f'{name}+{s}' for s in schemes]
    if name in SECURED and hasattr(tr, 'tls'):
        out.append(SECURED[name])
    return out


def select_variants(wanted: list, out=sys.stderr) -> list:
    """Expand ``--transports`` into variants, skipping uninstalled ones."""
    from tractor import transports
    available = transports.available_transports()
    all_variants = []
    for name in available:
        all_variants += variants_of(name, transports)
    if not wanted:
        return all_variants
    chosen = []
    for w in wanted:
        base = w.partition('+')[0]
        if base not in available:
            try:
                transports.get_transport(base)
            except transports.UnknownTransport as err:
                if 'not installed' in str(err):
                    print(f'skipping transport {w!r}: its backend is not '
                          f'installed', file=out)
                    continue
                raise SystemExit(f'unknown transport {w!r}; available: '
                                 f'{", ".join(all_variants)}')
        vs = variants_of(base, transports)
        if '+' in w:
            if w not in vs:
                raise SystemExit(f'unknown transport variant {w!r}; '
                                 f'{base} has: {", ".join(vs)}')
            vs = [w]
        chosen += [v for v in vs if v not in chosen]
    return chosen


def _spawn_methods(args, variants, variant, codec_index) -> list:
    """Start methods to measure spawn with for one variant and codec.

    Full runs: all of them, everywhere. ``--quick`` keeps it short
    by measuring spawn under the first codec only (the codec is only the
    handshake's business there), with every start method on the first
    transport variant and only the default method on the others (the
    start method is about making a process, the transport about its
    connecting back)."""
    if not args.quick:
        return list(args.start_methods)
    if codec_index:
        return []
    if variant == variants[0]:
        return list(args.start_methods)
    return [_default_method(args)]


def _default_method(args) -> str:
    """The platform's default start method, if asked for, else the first
    one asked for."""
    from tractor._spawn import default_start_method
    dflt = default_start_method()
    return dflt if dflt in args.start_methods else args.start_methods[0]


def plan(args, variants: list, codecs: list) -> list:
    """The measurements of one repeat, in the order they run.

    Spawn and the scale workloads first, variant by variant. Then the data
    workloads *workload by workload*: each variant's floor right before
    the variant itself, and the variants of a workload one after the other
    (a secured variant right after its plaintext self). A ratio thus
    divides two measurements taken seconds apart, not minutes: on a
    shared machine whose load drifts, that is most of what makes a ratio
    worth reading."""
    from ._floor import BATCHED, PIPELINE_FLOORS, floor_library
    counts = QUICK_COUNTS if args.quick else COUNTS
    data = [w for w in DATA_WORKLOADS if w in args.workloads]
    with_floors = 'floor' in args.workloads
    scale = [w for w in SCALE_WORKLOADS if w in args.workloads]
    jobs = []

    def add(workload, variant, codec, floor=False, start_method=None,
            **extra):
        n, warm = counts.get(workload, (0, 0))
        jobs.append(dict(workload=workload, variant=variant, codec=codec,
                         floor=floor, start_method=start_method, n=n,
                         warmup=warm, **extra))

    for v in variants:
        for ci, c in enumerate(codecs):
            if 'spawn' in args.workloads:
                for m in _spawn_methods(args, variants, v, ci):
                    add('spawn', v, c, start_method=m)
            if ci == 0 and (v == variants[0] or not args.quick):
                for w in scale:
                    add(w, v, c, start_method=_default_method(args))
    measured = set()  # (variant, floor workload) already planned

    def floors_of(w, v):
        f = TRANSPORT_FLOOR_OF.get(w, w)
        if (not with_floors or f is None or floor_library(v) is None
                or (v, f) in measured):
            return
        measured.add((v, f))
        add(f, v, 'msgpack', floor=True)
        if f in BATCHED:
            add(f, v, 'msgpack', floor=True, batched=True)

    # a workload compared with another of the same variant runs in that
    # one's block, right after it
    along = {w: [x for x in RUNS_WITH.get(w, ()) if x in data]
             for w in data}
    riders = {x for xs in along.values() for x in xs}
    for w in data or (DATA_WORKLOADS if with_floors else []):
        if w in riders:
            continue
        if w == 'pipeline' and with_floors:
            # multiprocessing.Queue chains, transport-independent: the
            # floors of every variant's pipeline, measured once
            for pv in PIPELINE_FLOORS:
                add('pipeline', pv, 'msgpack', floor=True)
        for v in variants:
            floors_of(w, v)
            if w in data:
                for c in codecs:
                    for x in [w] + along[w]:
                        add(x, v, c)
    return jobs


def job_argv(job: dict) -> list:
    argv = [sys.executable, '-m', 'benchmarks._run', job['workload'],
            job['variant'], job['codec'], '--n', str(job['n']),
            '--warmup', str(job['warmup'])]
    if job['start_method']:
        argv += ['--start-method', job['start_method']]
    if job['floor']:
        argv.append('--floor')
    if job.get('batched'):
        argv.append('--batched')
    return argv


def _group_alive(pgid: int) -> bool:
    """Does any process of group ``pgid`` still run (zombies, which only
    wait for their new parent to reap them, do not count)?"""
    if os.path.isdir('/proc'):
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open(f'/proc/{entry}/stat') as f:
                    stat = f.read()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...; comm may hold spaces
            fields = stat[stat.rfind(')') + 2:].split()
            if len(fields) > 2 and int(fields[2]) == pgid \
                    and fields[0] != 'Z':
                return True
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _reap_group(pgid: int, grace: float = 1.0) -> bool:
    """Wait ``grace`` seconds for whatever the measurement started to
    exit, then SIGKILL it. True if something had to be killed."""
    deadline = time.monotonic() + grace
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return True
        time.sleep(0.01)
    return False


def run_job(job: dict, timeout: float, log_path: str | None = None) -> dict:
    """Run one measurement in a fresh process group; its sample. When it
    fails or leaves processes behind, the last lines of its stderr go into
    the sample and all of it to ``log_path`` (if given): with hundreds of
    actors sharing that stderr, why one of them died is rarely in the
    last lines."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                  if p])
    env.setdefault('PYTHONHASHSEED', '0')
    t0 = time.perf_counter()
    proc = subprocess.Popen(job_argv(job), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    stragglers = _reap_group(proc.pid)
    wall = time.perf_counter() - t0
    sample = None
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            try:
                sample = json.loads(line[len(MARK):])
            except ValueError:
                pass
            break
    if sample is None:
        why = (f'timed out after {timeout:g} s' if timed_out else
               f'exited {proc.returncode} without a result')
        sample = {'ok': False, 'error': why}
    elif sample.get('ok') and proc.returncode != 0:
        sample = {'ok': False, 'error': f'exited {proc.returncode}',
                  'metrics': sample.get('metrics')}
    sample['process_s'] = wall
    if stragglers:
        sample['stragglers_killed'] = True
    if not sample['ok'] or stragglers:
        sample['stderr_tail'] = err.splitlines()[-25:]
        if log_path:
            os.makedirs(os.path.dirname(os.path.abspath(log_path)),
                        exist_ok=True)
            with open(log_path, 'w') as f:
                f.write(err)
            sample['stderr_log'] = log_path
    return sample


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _describe(job: dict) -> str:
    w = job['workload']
    if job['start_method']:
        w += f"[{job['start_method']}]"
    if job['floor']:
        codec = 'floor-batched' if job.get('batched') else 'floor'
    else:
        codec = job['codec']
    return f'{w:<24} {job["variant"]:<8} {codec:<13}'


def _slug(job: dict) -> str:
    """A file name's worth of what a measurement is."""
    codec = (('floor-batched' if job.get('batched') else 'floor')
             if job['floor'] else job['codec'])
    parts = [job['workload'], job['start_method'], job['variant'], codec]
    return '-'.join(p for p in parts if p).replace('+', '_')


def _brief(sample: dict) -> str:
    if not sample.get('ok'):
        return 'FAILED: ' + sample.get('error', '?')[:200]
    m = sample['metrics']
    if 'calls_per_s_1' in m:
        return '  '.join(f'{k[len("calls_per_s_"):]}: {v:,.0f}/s'
                         for k, v in m.items()
                         if k.startswith('calls_per_s_'))
    if 'per_actor_ms' in m:
        return (f"{m['count']} actors: {m['per_actor_ms']:.1f} ms each, "
                f"teardown {m['teardown_ms']:.0f} ms")
    if 'pss_mib' in m:
        return (f"{m['count']} actors: PSS {m['pss_mib']:.1f} MiB, "
                f"RSS {m['rss_mib']:.1f} MiB each")
    if 'p50_us' in m:
        return f"p50 {m['p50_us']:.1f} us  p99 {m['p99_us']:.1f} us"
    if 'spawn1_ms' in m:
        return (f"1: {m['spawn1_ms']:.1f} ms  8: {m['spawn8_ms']:.1f} ms  "
                f"cold: {m['spawn1_cold_ms']:.1f} ms")
    if 'mb_per_s' in m:
        return f"{m['mb_per_s']:.0f} MB/s"
    if 'items_per_s' in m:
        return f"{m['items_per_s']:,.0f} items/s"
    return f"{m['msgs_per_s']:,.0f} msg/s"


def parse(argv=None):
    ap = argparse.ArgumentParser(
        prog='python -m benchmarks',
        description='Measure tractor over every transport and codec, each '
                    'measurement in a fresh process, against each '
                    "transport library's raw floor.")
    ap.add_argument('--transports', nargs='+', metavar='T',
                    help='transports or variants (tcp uds nng zmq nng+ipc '
                         '...; comma or space separated); default: every '
                         'installed one, all address variants')
    ap.add_argument('--codecs', nargs='+', metavar='C',
                    help='codecs (default: msgpack json)')
    ap.add_argument('--workloads', nargs='+', metavar='W',
                    help=f'some of {", ".join(WORKLOADS)} (default: all)')
    ap.add_argument('--start-methods', nargs='+', metavar='M',
                    help='start methods for spawn (default: '
                         f'{" ".join(START_METHODS)})')
    ap.add_argument('--repeat', type=int, default=None,
                    help='fresh-process repeats per measurement '
                         '(default 3, 1 with --quick)')
    ap.add_argument('--quick', action='store_true',
                    help='10-20x fewer messages, fewer actors for '
                         'spawn_many and memory, and one repeat: a smoke '
                         'run of a few minutes')
    ap.add_argument('--timeout', type=float, default=None,
                    help='seconds one measurement may take (default 120, '
                         '30 with --quick)')
    ap.add_argument('--json', metavar='PATH',
                    help='where to write the results (default '
                         'benchmarks/results/<timestamp>.json)')
    ap.add_argument('--chart', metavar='PATH',
                    help='PNG chart (needs matplotlib; default next to '
                         'the JSON when matplotlib is installed)')
    ap.add_argument('--list', action='store_true',
                    help='print the planned measurements and exit')
    ap.add_argument('--report', metavar='JSON',
                    help="measure nothing: print the table of an earlier "
                         "run's JSON and write its chart (--chart, default "
                         "next to the JSON)")
    args = ap.parse_args(argv)
    args.workloads = _csv(args.workloads) or list(WORKLOADS)
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad:
        ap.error(f'unknown workload(s) {bad}; choose from {WORKLOADS}')
    args.start_methods = _csv(args.start_methods) or list(START_METHODS)
    bad = [m for m in args.start_methods if m not in START_METHODS]
    if bad:
        ap.error(f'unknown start method(s) {bad}; choose from '
                 f'{START_METHODS}')
    args.codecs = _csv(args.codecs)
    args.transports = _csv(args.transports)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.repeat < 1:
        ap.error('--repeat must be at least 1')
    if args.timeout is None:
        args.timeout = 30.0 if args.quick else 120.0
    return args


def report(args) -> int:
    """``--report``: the table and chart of an earlier run, from its JSON
    (the README's are made this way from the run they quote)."""
    with open(args.report) as f:
        doc = json.load(f)
    _order_codecs(doc['config']['codecs'])
    header = (f"tractor benchmarks, {doc['started']}, "
              f"{doc['elapsed_s']:.0f} s; `{shlex.join(doc['command'])}`")
    sys.stdout.write(_report.markdown(doc['rows'], doc['targets'], header))
    _write_chart(doc['rows'], args.chart, args.report, asked=True)
    return 0


def _order_codecs(codecs: list) -> None:
    """The column order of the table: the floors, then ``codecs``."""
    _report.CODEC_ORDER[:] = [_report.FLOOR, _report.FLOOR_BATCHED] + codecs


def _write_chart(rows, chart_path, json_path: str, asked: bool) -> None:
    """Write the chart (``chart_path``, default next to ``json_path``) and
    say where; a chart is never worth failing the command. ``asked``: say
    so when matplotlib is missing."""
    chart_path = chart_path or os.path.splitext(json_path)[0] + '.png'
    try:
        made = _report.chart(rows, chart_path)
    except Exception as err:
        made = None
        print(f'chart not written: {type(err).__name__}: {err}',
              file=sys.stderr)
    if made:
        print(f'chart: {made}', file=sys.stderr)
    elif asked:
        print('chart skipped: matplotlib is not installed',
              file=sys.stderr)


def main(argv=None) -> int:
    args = parse(argv)
    if args.report:
        return report(args)
    from tractor.codecs import available_codecs
    from tractor._spawn import default_start_method
    codecs = args.codecs or ['msgpack', 'json']
    have = available_codecs()
    for c in codecs:
        if c not in have:
            raise SystemExit(f'unknown codec {c!r}; available: '
                             f'{", ".join(have)}')
    variants = select_variants(args.transports)
    jobs = plan(args, variants, codecs)
    if args.list:
        for job in jobs:
            print('python ' + shlex.join(job_argv(job)[1:]))
        return 0
    if not jobs:
        print('nothing to measure', file=sys.stderr)
        return 0

    started = datetime.now()
    stamp = started.strftime('%Y%m%d-%H%M%S')
    json_path = args.json or os.path.join(RESULTS, f'{stamp}.json')
    logs = os.path.splitext(json_path)[0] + '-stderr'
    results = [dict(job, samples=[]) for job in jobs]
    total = len(jobs) * args.repeat
    print(f'{total} measurements: {len(variants)} transport variants '
          f'({", ".join(variants)}) x codecs {", ".join(codecs)}, '
          f'repeat {args.repeat}{", quick" if args.quick else ""}',
          file=sys.stderr, flush=True)
    load_before = _loadavg()
    t_start = time.perf_counter()
    k = 0
    for rep in range(args.repeat):
        for res in results:
            k += 1
            log = os.path.join(logs, f'{k:03d}-{_slug(res)}.stderr')
            sample = run_job(res, args.timeout, log)
            sample['repeat'] = rep
            res['samples'].append(sample)
            note = ' (killed leftover processes)' if sample.get(
                'stragglers_killed') else ''
            print(f'[{k:>3}/{total}] {_describe(res)} {_brief(sample)}'
                  f'  ({sample["process_s"]:.1f} s){note}',
                  file=sys.stderr, flush=True)
            if not sample['ok']:
                for line in sample.get('stderr_tail', [])[-8:]:
                    print(f'        | {line}', file=sys.stderr)
            if 'stderr_log' in sample:
                print(f'        all of its stderr: {sample["stderr_log"]}',
                      file=sys.stderr)
    elapsed = time.perf_counter() - t_start

    default_method = default_start_method()
    rows = _report.summarize(results)
    target_results = _report.evaluate_targets(rows, default_method)
    _order_codecs(codecs)
    command = ['python', '-m', 'benchmarks'] + list(
        sys.argv[1:] if argv is None else argv)
    header = (f'tractor benchmarks, {started:%Y-%m-%d %H:%M}, '
              f'{elapsed:.0f} s; `{shlex.join(command)}`')
    if args.quick and 'spawn' in args.workloads and len(codecs) > 1:
        header += (f'\n\n--quick: spawn measured under codec {codecs[0]} '
                   f'only, every start method on {variants[0]} and the '
                   f'default one elsewhere.')
    scale = [w for w in SCALE_WORKLOADS if w in args.workloads]
    if scale:
        where = variants[0] if args.quick else 'every transport variant'
        header += (f'\n\n{" and ".join(scale)}: under codec {codecs[0]} '
                   f'and the {_default_method(args)} start method, on '
                   f'{where}.')
    shown = [t for t in target_results if t['variant'] in variants]
    sys.stdout.write(_report.markdown(rows, shown, header))
    sys.stdout.flush()

    mach = _report.machine(ROOT)
    mach['loadavg_before'] = load_before
    mach['loadavg_after'] = _loadavg()
    doc = {
        'command': command,
        'started': started.isoformat(timespec='seconds'),
        'elapsed_s': elapsed,
        'machine': mach,
        'config': {
            'quick': args.quick, 'repeat': args.repeat,
            'transports': variants, 'codecs': codecs,
            'workloads': args.workloads,
            'start_methods': args.start_methods,
            'default_start_method': default_method,
            'counts': QUICK_COUNTS if args.quick else COUNTS,
        },
        'targets': target_results,
        'rows': rows,
        'results': results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, 'w') as f:
        json.dump(doc, f, indent=1)
    print(f'results: {json_path}', file=sys.stderr)

    _write_chart(rows, args.chart, json_path, asked=bool(args.chart))

    failed = sum(1 for res in results for s in res['samples']
                 if not s.get('ok'))
    if failed:
        print(f'{failed} of {total} measurements failed', file=sys.stderr)
        return 1
    return 0
