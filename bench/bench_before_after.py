#!/usr/bin/env python
"""Benchmark: this tree against an earlier commit, same machine, same run (issue 15: "speed
unchanged" by the restructure).

The earlier commit is unpacked with ``git archive`` into a temporary folder; a child process per
tree and workload runs ``Gs.run`` of random-weight StyleGAN (v1) and StyleGAN2 generators (the
network modules kept their place, so one child script serves both trees). The trees alternate
round by round, and the best time of each is kept, so a busy machine slows both alike. Printed:
seconds per call of each tree and the ratio this/earlier (< 1: faster now).

Examples:
    python bench/bench_before_after.py --base 722be9b --rounds 3
    TF_ENABLE_ONEDNN_OPTS=1 python bench/bench_before_after.py --base cf4fad1 --full-size \
        --workloads v1:256:8          # issue 20's generation figure: the official default G
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One workload, run inside a tree: build, warm up (traces), then time `reps` calls of Gs.run.
CHILD = r'''
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np
import tensorflow as tf
from tf2.network import Network
family, resolution, batch, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
size = {} if sys.argv[6] == 'full' else dict(fmap_base=2048, fmap_max=128)
if family == 'v1':
    from tf2.networks_stylegan import G_style as build
else:
    from tf2.networks_stylegan2 import G_main as build
G = build(name='Gs', resolution=resolution, **size)
Gs = Network(G)
z = np.random.RandomState(0).randn(batch, Gs.input_shape[1]).astype(np.float32)
Gs.run(z, None, randomize_noise=False)
best = float('inf')
for _ in range(reps):
    t0 = time.perf_counter()
    Gs.run(z, None, randomize_noise=False)
    best = min(best, time.perf_counter() - t0)
print(json.dumps(dict(seconds=best)))
'''

WORKLOADS = [('v1', 64, 8), ('v1', 256, 4), ('v2', 64, 8), ('v2', 256, 4)]


def workload(text: str):
    """``'v1:256:8'`` -> ``('v1', 256, 8)`` (family, resolution, batch)."""
    family, resolution, batch = text.split(':')
    if family not in ('v1', 'v2'):
        raise argparse.ArgumentTypeError(f'family must be v1 or v2, got {family!r}')
    return family, int(resolution), int(batch)


def run_child(tree: str, family: str, resolution: int, batch: int, reps: int, size: str) -> float:
    out = subprocess.run([sys.executable, '-c', CHILD, tree, family, str(resolution), str(batch), str(reps), size],
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=os.environ.get('TF_ENABLE_ONEDNN_OPTS', '0')))
    return json.loads(out.stdout.strip().splitlines()[-1])['seconds']


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--base', default='722be9b', help='earlier commit to compare with (default: %(default)s, '
                                                     'the last commit before the issue-15 layout)')
    p.add_argument('--rounds', type=int, default=3, help='alternations of the two trees (default: %(default)s)')
    p.add_argument('--reps', type=int, default=5, help='timed calls per child (default: %(default)s)')
    p.add_argument('--workloads', type=workload, nargs='+', default=WORKLOADS, metavar='FAMILY:RES:BATCH',
                   help='Gs.run workloads (default: %s)' % ' '.join('%s:%d:%d' % w for w in WORKLOADS))
    p.add_argument('--full-size', action='store_true',
                   help="the official default networks (fmap_base 8192, fmap_max 512) instead of "
                        "fmap_base 2048, fmap_max 128")
    args = p.parse_args()
    size = 'full' if args.full_size else 'small'
    with tempfile.TemporaryDirectory(prefix='bench-base-') as base_tree:
        archive = subprocess.run(['git', '-C', REPO, 'archive', args.base], capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', base_tree], input=archive, check=True)
        print(f'this tree vs {args.base}; {size} networks; best of {args.rounds} rounds x {args.reps} calls; '
              f'TF_ENABLE_ONEDNN_OPTS={os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0")}')
        print(f'{"workload":<22s} {"earlier s":>10s} {"this s":>10s} {"this/earlier":>13s}')
        for family, resolution, batch in args.workloads:
            best = {'earlier': float('inf'), 'this': float('inf')}
            for _ in range(args.rounds):
                for name, tree in (('earlier', base_tree), ('this', REPO)):
                    best[name] = min(best[name], run_child(tree, family, resolution, batch, args.reps, size))
            label = f'{family} Gs.run {resolution}px b{batch}'
            print(f'{label:<22s} {best["earlier"]:>10.4f} {best["this"]:>10.4f} '
                  f'{best["this"] / best["earlier"]:>13.3f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
