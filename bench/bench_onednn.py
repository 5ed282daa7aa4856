#!/usr/bin/env python3
"""Benchmark: Gs.run images/s with oneDNN off vs on, StyleGAN v1 and v2, in child processes.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import, and turns oneDNN on by itself only on
CPUs with AVX-512. So each measurement is a child process started with TF_ENABLE_ONEDNN_OPTS=0 or
=1, and the two settings alternate (off, on, off, on, ...) so that a machine shared with other
work loads both alike; the ratio on/off is taken within each round and the median is printed.

Networks: the official default kwargs (v1 G_style, v2 G_main config f), random weights, NHWC,
`Gs.run` (the public API path: tf.function, NCHW numpy out) at --resolution and --batch, one
untimed call first (trace + warm-up), then at least --seconds of timed calls.

Example:
  python bench/bench_onednn.py                          # 256 px, batch 8, 2 rounds (~10 min)
  python bench/bench_onednn.py --nets v1 --rounds 3 --seconds 20
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(net: str, resolution: int, batch: int, seconds: float) -> dict:
    """Runs in the child process: images/s of Gs.run for one network."""
    sys.path.insert(0, REPO)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import numpy as np
    from tf2 import networks_stylegan, networks_stylegan2
    from tf2.network import Network
    if net == 'v1':
        G = networks_stylegan.G_style(name='Gs', num_channels=3, resolution=resolution, label_size=0)
    else:
        G = networks_stylegan2.G_main(name='Gs', num_channels=3, resolution=resolution, label_size=0)
    Gs = Network(G)
    z = np.random.RandomState(0).randn(batch, Gs.input_shape[1]).astype(np.float32)
    t = time.perf_counter()
    Gs.run(z, None)
    first = time.perf_counter() - t
    iters, t0 = 0, time.perf_counter()
    while iters < 2 or time.perf_counter() - t0 < seconds:
        Gs.run(z, None)
        iters += 1
    wall = time.perf_counter() - t0
    return dict(img_per_s=iters * batch / wall, first_call_s=first, iters=iters,
                load=os.getloadavg()[0])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--nets', nargs='+', default=['v1', 'v2'], choices=['v1', 'v2'])
    p.add_argument('--resolution', type=int, default=256)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--rounds', type=int, default=2, help='off/on pairs per network (default: 2)')
    p.add_argument('--seconds', type=float, default=15.0, help='minimum timed seconds per child (default: 15)')
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print('RESULT ' + json.dumps(child(args.child, args.resolution, args.batch, args.seconds)))
        return 0

    print(f'Gs.run img/s at {args.resolution} px, batch {args.batch}, {os.cpu_count()} CPU(s); '
          f'TF_ENABLE_ONEDNN_OPTS=0 and =1 alternate in child processes')
    print(f'{"net":>4} {"round":>5} {"off img/s":>10} {"on img/s":>10} {"on/off":>7} {"load (off, on)":>16}')
    summary = {}
    for net in args.nets:
        ratios = []
        for rnd in range(args.rounds):
            res = {}
            for flag in ('0', '1'):
                env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=flag, TF_CPP_MIN_LOG_LEVEL='2')
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), '--child', net,
                                       '--resolution', str(args.resolution), '--batch', str(args.batch),
                                       '--seconds', str(args.seconds)], env=env, capture_output=True, text=True)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
                if proc.returncode != 0 or not lines:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                res[flag] = json.loads(lines[-1][7:])
            ratio = res['1']['img_per_s'] / res['0']['img_per_s']
            ratios.append(ratio)
            print(f'{net:>4} {rnd + 1:>5} {res["0"]["img_per_s"]:>10.3f} {res["1"]["img_per_s"]:>10.3f} '
                  f'{ratio:>7.2f} {res["0"]["load"]:>8.1f} {res["1"]["load"]:>7.1f}', flush=True)
        summary[net] = statistics.median(ratios)
    print('median on/off: ' + ', '.join(f'{k} {v:.2f}' for k, v in summary.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
