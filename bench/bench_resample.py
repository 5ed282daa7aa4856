#!/usr/bin/env python
"""Benchmark: the two forms of StyleGAN v1's non-fused resampling convolutions, in one run.

A non-fused ``Conv0_up`` (nearest x2, then 3x3 conv) and ``Conv1_down`` (3x3 conv, then 2x2
average) are each one linear map that a single stride-2 convolution with a 4x4 summed kernel also
computes (``tf2.layers.upscale2d_conv2d`` / ``conv2d_downscale2d``). This prints, for the layers
of the demo networks and of the official default generator, the time of the plain pair and of
the strided form (forward, and forward + gradients w.r.t. input and weight as in training), their
ratio (plain / strided: above 1, the strided form is faster), their largest difference relative
to the output's largest value, and which form ``tf2.layers.STRIDED_RESAMPLE_MIN_SIZE`` picks.

Example:
    python bench/bench_resample.py --reps 20
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from dnnlib.util import tensorflow_env_defaults   # noqa: E402  (oneDNN as the scripts run it)

tensorflow_env_defaults()

import numpy as np            # noqa: E402
import tensorflow as tf       # noqa: E402

from tf2 import layers as L                                 # noqa: E402
from tf2.networks_stylegan import _nf_v1                    # noqa: E402
from training.training_options import DEMO_NETWORK         # noqa: E402
from profile_training_step import DEMO_MINIBATCH            # noqa: E402  (bench/)
from timing import best_seconds                             # noqa: E402  (bench/timing.py)

DF = 'NHWC'
RESAMPLE_CONV = {'up': L.upscale2d_conv2d, 'down': L.conv2d_downscale2d}   # the layers' own forms


def layer_cases(nets):
    """(label, resample, batch, input size, in channels, out channels) of the networks' layers."""
    demo_nf = _nf_v1(DEMO_NETWORK['fmap_base'], 1.0, DEMO_NETWORK['fmap_max'])
    official_nf = _nf_v1(8192, 1.0, 512)
    cases = []
    for r in (4, 5, 6) if 'demo' in nets else ():     # demo G Conv0_up: 8 -> 16, 16 -> 32, 32 -> 64
        cases.append((f'demo G up to {2 ** r}', 'up', DEMO_MINIBATCH, 2 ** (r - 1), demo_nf(r - 2), demo_nf(r - 1)))
    for r in (6, 5, 4) if 'demo' in nets else ():     # demo D Conv1_down: 64 -> 32, 32 -> 16, 16 -> 8
        cases.append((f'demo D down from {2 ** r}', 'down', DEMO_MINIBATCH, 2 ** r, demo_nf(r - 1), demo_nf(r - 2)))
    for r in (4, 5, 6) if 'official' in nets else ():  # official default G (Gs.run, batch 8), non-fused below 128
        cases.append((f'official G up to {2 ** r}', 'up', 8, 2 ** (r - 1), official_nf(r - 2), official_nf(r - 1)))
    return cases


def with_gradients(f):
    @tf.function
    def run(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = f(x, w)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w])
    return run


def measure(resample, n, size, cin, cout, reps):
    rng = np.random.RandomState(0)
    x = tf.constant(rng.randn(n, size, size, cin).astype(np.float32))
    w = tf.constant((rng.randn(3, 3, cin, cout) / np.sqrt(9 * cin)).astype(np.float32))
    conv = RESAMPLE_CONV[resample]

    def plain(x, w):
        return conv(x, w, DF, strided=False)

    def strided(x, w):
        return conv(x, w, DF, strided=True)
    a, b = plain(x, w).numpy(), strided(x, w).numpy()
    rel = float(np.abs(a - b).max() / np.abs(a).max())
    times = []
    for f in (tf.function(plain), tf.function(strided), with_gradients(plain), with_gradients(strided)):
        times.append(best_seconds(lambda f=f: tf.nest.map_structure(lambda t: t.numpy(), f(x, w)), reps))
    return rel, times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reps', type=int, default=10, help='timed calls per form, best kept (default: %(default)s)')
    p.add_argument('--nets', nargs='+', choices=['demo', 'official'], default=['demo', 'official'],
                   help='whose layers: the demo G and D, the official default G (default: both)')
    args = p.parse_args()
    print(f'oneDNN {os.environ.get("TF_ENABLE_ONEDNN_OPTS")}; best of {args.reps}; ms; ratio = plain / strided; '
          f'strided from {L.STRIDED_RESAMPLE_MIN_SIZE} px')
    print(f'{"layer":<24s} {"shape N,H,Cin->Cout":<20s} {"fwd plain":>9s} {"strided":>8s} {"ratio":>6s} '
          f'{"+grad plain":>11s} {"strided":>8s} {"ratio":>6s} {"rel diff":>8s}  picked')
    for label, resample, n, size, cin, cout in layer_cases(args.nets):
        rel, t = measure(resample, n, size, cin, cout, args.reps)
        picked = 'strided' if L.strided_resample_pays(size, resample) else 'plain'
        print(f'{label:<24s} {f"{n},{size},{cin}->{cout}":<20s} {t[0] * 1e3:9.2f} {t[1] * 1e3:8.2f} '
              f'{t[0] / t[1]:6.2f} {t[2] * 1e3:11.2f} {t[3] * 1e3:8.2f} {t[2] / t[3]:6.2f} {rel:8.1e}  {picked}',
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
