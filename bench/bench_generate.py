#!/usr/bin/env python
"""Benchmark: images per second of Gs (StyleGAN v1, default kwargs, random weights).

Prints, for each resolution and batch size, images/s of ``Gs.run`` (the public official-API
path: tf.function-compiled, NHWC inside, NCHW numpy out), the generator's arithmetic rate in
GFLOP/s and the fraction of this machine's float32 matmul GFLOP/s measured in the same run.

FLOPs counted (per image, 2 per multiply-add): every convolution as executed (the fused
upscale, and the non-fused one from 32 px on, is a 4x4 stride-2 transposed conv: 16 taps per
input pixel), the blur (9 taps), the mapping and StyleMod dense layers and ToRGB. Elementwise
work (bias, noise, activation, normalisation) is not counted, so the fraction is slightly
conservative.

Example:
    python bench/bench_generate.py --resolutions 256 1024 --batches 1 8
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np            # noqa: E402
import tensorflow as tf       # noqa: E402

from tf2 import layers as tf2_layers         # noqa: E402
from tf2 import networks_stylegan as nets   # noqa: E402
from tf2.network import Network             # noqa: E402
from timing import best_seconds             # noqa: E402  (bench/timing.py)


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    """Best-of-``reps`` float32 ``n x n`` matmul rate of this machine, in GFLOP/s."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    f = tf.function(lambda x, y: tf.matmul(x, y))
    return 2.0 * n ** 3 / best_seconds(lambda: f(a, b).numpy(), reps) / 1e9


def generator_flops(G) -> float:
    """Multiply-add FLOPs (x2) of one Gs image at lod 0 (see module docstring)."""
    syn, mp = G.synthesis, G.mapping
    total = 0.0
    for dense in mp.dense_layers:
        total += 2.0 * np.prod(dense.weight.shape)

    def conv(layer, out_hw):
        k, _, cin, cout = layer.weight.shape
        strided = layer.resample == 'up' and (
            layer.fused or tf2_layers.strided_resample_pays(out_hw // 2, 'up'))
        if strided:   # a transposed conv, fused or not (tf2.layers.upscale2d_conv2d)
            return 2.0 * 16 * cin * cout * (out_hw // 2) ** 2
        return 2.0 * k * k * cin * cout * out_hw ** 2

    def styled(c):   # StyleMod dense of a layer with c channels
        return 2.0 * syn.input_shapes[0][2] * 2 * c if syn.cfg.use_styles else 0.0

    c4 = syn.conv4.weight.shape[3]
    total += conv(syn.conv4, 4) + 2 * styled(c4)
    for r, (up, _, c1, _) in syn.blocks.items():
        hw = 2 ** r
        cout = c1.weight.shape[3]
        total += conv(up, hw) + conv(c1, hw) + 2 * styled(cout)
        if syn.blur is not None:
            total += 2.0 * syn.blur.size * cout * hw * hw
    rgb_conv, _ = syn.torgb[syn.resolution_log2]
    total += conv(rgb_conv, syn.resolution)
    return total


def bench_one(Gs: Network, batch: int, seconds: float, min_iters: int) -> float:
    """Images per second of ``Gs.run`` at ``batch`` (after a warm-up call that traces)."""
    z = np.random.RandomState(0).randn(batch, Gs.input_shape[1]).astype(np.float32)
    Gs.run(z, None)                      # trace + warm up
    iters, t0 = 0, time.perf_counter()
    while iters < min_iters or time.perf_counter() - t0 < seconds:
        Gs.run(z, None)
        iters += 1
    return iters * batch / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description='Images/s of the StyleGAN v1 Gs (random weights, '
                                'default kwargs) next to this machine\'s matmul GFLOP/s.')
    p.add_argument('--resolutions', type=int, nargs='+', default=[256, 1024])
    p.add_argument('--batches', type=int, nargs='+', default=[1, 8])
    p.add_argument('--seconds', type=float, default=10.0,
                   help='minimum timing per configuration (default: %(default)s)')
    p.add_argument('--min-iters', type=int, default=2,
                   help='minimum timed calls per configuration (default: %(default)s)')
    args = p.parse_args(argv)

    peak = matmul_gflops()
    print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; float32 matmul 2048^3: '
          f'{peak:.1f} GFLOP/s (re-measured before each resolution; the fraction uses the '
          'best so far)')
    print(f'{"res":>5} {"batch":>5} {"img/s":>9} {"GFLOP/img":>10} {"GFLOP/s":>9} '
          f'{"of matmul":>9}')
    for res in args.resolutions:
        peak = max(peak, matmul_gflops())
        G = nets.G_style(name='Gs', num_channels=3, resolution=res, label_size=0)
        Gs = Network(G)
        flops = generator_flops(G)
        for batch in args.batches:
            ips = bench_one(Gs, batch, args.seconds, args.min_iters)
            rate = ips * flops / 1e9
            print(f'{res:>5} {batch:>5} {ips:>9.3f} {flops / 1e9:>10.2f} {rate:>9.1f} '
                  f'{rate / peak:>9.1%}', flush=True)
    matmul_after = matmul_gflops()
    print(f'matmul: best {max(peak, matmul_after):.1f} GFLOP/s, at the end {matmul_after:.1f} '
          'GFLOP/s (a large spread means the machine was busy)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
