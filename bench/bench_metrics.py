#!/usr/bin/env python
"""Speed of the metrics on this machine: Inception feature extraction, and one fid1k run.

    python bench/bench_metrics.py                      # features + fid1k (about 20 min on 2 cores)
    python bench/bench_metrics.py --skip-fid           # feature extraction only

1. Images per second of feature extraction (default_1.pt, uint8 NCHW in, 2048-d out) for 64 px
   inputs (resized to 299 inside) and 299 px inputs, at the metrics' minibatch (16) and, as the
   baseline measured in the same run, one image per call.
2. fid1k of tests/data/official/sg1_r64.pkl against the demo dataset (588 reals): the first run
   (dataset statistics computed and cached) and the second (statistics from the cache).
   Without --data the demo dataset is built in a temporary folder with dataset_tool.py.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def images_per_second(net, images, minibatch, repeats):
    """The best of `repeats` timed passes: other jobs on a shared machine only slow passes down."""
    net.minibatch_size = minibatch
    net(images[:minibatch])                       # trace once
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        net(images)
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def bench_features(net, repeats):
    rng = np.random.RandomState(0)
    print(f'{"input":>8} {"minibatch":>9} {"img/s":>8} {"vs 1/call":>9}')
    for size in (64, 299):
        images = rng.randint(0, 256, (32, 3, size, size)).astype(np.uint8)
        base = images_per_second(net, images[:8], 1, repeats)
        fast = images_per_second(net, images, 16, repeats)
        print(f'{size:>6}px {1:>9} {base:>8.2f} {1:>9.2f}')
        print(f'{size:>6}px {16:>9} {fast:>8.2f} {fast / base:>9.2f}')
    net.minibatch_size = 16


def bench_fid(net, data, num):
    import tf2
    from metrics import metric_base
    Gs = tf2.load_network(os.path.join(REPO, 'tests', 'data', 'official', 'sg1_r64.pkl'))[2]
    with tempfile.TemporaryDirectory() as cache:
        name = f'fid{num // 1000}k' if num % 1000 == 0 else f'fid{num}'
        for label in ('cold cache', 'warm cache'):
            start = time.perf_counter()
            result = metric_base.compute(name, Gs=Gs, data=data, inception=net, cache_dir=cache,
                                         network='sg1_r64.pkl', seed_noise=True)
            seconds = time.perf_counter() - start
            print(f'{name} ({label}): {seconds:7.1f} s  fid={result["results"][name]:.2f}  '
                  f'fakes={result["num_images"]} reals={result["num_reals"]}', flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', help='dataset folder (default: the demo dataset, built in a temporary folder)')
    p.add_argument('--num', type=int, default=1000, help='generated images of the FID run (default 1000)')
    p.add_argument('--repeats', type=int, default=3, help='timed passes per setting; the best counts')
    p.add_argument('--skip-fid', action='store_true')
    args = p.parse_args()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from metrics.inception import InceptionFeatures
    start = time.perf_counter()
    net = InceptionFeatures()
    print(f'Inception weights: {net.weights}; loaded and built in {time.perf_counter() - start:.1f} s')
    bench_features(net, args.repeats)
    if args.skip_fid:
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = os.path.join(tmp, 'demo')
            subprocess.run([sys.executable, os.path.join(REPO, 'dataset_tool.py'), 'create_demo', data],
                           check=True, stdout=subprocess.DEVNULL)
        bench_fid(net, data, args.num)


if __name__ == '__main__':
    main()
