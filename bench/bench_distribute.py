#!/usr/bin/env python3
"""Data-parallel training speed: sec/kimg on 1 and 2 replicas beside the sequential rounds.

In one process, on this machine's CPU split into 2 logical devices (`--cpu-devices 2` of
run_training.py), it times full StyleGAN (v1) training steps (D with R1, Gs update, G; lod 0) of
one minibatch of `--minibatch` images in rounds of `--minibatch-gpu`:

* baseline: the one-device loop (`TrainSteps`, rounds in Python, what runs without a strategy);
* 1 replica: `ShardedSteps` on MirroredStrategy(['/cpu:0']) (all rounds in one compiled step);
* 2 replicas: `ShardedSteps` on MirroredStrategy(['/cpu:0', '/cpu:1']), half the rounds each.

Ratios are against the baseline measured in the same run. Logical CPU devices share the same
cores, so 2 replicas can only gain where one step leaves cores idle; on GPUs each replica has its
own device.

Example:
  python bench/bench_distribute.py                      # 32 px, fmap_base 512, a few minutes
  python bench/bench_distribute.py --resolution 64 --steps 5
"""

import argparse
import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from timing import best_seconds      # noqa: E402  (bench/timing.py: warm-up, then best of --repeats)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--resolution', type=int, default=32)
    parser.add_argument('--fmap-base', type=int, default=512)
    parser.add_argument('--minibatch', type=int, default=16)
    parser.add_argument('--minibatch-gpu', type=int, default=4)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=2)
    args = parser.parse_args(argv)
    from training import distribute
    distribute.split_cpu(2)                # before TensorFlow starts

    import keras
    import numpy as np
    import tensorflow as tf
    from tf2 import checkpoint, networks_stylegan as nets
    from training import loss, optimizers
    from training import training_loop as tl

    tl.disable_fragile_graph_rewrite()
    res, mb, mbg = args.resolution, args.minibatch, args.minibatch_gpu
    shards = mb // mbg
    if shards * mbg != mb or shards % 2:
        raise SystemExit('bench_distribute: --minibatch must be an even number of --minibatch-gpu rounds')
    net = dict(num_channels=3, resolution=res, label_size=0, fmap_base=args.fmap_base)
    reals = tf.constant(np.random.RandomState(0).randint(0, 256, [mb, 3, res, res]), tf.uint8)
    labels = tf.zeros([mb, 0])
    lod, lrate, beta = tf.constant(0.0), tf.constant(0.001), tf.constant(0.99)
    D_loss = functools.partial(loss.D_logistic_simplegp, r1_gamma=10.0)

    def networks():
        keras.utils.set_random_seed(0)
        G = nets.G_style(name='G', **net)
        D = nets.D_basic(name='D', **net)
        return (G, D, checkpoint.clone(G, 'Gs'),
                optimizers.make_optimizer(variables=G.trainable_variables, opt_name='G_opt'),
                optimizers.make_optimizer(variables=D.trainable_variables, opt_name='D_opt'))

    # Baseline: the one-device loop's rounds.
    G, D, Gs, G_opt, D_opt = networks()
    seq = tl.TrainSteps(G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating, D_loss,
                        tf.random.Generator.from_seed(0), True, [0, 255], [-1, 1])

    def mean_grads(fn):
        total = None
        for r in range(shards):
            grads = fn(r)
            total = grads if total is None else [a + b for a, b in zip(total, grads)]
        return [g / shards for g in total]

    def sequential_step():
        grads = mean_grads(lambda r: seq.D_grads(seq.prepare_reals(reals[r * mbg:(r + 1) * mbg], lod),
                                                 labels[r * mbg:(r + 1) * mbg], lod)[2])
        seq.apply_D(grads, lrate)
        seq.update_Gs(beta)
        grads = mean_grads(lambda r: seq.G_grads(labels[r * mbg:(r + 1) * mbg], lod)[2])
        float(seq.apply_G(grads, lrate))

    def sharded_step_fn(replicas):
        strategy = tf.distribute.MirroredStrategy([f'/cpu:{i}' for i in range(replicas)])
        with strategy.scope():
            G, D, Gs, G_opt, D_opt = networks()
        steps = tl.ShardedSteps(strategy, G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating,
                                D_loss, True, [0, 255], [-1, 1])
        rounds = shards // replicas
        share = rounds * mbg

        def data(arrays):
            return strategy.experimental_distribute_values_from_function(lambda ctx: dict(
                {k: a[ctx.replica_id_in_sync_group * share:(ctx.replica_id_in_sync_group + 1) * share]
                 for k, a in arrays.items()},
                first=tf.constant(ctx.replica_id_in_sync_group * rounds, tf.int32)))
        kw = dict(rounds=rounds, mbg=mbg, slot_rounds=rounds, shards=shards)
        seed = tf.constant([1, 2], tf.int64)

        def step():
            steps.D_phase(data({'reals': reals, 'labels': labels}), lod, lrate, seed, seed, **kw)
            steps.update_Gs(beta)
            ok, _ = steps.G_phase(data({'labels': labels}), lod, lrate, seed, **kw)
            bool(ok)
        return step

    print(f'{res}x{res}, fmap_base {args.fmap_base}, minibatch {mb} in {shards} rounds of {mbg}; '
          f'best of {args.repeats} x {args.steps} steps')
    results = [('sequential rounds (no strategy)', best_seconds(sequential_step, args.repeats, calls=args.steps))]
    for replicas in (1, 2):
        results.append((f'{replicas} replica{"s" if replicas > 1 else ""} (MirroredStrategy)',
                        best_seconds(sharded_step_fn(replicas), args.repeats, calls=args.steps)))
    base = results[0][1]
    for name, sec in results:
        print(f'{name:<34s} {sec / mb * 1000:9.1f} sec/kimg   ratio {sec / base:5.2f}')


if __name__ == '__main__':
    main()
