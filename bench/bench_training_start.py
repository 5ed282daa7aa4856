#!/usr/bin/env python
"""Benchmark: the demo training of this tree against an earlier commit, same machine, same run
(static lod-phase tracing: does the start-up get shorter, and the steps no slower?).

The earlier commit is unpacked with ``git archive`` into a temporary folder. Each tree runs
``python run_training.py --data-dir D --dataset demo --kimg K`` as a child process (cwd and
PYTHONPATH = that tree, unbuffered output, oneDNN off unless TF_ENABLE_ONEDNN_OPTS is set); the
trees alternate repeat by repeat (earlier, this, earlier, this, ...), so a busy machine slows both
alike. Both get the same dataset (built once with this tree's ``dataset_tool.py create_demo``
unless --data is given) and the same flags. From each child's output it records:

* start to first tick: wall seconds from launching the process to its first ``tick`` line (import,
  dataset, networks, initial image grid, tracing and first calls, the rest of the first tick);
* sec/kimg per lod: the ``sec/kimg`` field of every tick line, grouped by its ``lod`` field,
  without the first tick of each run (it includes the start-up);
* sec/kimg of the stable phases per resolution: the ticks at an integer lod whose previous tick was
  at the same lod, so that none includes the start-up, a fade-in or the trace of a new lod phase
  (this tree traces each phase on its first tick; see ``stable_ticks``);
* the whole run: wall seconds from launching the process to its exit.

Printed: the median over the repeats of each tree and the ratio earlier/this (> 1: faster now);
for the stable phases also the ratio of each repeat's two runs (run by run: the machine's drift).
The demo's tick is 1 kimg. The baseline's demo trains at lod 3 (8x8) for its first 3 kimg, this
tree's (the recipe of issue 20: narrower networks, 2-kimg phases, lr 0.008) for its first 2, so
--kimg 3 gives 3 and 2 ticks at lod 3 and --kimg 6 reaches the first fade-in in both. Since that
recipe change both trees run their own demo preset: the ratios compare the demos as shipped (code
and recipe), not the code alone on the same networks.

Example:
    python bench/bench_training_start.py                          # aac619f vs this tree, 3 kimg (~8 min)
    python bench/bench_training_start.py --kimg 6 --repeats 2 --data datasets   # an existing datasets/demo
    python bench/bench_training_start.py --kimg 15 --as-shipped    # the demos' first 15 kimg, as users run them
    python bench/bench_training_start.py --kimg 24 --as-shipped --repeats 2 --data datasets   # 9 stable
                                        # 64x64 ticks of the baseline per run (~30 min)
    python bench/bench_training_start.py --kimg 4 --as-shipped --extra="--resolution 8"   # 8x8 stable
                                        # ticks (the 64x64 demo's 8x8 phase is too short for one)
    python bench/bench_training_start.py --fixed-cost --as-shipped --data datasets        # ~10 min

With --fixed-cost each tree runs the demo networks built at 8x8 (``--resolution 8``) twice, at
``--batch`` 2 and 8 (FIXED_COST_MINIBATCHES), and the line through their stable ms per step
(sec/kimg x minibatch) gives the fixed cost of a step (its intercept: what every step pays whatever
its size: dispatch, optimizer applies, the Gs average) and the cost per image (its slope).
"""

import argparse
import collections
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = re.compile(r'^tick\s+(\d+)\s.*?\blod\s+(\S+)\s.*?\bsec/kimg\s+(\S+)')
# Same for both trees: no image grids or network snapshots beyond the ones every run writes (the
# first tick and the end), no style-mixing figure at the end; none of it counts in sec/kimg.
QUIET = ['--snapshot-ticks', '1000', '--image-snapshot-ticks', '1000', '--mixing-figure', 'false']
FIXED_COST_MINIBATCHES = (2, 8)


