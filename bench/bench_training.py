#!/usr/bin/env python3
"""Training speed of the default StyleGAN (v1) networks on this machine, in sec/kimg.

For each resolution it builds the official default G_style / D_basic (fmap_base 8192, 512-d
latents) and times a few full training steps of training.training_loop (D step with R1 + Gs update,
then G step; lod 0, the official 1-GPU minibatch size), and, in the same run and on the same
minibatch, a baseline: one plain forward + backward pass of D alone (no R1, no G). The ratio says
how much a training step costs beyond D's own forward/backward.

At 256 px the official minibatch of 8 needs more than 20 GB of memory on the CPU at once, so it is
processed as rounds of --minibatch-gpu images (default 2 there) whose gradients are averaged: the
same update, as `run_training.py --minibatch-gpu` does. Both measurements use the same rounds.

Example:
  python bench/bench_training.py                    # 64 and 256 px, 1 timed step each (~15 min)
  python bench/bench_training.py --resolutions 64 --steps 3
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from timing import best_seconds      # noqa: E402  (bench/timing.py)

OFFICIAL_1GPU_MINIBATCH = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4, 1024: 4}
DEFAULT_MINIBATCH_GPU = {256: 2, 512: 1, 1024: 1}     # what fits in 24 GB of RAM; else the minibatch


def _peak_rss_gb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def bench_resolution(resolution: int, steps: int, minibatch: int, minibatch_gpu: int) -> dict:
    """Seconds per training step and per baseline step at `resolution`; see the module docstring."""
    import numpy as np
    import tensorflow as tf
    from tf2 import checkpoint, networks_stylegan
    from training import loss, optimizers
    from training import training_loop as tl

    tl.disable_fragile_graph_rewrite()
    G = networks_stylegan.G_style(num_channels=3, resolution=resolution, label_size=0)
    D = networks_stylegan.D_basic(num_channels=3, resolution=resolution, label_size=0)
    Gs = checkpoint.clone(G, 'Gs')
    G_opt = optimizers.make_optimizer(variables=G.trainable_variables)
    D_opt = optimizers.make_optimizer(variables=D.trainable_variables)
    steps_fn = tl.TrainSteps(G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating,
                             loss.D_logistic_simplegp, tf.random.Generator.from_seed(0), True,
                             [0, 255], [-1, 1])
    rounds = minibatch // minibatch_gpu
    reals_u8 = tf.constant(np.random.RandomState(0).randint(0, 256, [minibatch_gpu, 3, resolution, resolution]),
                           tf.uint8)
    labels = tf.zeros([minibatch_gpu, 0])
    lod, lrate, beta = tf.constant(0.0), tf.constant(0.001), tf.constant(0.99)

    def mean_grads(grads_fn):
        total = None
        for _ in range(rounds):
            grads = grads_fn()
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
        return [g / rounds for g in total]

    def train_step():
        grads = mean_grads(lambda: steps_fn.D_grads(steps_fn.prepare_reals(reals_u8, lod), labels, lod)[2])
        steps_fn.apply_D(grads, lrate)
        steps_fn.update_Gs(beta)
        grads = mean_grads(lambda: steps_fn.G_grads(labels, lod)[2])
        float(steps_fn.apply_G(grads, lrate))   # wait for the step to finish

    reals = steps_fn.prepare_reals(reals_u8, lod)

    @tf.function
    def d_forward_backward(x):
        with tf.GradientTape() as tape:
            score = tf.reduce_mean(D(x, labels))
        return tape.gradient(score, D.trainable_variables)

    def baseline_step():
        grads = mean_grads(lambda: d_forward_backward(reals))
        float(tf.reduce_sum(grads[0]))

    # One timed run of `steps` steps each, after a warm-up step that traces (bench/timing.py).
    train = best_seconds(train_step, 1, calls=steps)
    base = best_seconds(baseline_step, 1, calls=steps)
    return dict(resolution=resolution, minibatch=minibatch, train_sec=train, base_sec=base,
                peak_gb=_peak_rss_gb())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--resolutions', default='64,256', help='comma-separated resolutions (default: 64,256)')
    parser.add_argument('--steps', type=int, default=1, help='timed steps per measurement, after one warm-up (default: 1)')
    parser.add_argument('--minibatch', type=int, default=None,
                        help='images per step (default: the official 1-GPU preset: 32 at 64 px, 8 at 256 px)')
    parser.add_argument('--minibatch-gpu', type=int, default=None,
                        help='images per accumulation round (default: 2 at 256 px, else the whole minibatch)')
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
    print(f'{"res":>5} {"minibatch":>9} {"rounds":>6} {"train sec/kimg":>15} {"D fwd+bwd sec/kimg":>19} '
          f'{"ratio":>6} {"peak RAM GB":>11}')
    for res in resolutions:
        mb = args.minibatch or OFFICIAL_1GPU_MINIBATCH[res]
        mb_gpu = min(args.minibatch_gpu or DEFAULT_MINIBATCH_GPU.get(res, mb), mb)
        if mb % mb_gpu:
            parser.error(f'--minibatch-gpu {mb_gpu} must divide the minibatch {mb}')
        r = bench_resolution(res, args.steps, mb, mb_gpu)
        train_kimg = r['train_sec'] / mb * 1000
        base_kimg = r['base_sec'] / mb * 1000
        print(f'{res:>5} {mb:>9} {mb // mb_gpu:>6} {train_kimg:>15.1f} {base_kimg:>19.1f} '
              f'{train_kimg / base_kimg:>6.2f} {r["peak_gb"]:>11.1f}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
