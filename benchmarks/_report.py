"""Summaries of the raw samples: rows, targets, the markdown table, the
machine description and the optional PNG chart."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata

#: workload -> [(metric key, row label, unit, which way is better)];
#: ``{m}`` in a label is the start method
METRICS = {
    'spawn': [
        ('spawn1_ms', 'spawn 1 actor [{m}]', 'ms', 'lower'),
        ('spawn8_ms', 'spawn 8 actors [{m}]', 'ms', 'lower'),
        ('spawn1_cold_ms', 'spawn 1 actor, cold [{m}]', 'ms', 'lower'),
    ],
    'rpc': [
        ('p50_us', 'rpc p50', 'us', 'lower'),
        ('p99_us', 'rpc p99', 'us', 'lower'),
    ],
    'bidir': [
        ('p50_us', 'bidir p50', 'us', 'lower'),
        ('p99_us', 'bidir p99', 'us', 'lower'),
    ],
    'stream_small': [('msgs_per_s', 'stream_small', 'msg/s', 'higher')],
    'stream_large': [('mb_per_s', 'stream_large', 'MB/s', 'higher')],
    'fanin': [('msgs_per_s', 'fanin', 'msg/s', 'higher')],
    'pipeline': [('items_per_s', 'pipeline', 'items/s', 'higher')],
}

WORKLOAD_ORDER = ['spawn', 'rpc', 'bidir', 'stream_small', 'stream_large',
                  'fanin', 'pipeline']
#: the pipeline's floors (multiprocessing.Queue chains, one item and 64
#: per put) come first among its rows: they are every variant's floors
PIPELINE_FLOOR, PIPELINE_FLOOR_BATCHED = 'mp.Queue', 'mp.Queue-batch64'
VARIANT_ORDER = [PIPELINE_FLOOR, PIPELINE_FLOOR_BATCHED, 'tcp', 'uds',
                 'nng+tcp', 'nng+ipc', 'zmq+tcp', 'zmq+ipc']
FLOOR = 'floor'
#: rows whose floor is another workload's: a round trip over a two-way
#: stream is compared with rpc's floor (request/reply over the library)
FLOOR_LABEL_OF = {'bidir p50': 'rpc p50', 'bidir p99': 'rpc p99'}
#: codecs in table order (the CLI puts them in the order asked for)
CODEC_ORDER = [FLOOR, 'msgpack', 'json']


def label(metric_label: str, start_method) -> str:
    return metric_label.format(m=start_method or '')


def summarize(results: list) -> list:
    """One row per (metric, variant, codec[, start method]) with the
    median and range over the successful repeats, and errors if any."""
    rows = []
    for res in results:
        oks = [s for s in res['samples'] if s.get('ok')]
        errors = [s.get('error', '?') for s in res['samples']
                  if not s.get('ok')]
        for key, lab, unit, better in METRICS[res['workload']]:
            values = [s['metrics'][key] for s in oks
                      if key in s['metrics']]
            row = {
                'workload': res['workload'],
                'metric': key,
                'label': label(lab, res.get('start_method')),
                'variant': res['variant'],
                'codec': FLOOR if res['floor'] else res['codec'],
                'start_method': res.get('start_method'),
                'unit': unit,
                'better': better,
                'n_samples': len(values),
                'errors': errors,
            }
            if values:
                row.update(median=statistics.median(values),
                           min=min(values), max=max(values))
            rows.append(row)
    floors = {(r['label'], r['variant']): r for r in rows
              if r['codec'] == FLOOR and 'median' in r}
    measured = {(r['label'], r['variant'], r['codec']): r for r in rows
                if 'median' in r}
    for r in rows:
        if r['codec'] == FLOOR or 'median' not in r:
            continue
        for key, other in _compared_with(r):
            f = (floors.get(other) if len(other) == 2
                 else measured.get(other))
            if f is not None and f['median']:
                r[key] = r['median'] / f['median']
    return rows


def _compared_with(row) -> list:
    """``(ratio key, row key)`` of every row a runtime row is divided by:
    its floor (``(label, variant)``), and for some workloads a second floor
    or another workload of the same variant and codec (``(label, variant,
    codec)``)."""
    lab, v = row['label'], row['variant']
    if row['workload'] == 'pipeline':
        # transport-independent floors, the same for every variant
        return [('ratio_to_floor', (lab, PIPELINE_FLOOR)),
                ('ratio_to_floor_batched', (lab, PIPELINE_FLOOR_BATCHED))]
    out = [('ratio_to_floor', (FLOOR_LABEL_OF.get(lab, lab), v))]
    if row['workload'] == 'bidir':
        out.append(('ratio_to_rpc', (lab.replace('bidir', 'rpc'), v,
                                     row['codec'])))
    return out


def ratio_text(row) -> str:
    """The table's ``vs floor`` cell: the ratio to the floor, and the
    pipeline's to its batched floor or bidir's to rpc beside it."""
    parts = []
    if 'ratio_to_floor' in row:
        parts.append(f"{row['ratio_to_floor']:.2f}x")
    if 'ratio_to_floor_batched' in row:
        parts.append(f"{row['ratio_to_floor_batched']:.2f}x of batch64")
    if 'ratio_to_rpc' in row:
        parts.append(f"{row['ratio_to_rpc']:.2f}x of rpc")
    if len(parts) > 1:
        return f'{parts[0]} ({", ".join(parts[1:])})'
    return parts[0] if parts else ''


def _sort_key(row):
    w = WORKLOAD_ORDER.index(row['workload'])
    keys = [k for k, *_ in METRICS[row['workload']]]
    v = row['variant']
    vi = VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER)
    c = row['codec']
    ci = CODEC_ORDER.index(c) if c in CODEC_ORDER else len(CODEC_ORDER)
    return (w, keys.index(row['metric']), row['start_method'] or '', vi, v,
            ci, c)


def _fmt(x: float) -> str:
    if x >= 1000:
        return f'{x:,.0f}'
    if x >= 100:
        return f'{x:.0f}'
    if x >= 10:
        return f'{x:.1f}'
    return f'{x:.2f}'


# -- targets ---------------------------------------------------------------
def targets(default_method: str) -> list:
    """The goals the runtime is compared against (reported, not asserted):
    ``kind`` is ``max`` (value at most), ``ratio_max`` or ``ratio_min``
    (runtime median / floor median, or the row's ``ratio`` key: see
    :func:`summarize`)."""
    out = [
        dict(variant='tcp', codec='msgpack',
             label=f'spawn 1 actor [{default_method}]', kind='max',
             value=25.0, text='tcp+msgpack: spawn 1 actor <= 25 ms'),
        dict(variant='tcp', codec='msgpack', label='rpc p50',
             kind='ratio_max', value=1.3,
             text='tcp+msgpack: rpc p50 <= 1.3x raw floor'),
        dict(variant='tcp', codec='msgpack', label='stream_small',
             kind='ratio_min', value=3.0,
             text='tcp+msgpack: stream_small >= 3x raw floor'),
        dict(variant='tcp', codec='msgpack', label='stream_large',
             kind='ratio_min', value=0.9,
             text='tcp+msgpack: stream_large >= 0.9x raw floor'),
        dict(variant='tcp', codec='msgpack', label='fanin',
             kind='ratio_min', value=2.0,
             text='tcp+msgpack: fanin >= 2x raw floor'),
        dict(variant='tcp', codec='msgpack', label='bidir p50',
             kind='ratio_max', value=1.0, ratio='ratio_to_rpc',
             text='tcp+msgpack: bidir p50 <= rpc p50'),
        dict(variant='tcp', codec='msgpack', label='pipeline',
             kind='ratio_min', value=5.0,
             text='tcp+msgpack: pipeline >= 5x mp.Queue (1 item per put)'),
        dict(variant='tcp', codec='msgpack', label='pipeline',
             kind='ratio_min', value=0.7, ratio='ratio_to_floor_batched',
             text='tcp+msgpack: pipeline >= 0.7x mp.Queue-batch64 '
                  '(64 items per put)'),
    ]
    for v in ('nng+tcp', 'nng+ipc', 'zmq+tcp', 'zmq+ipc'):
        out.append(dict(variant=v, codec='msgpack', label='rpc p50',
                        kind='ratio_max', value=1.5,
                        text=f'{v}+msgpack: rpc p50 <= 1.5x its floor'))
        for lab in ('stream_small', 'stream_large', 'fanin'):
            out.append(dict(
                variant=v, codec='msgpack', label=lab, kind='ratio_min',
                value=1 / 1.5,
                text=f'{v}+msgpack: {lab} >= 1/1.5 of its floor'))
    return out


def evaluate_targets(rows: list, default_method: str) -> list:
    index = {(r['label'], r['variant'], r['codec']): r for r in rows}
    out = []
    for t in targets(default_method):
        r = index.get((t['label'], t['variant'], t['codec']))
        t = dict(t)
        if t['kind'] == 'max':
            got = r.get('median') if r else None
        else:
            got = r.get(t.get('ratio', 'ratio_to_floor')) if r else None
        t['observed'] = got
        if got is None:
            t['status'] = 'n/a'
        elif t['kind'] in ('max', 'ratio_max'):
            t['status'] = 'met' if got <= t['value'] else 'MISSED'
        else:
            t['status'] = 'met' if got >= t['value'] else 'MISSED'
        out.append(t)
    return out


# -- the table -------------------------------------------------------------
def markdown(rows: list, target_results: list, header: str = '') -> str:
    lines = []
    if header:
        lines += [header, '']
    lines += ['| workload | transport | codec | median | min-max | unit '
              '| vs floor |',
              '|---|---|---|---:|---:|---|---:|']
    firsts = {k: METRICS[k][0][0] for k in METRICS}
    for r in sorted(rows, key=_sort_key):
        if 'median' not in r and r['metric'] != firsts[r['workload']]:
            continue  # a failed measurement shows as one ERROR row
        if 'median' in r:
            med = _fmt(r['median'])
            rng = (f"{_fmt(r['min'])}-{_fmt(r['max'])}"
                   if r['n_samples'] > 1 else '')
        else:
            med, rng = 'ERROR', ''
        ratio = ratio_text(r)
        if r['errors'] and 'median' in r:
            rng += f" ({len(r['errors'])} failed)"
        lines.append(f"| {r['label']} | {r['variant']} | {r['codec']} | "
                     f"{med} | {rng} | {r['unit']} | {ratio} |")
    errs = [r for r in rows if r['errors']]
    seen = set()
    if errs:
        lines += ['', 'Errors:']
        for r in sorted(errs, key=_sort_key):
            key = (r['workload'], r['variant'], r['codec'],
                   r['start_method'])
            if key in seen:
                continue
            seen.add(key)
            what = r['workload'] + (f" [{r['start_method']}]"
                                    if r['start_method'] else '')
            lines.append(f"- {what} {r['variant']} {r['codec']}: "
                         f"{r['errors'][0][:300]}")
    if not target_results:
        target_results = []
    lines += ['', 'vs floor = runtime median / floor median over the same '
              "transport library (codec 'floor': no runtime, no envelope, "
              'msgpack payloads); for latencies lower is better, for '
              'throughputs higher is better. bidir is compared with rpc\'s '
              'floor, and with the rpc row of its variant and codec '
              '("of rpc"); pipeline with the multiprocessing.Queue chains '
              '(mp.Queue: one item per put; "of batch64": 64 per put), '
              'the floors of every variant.', '',
              'Targets (reported, not asserted):', '',
              '| target | observed | status |', '|---|---:|---|']
    for t in target_results:
        got = t['observed']
        if got is None:
            obs = '-'
        elif t['kind'] == 'max':
            obs = f'{got:.1f} ms'
        else:
            obs = f'{got:.2f}x'
        lines.append(f"| {t['text']} | {obs} | {t['status']} |")
    return '\n'.join(lines) + '\n'


# -- machine ---------------------------------------------------------------
def _version(dist: str):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(root: str) -> dict:
    def run(*cmd):
        try:
            return subprocess.run(
                ['git', *cmd], cwd=root, capture_output=True, text=True,
                timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ''
    return {'commit': run('rev-parse', 'HEAD'),
            'dirty': bool(run('status', '--porcelain', '--', 'tractor'))}


def machine(root: str) -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        'cores': os.cpu_count(),
        'usable_cores': affinity,
        'cpu_model': _cpu_model(),
        'platform': platform.platform(),
        'python': sys.version.split()[0],
        'python_impl': platform.python_implementation(),
        'versions': {d: _version(d) for d in (
            'tractor', 'trio', 'msgpack', 'msgspec', 'orjson', 'pynng',
            'pyzmq', 'matplotlib')},
        # which codec backends ran (tractor/codecs/_base.py): fast when
        # msgspec and orjson are installed, unless this says otherwise
        'codec_backend': os.environ.get('TRACTOR_CODEC_BACKEND') or 'auto',
        'git': _git(root),
    }


# -- chart -----------------------------------------------------------------
def chart(rows: list, path: str) -> str | None:
    """Write a PNG of every row (one panel per metric) if matplotlib is
    installed; returns the path, or None when skipped."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    groups: dict = {}
    firsts = {k: METRICS[k][0][0] for k in METRICS}
    for r in sorted(rows, key=_sort_key):
        if 'median' not in r and r['metric'] != firsts[r['workload']]:
            continue  # a failed measurement shows as one ERROR row
        if 'median' in r:
            groups.setdefault((r['label'], r['unit'], r['better']),
                              []).append(r)
    if not groups:
        return None
    ncols = 2
    nrows = (len(groups) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(14, 3.2 * nrows),
                             squeeze=False)
    for ax, ((lab, unit, better), rs) in zip(axes.flat, groups.items()):
        names = [f"{r['variant']} {r['codec']}" for r in rs]
        vals = [r['median'] for r in rs]
        lo = [r['median'] - r['min'] for r in rs]
        hi = [r['max'] - r['median'] for r in rs]
        colors = ['0.6' if r['codec'] == FLOOR else 'C0' for r in rs]
        ax.barh(range(len(rs)), vals, xerr=[lo, hi], color=colors)
        ax.set_yticks(range(len(rs)))
        ax.set_yticklabels(names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f'{lab} ({unit}, {better} is better)', fontsize=9)
        ax.tick_params(axis='x', labelsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis('off')
    fig.suptitle('tractor benchmarks (grey: raw floor)', fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