def child_env(tree: str, as_shipped: bool) -> dict:
    """The child's environment: oneDNN as TF_ENABLE_ONEDNN_OPTS says (off if unset), or with
    as_shipped each tree's own default (the scripts of this tree turn it on; the baseline's leave
    TensorFlow's choice, off on CPUs without AVX-512)."""
    env = dict(os.environ, PYTHONPATH=tree, PYTHONUNBUFFERED='1')
    if as_shipped:
        env.pop('TF_ENABLE_ONEDNN_OPTS', None)
    else:
        env['TF_ENABLE_ONEDNN_OPTS'] = os.environ.get('TF_ENABLE_ONEDNN_OPTS', '0')
    return env


def run_training(tree: str, data_dir: str, kimg: float, extra: list, as_shipped: bool = False) -> dict:
    """One training child in `tree`: seconds to its first tick line and (tick, lod, sec/kimg) of all."""
    cmd = [sys.executable, '-u', 'run_training.py', '--data-dir', data_dir, '--dataset', 'demo',
           '--kimg', str(kimg)] + QUIET + extra
    env = child_env(tree, as_shipped)
    last = collections.deque(maxlen=20)              # the output's tail, for the error message
    ticks, first_tick, whole = [], None, None
    with tempfile.TemporaryDirectory(prefix='bench-results-') as result_dir:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd + ['--result-dir', result_dir], cwd=tree, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            for line in proc.stdout:
                last.append(line.rstrip('\n'))
                m = TICK.match(line)
                if m:
                    if first_tick is None:
                        first_tick = time.perf_counter() - start
                    ticks.append((int(m.group(1)), float(m.group(2)), float(m.group(3))))
            rc = proc.wait()
            whole = time.perf_counter() - start
        finally:
            if proc.poll() is None:                  # interrupted: do not leave the child training
                proc.kill()
                proc.wait()
    if rc != 0 or first_tick is None:
        tail = '\n'.join(last)
        raise RuntimeError(f'{" ".join(cmd)} in {tree} exited with {rc}'
                           f'{"" if first_tick else " without a tick line"}; last lines:\n{tail}')
    return dict(first_tick=first_tick, ticks=ticks, whole=whole)


def stable_ticks(ticks: list) -> dict:
    """lod (an int) -> sec/kimg of the ticks spent wholly in that stable phase: an integer lod, and
    the previous tick at the same lod (the first tick of a phase includes the end of the fade-in
    before it and, in this tree, the phase's trace). `ticks`: (tick, lod, sec/kimg) of one run;
    lod 0 is the run's full resolution, lod 1 half of it, and so on."""
    out = collections.defaultdict(list)
    for (_, prev_lod, _), (_, lod, spk) in zip(ticks, ticks[1:]):
        if lod == prev_lod and lod == int(lod):
            out[int(lod)].append(spk)
    return out


def stable_ratios_by_run(base_runs: list, this_runs: list) -> dict:
    """lod -> baseline/this of the stable ticks' medians, run by run: repeat k of the two trees
    ran one after the other, so the spread of these ratios is the machine's drift over the
    benchmark, which the pooled medians hide."""
    out = collections.defaultdict(list)
    for base, this in zip(base_runs, this_runs):
        b, t = stable_ticks(base['ticks']), stable_ticks(this['ticks'])
        for lod in sorted(set(b) & set(t), reverse=True):
            out[lod].append(median(b[lod]) / median(t[lod]))
    return out


def step_cost_line(ms_per_step: dict) -> tuple:
    """{minibatch: ms per step} at two minibatches -> (fixed ms per step, ms per image): the
    intercept and slope of the line through them."""
    (n1, t1), (n2, t2) = sorted(ms_per_step.items())
    per_image = (t2 - t1) / (n2 - n1)
    return t1 - n1 * per_image, per_image


def fixed_cost_rows(runs: dict) -> list:
    """runs: minibatch -> one tree's run results at it -> (label, value) rows; None where a run
    had no stable tick (use a larger --kimg)."""
    ms = {}
    for minibatch, rs in runs.items():
        spk = median([s for r in rs for s in stable_ticks(r['ticks']).get(0, [])])
        ms[minibatch] = None if spk is None else spk * minibatch
    rows = [(f'ms/step at minibatch {n}', ms[n]) for n in sorted(ms)]
    fixed, per_image = (None, None) if None in ms.values() else step_cost_line(ms)
    return rows + [('fixed ms per step', fixed), ('ms per image', per_image)]


