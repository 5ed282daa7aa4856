#!/usr/bin/env python
"""Benchmark: the cost of the numerics that make 1024 px outputs faithful, as ratios.

Two changes made the port exact on every image at every resolution and on every x86 CPU; this
measures both against the code they replaced, in the same process, alternating calls:

* v1 instance normalisation: ``spatial_moments`` (shifted data, W then H reductions) against
  the previous single float32 reduction over H and W (the ``baseline`` below, kept only here).
* v2 fused modulated convolution on a CPU: the scaled-activation form (what runs now) against
  one grouped convolution (what ran before). The grouped form runs only with oneDNN (and never
  its gradient), so that column is measured where ``TF_ENABLE_ONEDNN_OPTS=1`` and left out
  otherwise, with a note.

Prints ms per ``Gs`` forward pass (default-size networks, random weights) and new / old.

Example:
    python bench/bench_fidelity.py --resolution 256 --batch 4
    TF_ENABLE_ONEDNN_OPTS=1 python bench/bench_fidelity.py --resolution 256 --batch 4
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np            # noqa: E402
import tensorflow as tf       # noqa: E402

from tf2 import layers as L                       # noqa: E402
from tf2 import networks_stylegan as nets_v1      # noqa: E402
from tf2 import networks_stylegan2 as nets_v2     # noqa: E402


def baseline_spatial_moments(x, data_format):
    """The replaced numerics: one float32 reduction over H and W, no shift."""
    axes = list(L.spatial_axes(data_format))
    mean = tf.reduce_mean(x, axis=axes, keepdims=True)
    var = tf.reduce_mean(tf.math.squared_difference(x, mean), axis=axes, keepdims=True)
    return x, mean, var


def timed_pair(make_fn, patch_new, patch_old, z, iters):
    """Median ms of the new and the old variant, traced separately, calls alternated."""
    fns = {}
    for label, patch in (('new', patch_new), ('old', patch_old)):
        with patch():
            fns[label] = make_fn()
            fns[label](z).numpy()                         # trace (with the patch in force)
    times = {'new': [], 'old': []}
    for _ in range(iters):
        for label in ('new', 'old'):
            t0 = time.perf_counter()
            fns[label](z).numpy()
            times[label].append(time.perf_counter() - t0)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


class patched:
    """Context manager that sets ``obj.name = value`` and restores it."""

    def __init__(self, obj, name, value):
        self.obj, self.name, self.value = obj, name, value

    def __enter__(self):
        self.old = getattr(self.obj, self.name)
        setattr(self.obj, self.name, self.value)

    def __exit__(self, *exc):
        setattr(self.obj, self.name, self.old)


def bench_v1(resolution, batch, iters):
    G = nets_v1.G_style(name='Gs', num_channels=3, resolution=resolution, label_size=0)
    z = tf.constant(np.random.RandomState(0).randn(batch, 512), tf.float32)
    make = lambda: tf.function(lambda z: G(z, None, randomize_noise=False))   # noqa: E731
    return timed_pair(make, lambda: patched(L, 'spatial_moments', L.spatial_moments),
                      lambda: patched(L, 'spatial_moments', baseline_spatial_moments), z, iters)


def bench_v2(resolution, batch, iters):
    G = nets_v2.G_main(name='Gs', num_channels=3, resolution=resolution, label_size=0)
    z = tf.constant(np.random.RandomState(0).randn(batch, 512), tf.float32)
    make = lambda: tf.function(lambda z: G(z, None, randomize_noise=False))   # noqa: E731
    new = lambda: patched(nets_v2, 'grouped_conv_supported', lambda: False)   # noqa: E731
    old = lambda: patched(nets_v2, 'grouped_conv_supported', lambda: True)    # noqa: E731
    try:
        return timed_pair(make, new, old, z, iters)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
        return str(e).splitlines()[0][:100]


def main(argv=None):
    p = argparse.ArgumentParser(description='ms per Gs forward pass: the faithful numerics '
                                'against the code they replaced, as ratios.')
    p.add_argument('--resolution', type=int, default=256)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--iters', type=int, default=5, help='timed calls per variant (default: %(default)s)')
    args = p.parse_args(argv)
    onednn = os.environ.get('TF_ENABLE_ONEDNN_OPTS', '(unset: TensorFlow decides by CPU)')
    print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, TF_ENABLE_ONEDNN_OPTS={onednn}, '
          f'{args.resolution} px, batch {args.batch}, median of {args.iters}')
    v1 = bench_v1(args.resolution, args.batch, args.iters)
    print(f'v1 instance norm   new {v1["new"]:8.1f} ms   old {v1["old"]:8.1f} ms   '
          f'new/old {v1["new"] / v1["old"]:.3f}', flush=True)
    v2 = bench_v2(args.resolution, args.batch, args.iters)
    if isinstance(v2, str):
        print(f'v2 fused modconv   the old grouped convolution does not run here: {v2}')
    else:
        print(f'v2 fused modconv   new {v2["new"]:8.1f} ms   old {v2["old"]:8.1f} ms   '
              f'new/old {v2["new"] / v2["old"]:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
