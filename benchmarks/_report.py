"""Summaries of the raw samples: rows, targets, the markdown table, the
machine description and the optional PNG chart."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from importlib import metadata

from ._workloads import INFLIGHT

#: workload -> [(metric key, row label, unit, which way is better)];
#: ``{m}`` in a label is the start method, ``{n}`` the workload's count
#: (actors for spawn_many and memory)
METRICS = {
    'spawn': [
        ('spawn1_ms', 'spawn 1 actor [{m}]', 'ms', 'lower'),
        ('spawn8_ms', 'spawn 8 actors [{m}]', 'ms', 'lower'),
        ('spawn1_cold_ms', 'spawn 1 actor, cold [{m}]', 'ms', 'lower'),
    ],
    'spawn_many': [
        ('per_actor_ms', 'spawn {n} at once, per actor [{m}]', 'ms',
         'lower'),
        ('teardown_ms', 'teardown of {n} [{m}]', 'ms', 'lower'),
    ],
    'memory': [
        ('pss_mib', 'PSS per idle actor, {n} up [{m}]', 'MiB', 'lower'),
        ('rss_mib', 'RSS per idle actor, {n} up [{m}]', 'MiB', 'lower'),
    ],
    'rpc': [
        ('p50_us', 'rpc p50', 'us', 'lower'),
        ('p99_us', 'rpc p99', 'us', 'lower'),
    ],
    'rpc_inflight': [
        (f'calls_per_s_{c}', f'rpc {c} in flight', 'calls/s', 'higher')
        for c in INFLIGHT
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

WORKLOAD_ORDER = ['spawn', 'spawn_many', 'memory', 'rpc', 'rpc_inflight',
                  'bidir', 'stream_small', 'stream_large', 'fanin',
                  'pipeline']
#: the pipeline's floors (multiprocessing.Queue chains, one item and 64
#: per put) come first among its rows: they are every variant's floors
PIPELINE_FLOOR, PIPELINE_FLOOR_BATCHED = 'mp.Queue', 'mp.Queue-batch64'
#: and the reference of one-item-at-a-time async stages (see _floor)
PIPELINE_ASYNCGEN = 'mp.Queue-batch64-asyncgen'
VARIANT_ORDER = [PIPELINE_FLOOR, PIPELINE_FLOOR_BATCHED, PIPELINE_ASYNCGEN,
                 'tcp', 'tcp+tls',
                 'uds', 'nng+tcp', 'nng+ipc', 'nng+tls', 'zmq+tcp',
                 'zmq+ipc', 'zmq+curve']
#: a secured variant -> its plaintext self, which each of its rows is
#: also compared with (what security costs; issue 15's targets)
PLAINTEXT_OF = {'tcp+tls': 'tcp', 'nng+tls': 'nng+tcp',
                'zmq+curve': 'zmq+tcp'}
#: the codec column of the floors: the library used naively (one message
#: per call) and, for the workloads of _floor.BATCHED, used well
FLOOR, FLOOR_BATCHED = 'floor', 'floor-batched'
#: rows whose floor is another workload's: a round trip over a two-way
#: stream is compared with rpc's floor (request/reply over the library)
FLOOR_LABEL_OF = {'bidir p50': 'rpc p50', 'bidir p99': 'rpc p99'}
#: codecs in table order (the CLI puts them in the order asked for)
CODEC_ORDER = [FLOOR, FLOOR_BATCHED, 'msgpack', 'json']


def label(metric_label: str, start_method, n=None) -> str:
    return metric_label.format(m=start_method or '', n=n)


def is_floor(codec: str) -> bool:
    return codec in (FLOOR, FLOOR_BATCHED)


def summarize(results: list) -> list:
    """One row per (metric, variant, codec[, start method]) with the
    median and range over the successful repeats, and errors if any;
    runtime rows also get their ratios to their floors (see
    :func:`_compared_with`)."""
    rows = []
    for res in results:
        oks = [s for s in res['samples'] if s.get('ok')]
        errors = [s.get('error', '?') for s in res['samples']
                  if not s.get('ok')]
        if res['floor']:
            codec = FLOOR_BATCHED if res.get('batched') else FLOOR
        else:
            codec = res['codec']
        for key, lab, unit, better in METRICS[res['workload']]:
            values = [s['metrics'][key] for s in oks
                      if key in s['metrics']]
            row = {
                'workload': res['workload'],
                'metric': key,
                'label': label(lab, res.get('start_method'), res.get('n')),
                'variant': res['variant'],
                'codec': codec,
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
    measured = {(r['label'], r['variant'], r['codec']): r for r in rows
                if 'median' in r}
    for r in rows:
        if is_floor(r['codec']) or 'median' not in r:
            continue
        ratios = []
        for key, other, against in _compared_with(r):
            f = measured.get(other)
            if f is not None and f['median']:
                r[key] = r['median'] / f['median']
                ratios.append({'key': key, 'against': against,
                               'value': r[key]})
        if ratios:
            r['ratios'] = ratios
    return rows


def _compared_with(row) -> list:
    """``(ratio key, (label, variant, codec) of the row divided by, name
    of that row in the table)`` for every ratio of a runtime row: its
    floor, and for some workloads a batched floor or another workload of
    the same variant and codec."""
    lab, v, w = row['label'], row['variant'], row['workload']
    if w == 'pipeline':
        # transport-independent floors, the same for every variant
        out = [('ratio_to_floor', (lab, PIPELINE_FLOOR, FLOOR),
                PIPELINE_FLOOR),
               ('ratio_to_floor_batched',
                (lab, PIPELINE_FLOOR_BATCHED, FLOOR),
                PIPELINE_FLOOR_BATCHED),
               ('ratio_to_asyncgen', (lab, PIPELINE_ASYNCGEN, FLOOR),
                PIPELINE_ASYNCGEN)]
    elif w == 'bidir':
        rpc = FLOOR_LABEL_OF.get(lab, lab)
        out = [('ratio_to_floor', (rpc, v, FLOOR), "rpc's floor"),
               ('ratio_to_rpc', (rpc, v, row['codec']), 'rpc')]
    else:
        out = [('ratio_to_floor', (lab, v, FLOOR), FLOOR)]
        if w in ('stream_small', 'fanin'):
            out.append(('ratio_to_floor_batched', (lab, v, FLOOR_BATCHED),
                        FLOOR_BATCHED))
        if w == 'rpc_inflight' and lab != f'rpc {INFLIGHT[0]} in flight':
            out.append(('ratio_to_seq',
                        (f'rpc {INFLIGHT[0]} in flight', v, row['codec']),
                        f'{INFLIGHT[0]} in flight'))
    plain = PLAINTEXT_OF.get(v)
    if plain is not None:
        out.append(('ratio_to_plaintext', (lab, plain, row['codec']),
                    plain))
    return out


def ratio_text(row) -> str:
    """The table's ``ratios`` cell: every ratio of the row, each naming
    what it is against (``8.51x floor, 2.10x floor-batched``)."""
    return ', '.join(f"{x['value']:.2f}x {x['against']}"
                     for x in row.get('ratios', ()))


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
#: the actors of the scale targets (the full run's counts: a --quick run
#: starts fewer, and its rows then have no target)
SPAWN_MANY_TARGET_N, MEMORY_TARGET_N = 500, 100


def targets(default_method: str) -> list:
    """The goals the runtime is compared against (issue 17; reported, not
    asserted): ``kind`` is ``max``/``min`` (the median at most/least, in
    the row's unit), ``ratio_max``/``ratio_min`` (the row's ``ratio`` key,
    by default ``ratio_to_floor``: see :func:`summarize`) or
    ``codec_ratio_min`` (the median over the same row of ``of_codec``)."""
    m = default_method
    tm = dict(variant='tcp', codec='msgpack')
    out = [
        dict(tm, label=f'spawn 1 actor [{m}]', kind='max', value=25.0,
             text='tcp+msgpack: spawn 1 actor <= 25 ms'),
        dict(tm, label=label(METRICS['spawn_many'][0][1], m,
                             SPAWN_MANY_TARGET_N),
             kind='max', value=8.0,
             text=f'tcp+msgpack: spawn {SPAWN_MANY_TARGET_N} at once '
                  f'<= 8 ms per actor [{m}]'),
        dict(tm, label=label(METRICS['spawn_many'][1][1], m,
                             SPAWN_MANY_TARGET_N),
             kind='max', value=1000.0,
             text=f'tcp+msgpack: teardown of {SPAWN_MANY_TARGET_N} '
                  f'<= 1 s [{m}]'),
        dict(tm, label=label(METRICS['memory'][0][1], m, MEMORY_TARGET_N),
             kind='max', value=6.0,
             text=f'tcp+msgpack: PSS per idle actor <= 6 MiB with '
                  f'{MEMORY_TARGET_N} up [{m}]'),
        dict(tm, label=f'rpc {INFLIGHT[-1]} in flight', kind='ratio_min',
             value=10.0, ratio='ratio_to_seq',
             text=f'tcp+msgpack: rpc {INFLIGHT[-1]} in flight >= 10x '
                  f'{INFLIGHT[0]} in flight'),
        dict(tm, label=f'rpc {INFLIGHT[-1]} in flight', kind='min',
             value=150_000.0,
             text=f'tcp+msgpack: rpc {INFLIGHT[-1]} in flight >= 150,000 '
                  f'calls/s'),
        dict(tm, label='stream_small', kind='min', value=1_200_000.0,
             text='tcp+msgpack: stream_small >= 1,200,000 msg/s'),
        dict(tm, label='stream_large', kind='ratio_min', value=0.9,
             text='tcp+msgpack: stream_large >= 0.9x floor'),
        dict(tm, label='bidir p50', kind='ratio_max', value=1.0,
             ratio='ratio_to_rpc', text='tcp+msgpack: bidir p50 <= rpc p50'),
        dict(tm, label='pipeline', kind='ratio_min', value=5.0,
             text='tcp+msgpack: pipeline >= 5x mp.Queue (1 item per put)'),
        dict(tm, label='pipeline', kind='ratio_min', value=0.7,
             ratio='ratio_to_floor_batched',
             text='tcp+msgpack: pipeline >= 0.7x mp.Queue-batch64 '
                  '(64 items per put)'),
    ]
    for lab in ('stream_small', 'stream_large', 'fanin'):
        out.append(dict(variant='tcp', codec='json', label=lab,
                        kind='codec_ratio_min', value=1 / 1.3,
                        of_codec='msgpack',
                        text=f'tcp: {lab} json >= 1/1.3 of msgpack'))
    for v in ('tcp', 'uds', 'nng+tcp', 'nng+ipc', 'zmq+tcp', 'zmq+ipc'):
        vm = dict(variant=v, codec='msgpack')
        cap = 1.0 if v in ('tcp', 'uds') else 1.2
        out.append(dict(vm, label='rpc p50', kind='ratio_max', value=cap,
                        text=f'{v}+msgpack: rpc p50 <= {cap}x floor'))
        least = 1.5 if v == 'tcp' else 1.0
        for lab in ('stream_small', 'fanin'):
            out.append(dict(vm, label=lab, kind='ratio_min', value=least,
                            ratio='ratio_to_floor_batched',
                            text=f'{v}+msgpack: {lab} >= {least}x '
                                 f'floor-batched'))
        if v not in ('tcp', 'uds'):
            out.append(dict(vm, label='stream_large', kind='ratio_min',
                            value=1 / 1.5,
                            text=f'{v}+msgpack: stream_large >= 1/1.5 of '
                                 f'floor'))
    # issue 15: what security costs, against the plaintext self
    for v, plain in PLAINTEXT_OF.items():
        vm = dict(variant=v, codec='msgpack', ratio='ratio_to_plaintext')
        least = 0.4 if v == 'zmq+curve' else 0.5
        out += [
            dict(vm, label='rpc p50', kind='ratio_max', value=1.2,
                 text=f'{v}+msgpack: rpc p50 <= 1.2x {plain}'),
            dict(vm, label='stream_small', kind='ratio_min', value=0.8,
                 text=f'{v}+msgpack: stream_small >= 0.8x {plain}'),
            dict(vm, label='stream_large', kind='ratio_min', value=least,
                 text=f'{v}+msgpack: stream_large >= {least}x {plain}'),
        ]
    return out


def evaluate_targets(rows: list, default_method: str) -> list:
    index = {(r['label'], r['variant'], r['codec']): r for r in rows}
    out = []
    for t in targets(default_method):
        r = index.get((t['label'], t['variant'], t['codec']))
        t = dict(t)
        got = None
        if r is None or 'median' not in r:
            pass
        elif t['kind'] in ('max', 'min'):
            got = r['median']
            t['unit'] = r['unit']
        elif t['kind'] == 'codec_ratio_min':
            other = index.get((t['label'], t['variant'], t['of_codec']))
            if other is not None and other.get('median'):
                got = r['median'] / other['median']
        else:
            got = r.get(t.get('ratio', 'ratio_to_floor'))
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
              '| ratios |',
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
    lines += ['', 'ratios = runtime median / the median of the row each '
              'names, so for latencies lower is better, for throughputs '
              "higher. 'floor': the same transport library used directly "
              '(no runtime, no envelope, msgpack payloads), one message '
              "per library call; 'floor-batched': the same library used "
              'well, a burst of 64 messages per call (stream_small and '
              "fanin). bidir is compared with rpc's floor and with the rpc "
              'row of its variant and codec; rpc 8 and 64 in flight with '
              'rpc 1 in flight too; pipeline with the '
              'multiprocessing.Queue chains (mp.Queue: one item per put; '
              'mp.Queue-batch64: 64 per put), the floors of every '
              'variant, and with mp.Queue-batch64-asyncgen, the batch64 '
              "chain whose stages' code is a tractor pipeline's (async "
              'generators, one item at a time, a trio checkpoint per item '
              'received) and no runtime at all. A secured variant (tcp+tls, nng+tls, zmq+curve) '
              'is also compared with its plaintext self (tcp, nng+tcp, '
              'zmq+tcp); its floor is the library secured its own way '
              '(trio.SSLStream, nng tls+tcp, CURVE).', '',
              'Targets (reported, not asserted):', '',
              '| target | observed | status |', '|---|---:|---|']
    for t in target_results:
        got = t['observed']
        if got is None:
            obs = '-'
        elif t['kind'] in ('max', 'min'):
            obs = f"{_fmt(got)} {t['unit']}"
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
#: the ratios the chart draws: to a floor (a row's other ratios, to rpc or
#: to 1 call in flight, stay in the table)
FLOOR_RATIOS = ('ratio_to_floor', 'ratio_to_floor_batched')


def chart(rows: list, path: str) -> str | None:
    """Write a PNG of how each transport compares with its floors, if
    matplotlib is installed; returns the path, or None when skipped.

    What a reader asks first is how the runtime compares with the library
    used directly, so there is one panel per codec (the first codec
    first): a group of bars per workload and floor (``stream_small vs
    floor-batched``), one bar per transport variant, on a log scale where
    1 is the floor. Every bar is a speed-up, right is better: a
    throughput's ratio as it is, a latency's inverted (floor / runtime).
    The absolute figures, spawn and memory are the markdown table's.
    """
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        return None
    panels: dict = {}
    for r in sorted(rows, key=_sort_key):
        if r['metric'] == 'p99_us':
            continue  # p50 says it; the tail is the table's
        for x in r.get('ratios', ()):
            if x['key'] in FLOOR_RATIOS:
                speedup = (x['value'] if r['better'] == 'higher'
                           else 1 / x['value'])
                group = (r['label'], x['against'])
                panels.setdefault(r['codec'], {}).setdefault(
                    group, {})[r['variant']] = speedup
    if not panels:
        raise ValueError("no ratio to a floor to chart: add 'floor' to "
                         "--workloads with a workload that has one")
    codecs = sorted(panels, key=lambda c: (
        CODEC_ORDER.index(c) if c in CODEC_ORDER else len(CODEC_ORDER), c))
    variants = sorted({v for c in codecs for g in panels[c].values()
                       for v in g},
                      key=lambda v: (VARIANT_ORDER.index(v)
                                     if v in VARIANT_ORDER
                                     else len(VARIANT_ORDER), v))
    colour = {v: f'C{i % 10}' for i, v in enumerate(variants)}
    bar = 0.8 / len(variants)
    heights = [len(panels[c]) * (0.16 * len(variants) + 0.25) + 1.0
               for c in codecs]
    fig, axes = plt.subplots(len(codecs), 1, squeeze=False,
                             figsize=(11, sum(heights)),
                             gridspec_kw={'height_ratios': heights})
    for ax, codec in zip(axes.flat, codecs):
        groups = panels[codec]
        vals = [x for g in groups.values() for x in g.values()]
        for vi, v in enumerate(variants):
            offset = (vi - (len(variants) - 1) / 2) * bar
            at = [(gi + offset, g[v])
                  for gi, g in enumerate(groups.values()) if v in g]
            if not at:
                continue
            ys, xs = zip(*at)
            ax.barh(ys, xs, height=bar * 0.9, color=colour[v], label=v)
            for y, x in at:
                ax.text(x, y, f' {x:.2f}', va='center', fontsize=6)
        ax.set_xscale('log')
        lo, hi = min(vals + [1.0]), max(vals + [1.0])
        ax.set_xlim(lo / 1.5, hi * 2.0)
        ax.axvline(1.0, color='0.3', linewidth=0.8)
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10,
                             20, 50, 100) if lo / 1.5 <= t <= hi * 2.0]
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f'{t:g}'))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(groups)))
        ax.set_yticklabels([f'{lab}\nvs {against}'
                            for lab, against in groups], fontsize=7)
        ax.set_ylim(len(groups) - 0.5, -0.5)
        ax.tick_params(axis='x', labelsize=7)
        ax.set_title(f'codec {codec}: times as fast as the floor (log; '
                     f'1 = the floor; latencies: floor / runtime)',
                     fontsize=9)
    handles, names = axes.flat[0].get_legend_handles_labels()
    inch = 1 / sum(heights)  # room for the title and the legend on top
    fig.legend(handles, names, loc='upper center', ncol=len(names),
               fontsize=8, bbox_to_anchor=(0.5, 1.0), frameon=False,
               title='tractor against each transport library used '
                     'directly (floor: one message per call; '
                     'floor-batched: 64 per call)',
               title_fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 * inch))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