def fmt(x) -> str:
    return '-' if x is None else f'{x:.2f}'


def ratio(a, b) -> str:
    return '-' if a is None or b is None or b == 0 else f'{a / b:.3f}'


def median(values: list):
    return statistics.median(values) if values else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--baseline', default='aac619f', help='earlier commit to compare with (default: %(default)s, '
                                                         'the last commit before the static lod-phase tracing)')
    p.add_argument('--kimg', type=float, default=3.0, help='training length of every run; the demo ticks '
                                                           'every kimg (default: %(default)s)')
    p.add_argument('--repeats', type=int, default=1, help='runs of each tree, alternating (default: %(default)s)')
    p.add_argument('--data', metavar='DIR', help='folder holding an existing demo dataset (DIR/demo; default: '
                                                 'build one into a temporary folder)')
    p.add_argument('--extra', default='', metavar='ARGS', help='more run_training.py arguments for both trees, '
                                                               'e.g. --extra="--config stylegan2-demo"')
    p.add_argument('--as-shipped', action='store_true',
                   help='each tree with its own oneDNN default (this tree: on; the baseline: '
                        'TensorFlow\'s, off without AVX-512) instead of both off')
    p.add_argument('--fixed-cost', action='store_true',
                   help='instead of the demo: the fixed cost of a step and the cost per image, from the demo '
                        f'networks at 8x8 at --batch {" and ".join(map(str, FIXED_COST_MINIBATCHES))} '
                        '(each tree runs twice; --kimg at least 3 for two stable ticks)')
    args = p.parse_args()
    extra = shlex.split(args.extra)
    base_commit = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', args.baseline],
                                 capture_output=True, text=True, check=True).stdout.strip()
    head = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'],
                          capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(['git', '-C', REPO, 'status', '--porcelain', '--untracked-files=no'],
                           capture_output=True, text=True, check=True).stdout.strip()
    temp = tempfile.mkdtemp(prefix='bench-training-start-')
    try:
        # The baseline tree: the commit's files, nothing else (no results, datasets or caches).
        base_tree = os.path.join(temp, 'baseline')
        os.makedirs(base_tree)
        archive = subprocess.run(['git', '-C', REPO, 'archive', base_commit], capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', base_tree], input=archive, check=True)
        data_dir = os.path.abspath(args.data) if args.data else os.path.join(temp, 'datasets')
        if not args.data:
            print('building the demo dataset...', flush=True)
            built = subprocess.run([sys.executable, 'dataset_tool.py', 'create_demo', os.path.join(data_dir, 'demo'),
                                    '--no-progress'], cwd=REPO, capture_output=True, text=True)
            if built.returncode != 0:
                tail = '\n'.join((built.stdout + built.stderr).splitlines()[-20:])
                raise RuntimeError(f'dataset_tool.py create_demo exited with {built.returncode}; last lines:\n{tail}')

        shown = ' '.join(shlex.quote(a) for a in ['python', 'run_training.py', '--data-dir', data_dir,
                                                  '--dataset', 'demo', '--kimg', str(args.kimg)] + QUIET + extra)
        print(f'baseline {base_commit} vs this tree (HEAD {head}{", with uncommitted changes" if dirty else ""}); '
              f'{args.repeats} run(s) each, alternating; '
              + ('oneDNN as each tree ships it' if args.as_shipped else
                 f'TF_ENABLE_ONEDNN_OPTS={os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0")}'))
        print(f'command (in each tree): {shown} --result-dir <temp>', flush=True)
        # The runs: the demo as given, or with --fixed-cost the 8x8 networks at each minibatch.
        variants = {None: extra}
        if args.fixed_cost:
            variants = {n: extra + ['--resolution', '8', '--batch', str(n)] for n in FIXED_COST_MINIBATCHES}
        by_variant = {name: {v: [] for v in variants} for name in ('baseline', 'this')}
        for rep in range(args.repeats):
            for variant, variant_extra in variants.items():
                shown_variant = ''.join(f' {a}' for a in variant_extra[len(extra):])
                for name, tree in (('baseline', base_tree), ('this', REPO)):
                    r = run_training(tree, data_dir, args.kimg, variant_extra, args.as_shipped)
                    by_variant[name][variant].append(r)
                    print(f'  run {rep + 1} {name:<8s}{shown_variant}: first tick after {r["first_tick"]:.1f} s; '
                          'ticks (lod, sec/kimg): '
                          + ', '.join(f'{lod:.2f} {spk:.2f}' for _, lod, spk in r['ticks']), flush=True)
    except (subprocess.CalledProcessError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    if args.fixed_cost:
        rows = {name: fixed_cost_rows(by_variant[name]) for name in by_variant}
        print()
        print(f'{"measure (8x8 networks)":<26s} {"baseline":>9s} {"this":>9s} {"baseline/this":>14s}')
        for (label, b), (_, t) in zip(rows['baseline'], rows['this']):
            print(f'{label:<26s} {fmt(b):>9s} {fmt(t):>9s} {ratio(b, t):>14s}')
        return 0

    results = {name: runs[None] for name, runs in by_variant.items()}
    # Start-up: median over the repeats. Steps: median of all ticks at a lod, first ticks left out.
    first = {n: median([r['first_tick'] for r in rs]) for n, rs in results.items()}
    per_lod = {n: collections.defaultdict(list) for n in results}
    for n, rs in results.items():
        for r in rs:
            for tick, lod, spk in r['ticks']:
                if tick > 1:
                    per_lod[n][lod].append(spk)
    stable = {n: collections.defaultdict(list) for n in results}
    for n, rs in results.items():
        for r in rs:
            for lod, spks in stable_ticks(r['ticks']).items():
                stable[n][lod].extend(spks)
    by_run = stable_ratios_by_run(results['baseline'], results['this'])
    whole = {n: median([r['whole'] for r in rs]) for n, rs in results.items()}
    print()
    print(f'{"measure":<26s} {"baseline":>9s} {"this":>9s} {"baseline/this":>14s} {"ticks":>7s}  run by run')
    print(f'{"start to first tick, s":<26s} {fmt(first["baseline"]):>9s} {fmt(first["this"]):>9s} '
          f'{ratio(first["baseline"], first["this"]):>14s} {"":>7s}')
    for lod in sorted(set(per_lod['baseline']) | set(per_lod['this']), reverse=True):
        b, t = median(per_lod['baseline'][lod]), median(per_lod['this'][lod])
        counts = f'{len(per_lod["baseline"][lod])}/{len(per_lod["this"][lod])}'
        print(f'{f"sec/kimg at lod {lod:.2f}":<26s} {fmt(b):>9s} {fmt(t):>9s} {ratio(b, t):>14s} {counts:>7s}')
    if not any(per_lod[n] for n in per_lod):
        print('(no tick after the first: use a larger --kimg for sec/kimg)')
    for lod in sorted(set(stable['baseline']) | set(stable['this']), reverse=True):
        b, t = median(stable['baseline'][lod]), median(stable['this'][lod])
        counts = f'{len(stable["baseline"][lod])}/{len(stable["this"][lod])}'
        label = f'stable, lod {lod} (full/{2 ** lod})' if lod else 'stable, lod 0 (full size)'
        runs = ' '.join(f'{x:.3f}' for x in by_run.get(lod, []))
        print(f'{label:<26s} {fmt(b):>9s} {fmt(t):>9s} {ratio(b, t):>14s} {counts:>7s}  {runs}')
    print(f'{"whole run, s":<26s} {fmt(whole["baseline"]):>9s} {fmt(whole["this"]):>9s} '
          f'{ratio(whole["baseline"], whole["this"]):>14s} {"":>7s}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
