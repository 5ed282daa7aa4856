#!/usr/bin/env python3
"""Training speed of the default StyleGAN (v1) networks on this machine, in sec/kimg.

For each resolution it builds the official default G_style / D_basic (fmap_base 8192, 512-d
latents) and times a few full training steps of tf2.training_loop (D step with R1 + Gs update,
then G step; lod 0, the official 1-GPU minibatch size), and, in the same run and on the same
minibatch, a baseline: one plain forward + backward pass of D alone (no R1, no G). The ratio says
how much a training step costs beyond D's own forward/backward.

Example:
  python bench/bench_training.py                    # 64 and 256 px, 3 timed steps each
  python bench/bench_training.py --resolutions 64 --steps 5
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

OFFICIAL_1GPU_MINIBATCH = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4, 1024: 4}


def _timed(fn, steps: int) -> float:
    fn()                                   # trace, build, warm up
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def bench_resolution(resolution: int, steps: int, minibatch: int) -> dict:
    """Seconds per training step and per baseline step at `resolution`; see the module docstring."""
    import numpy as np
    import tensorflow as tf
    from tf2 import checkpoint, loss, networks_stylegan, optimizers
    from tf2 import training_loop as tl

    tl.disable_fragile_graph_rewrite()
    G = networks_stylegan.G_style(num_channels=3, resolution=resolution, label_size=0)
    D = networks_stylegan.D_basic(num_channels=3, resolution=resolution, label_size=0)
    Gs = checkpoint.clone(G, 'Gs')
    G_opt = optimizers.make_optimizer(variables=G.trainable_variables)
    D_opt = optimizers.make_optimizer(variables=D.trainable_variables)
    steps_fn = tl.TrainSteps(G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating,
                             loss.D_logistic_simplegp, tf.random.Generator.from_seed(0), True,
                             [0, 255], [-1, 1])
    reals_u8 = tf.constant(np.random.RandomState(0).randint(0, 256, [minibatch, 3, resolution, resolution]),
                           tf.uint8)
    labels = tf.zeros([minibatch, 0])
    lod, lrate, beta = tf.constant(0.0), tf.constant(0.001), tf.constant(0.99)

    def train_step():
        reals = steps_fn.prepare_reals(reals_u8, lod)
        _, _, grads = steps_fn.D_grads(reals, labels, lod)
        steps_fn.apply_D(grads, lrate)
        steps_fn.update_Gs(beta)
        value, _, grads = steps_fn.G_grads(labels, lod)
        steps_fn.apply_G(grads, lrate)
        float(value)                        # wait for the step to finish

    reals = steps_fn.prepare_reals(reals_u8, lod)

    @tf.function
    def d_forward_backward(x):
        with tf.GradientTape() as tape:
            score = tf.reduce_mean(D(x, labels))
        return tape.gradient(score, D.trainable_variables)

    def baseline_step():
        grads = d_forward_backward(reals)
        float(tf.reduce_sum(grads[0]))

    train = _timed(train_step, steps)
    base = _timed(baseline_step, steps)
    return dict(resolution=resolution, minibatch=minibatch, train_sec=train, base_sec=base)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--resolutions', default='64,256', help='comma-separated resolutions (default: 64,256)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps per measurement, after one warm-up (default: 3)')
    parser.add_argument('--minibatch', type=int, default=None,
                        help='images per step (default: the official 1-GPU preset: 32 at 64 px, 8 at 256 px)')
    args = parser.parse_args(argv)
    try:
        resolutions = [int(r) for r in args.resolutions.split(',')]
    except ValueError:
        parser.error(f'--resolutions {args.resolutions!r}: expected integers such as 64,256')
    if args.steps < 1:
        parser.error('--steps must be >= 1')
    import tensorflow as tf
    print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPU(s), GPUs: {len(tf.config.list_physical_devices("GPU"))}; '
          f'default v1 networks, lod 0, {args.steps} timed steps each')
    print(f'{"res":>5} {"minibatch":>9} {"train sec/kimg":>15} {"D fwd+bwd sec/kimg":>19} {"ratio":>6}')
    for res in resolutions:
        mb = args.minibatch or OFFICIAL_1GPU_MINIBATCH[res]
        r = bench_resolution(res, args.steps, mb)
        train_kimg = r['train_sec'] / mb * 1000
        base_kimg = r['base_sec'] / mb * 1000
        print(f'{res:>5} {mb:>9} {train_kimg:>15.1f} {base_kimg:>19.1f} {train_kimg / base_kimg:>6.2f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
