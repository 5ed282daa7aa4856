#!/usr/bin/env python
"""Benchmark: seconds per projection step (editing/projector.py) of a StyleGAN2 Gs (config f,
random weights) at several resolutions, next to one plain synthesis forward + backward pass.

The baseline, measured in the same run on the same network, is a ``tf.function`` computing the
synthesis image of one dlatent and the gradient of a scalar of that image with respect to the
dlatent: the least work a projection step must do. A step adds the loss (pixel MSE, or
LPIPS-VGG16 at up to 256 px with random VGG weights: timing does not depend on the values), the
gradients of the noise maps, the noise regularisation, the Adam update and the noise
normalisation, plus Python overhead. The ratio step / baseline shows that overhead.

Example:
    python bench/bench_projector.py --resolutions 64 256 1024 --steps 5
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np            # noqa: E402
import tensorflow as tf       # noqa: E402

from editing import projector as P            # noqa: E402
from metrics import vgg16                       # noqa: E402
from tf2 import networks_stylegan2 as nets2     # noqa: E402
from tf2.network import Network                 # noqa: E402
from timing import best_seconds                 # noqa: E402  (bench/timing.py)


def baseline_seconds(Gs: Network, reps: int) -> float:
    """One synthesis forward + backward (gradient w.r.t. the dlatents), seconds."""
    model = Gs.components.synthesis.model
    _, rows, size = Gs.components.synthesis.input_shape
    dl = tf.Variable(np.random.RandomState(0).randn(1, rows, size).astype(np.float32))

    @tf.function(autograph=False)
    def fwd_bwd():
        with tf.GradientTape() as tape:
            images = model(dl, randomize_noise=False)
            loss = tf.reduce_sum(tf.square(images))
        return tape.gradient(loss, dl)

    return best_seconds(lambda: fwd_bwd().numpy(), reps)


def step_seconds(Gs: Network, loss: str, reps: int) -> float:
    """One projection step (W space), seconds."""
    lpips = vgg16.LPIPS.random(0) if loss == 'lpips' else None
    proj = P.Projector(Gs, 'w', loss, lpips, seed=0, num_steps=1000, dlatent_avg_samples=1000)
    res = Gs.output_shape[2]
    proj.start(np.random.RandomState(1).randint(0, 256, [3, res, res]).astype(np.uint8))
    return best_seconds(proj.step, reps)


def main(argv=None):
    p = argparse.ArgumentParser(description='Seconds per projection step against one synthesis '
                                'forward + backward pass (StyleGAN2 config f, random weights).')
    p.add_argument('--resolutions', type=int, nargs='+', default=[64, 256, 1024])
    p.add_argument('--losses', nargs='+', choices=P.LOSSES, default=['pixel', 'lpips'])
    p.add_argument('--steps', type=int, default=5, help='timed steps per configuration, best '
                   'taken (default: %(default)s)')
    args = p.parse_args(argv)
    print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; StyleGAN2 config f, random weights, '
          f'W space; best of {args.steps}')
    print(f'{"res":>5} {"loss":>6} {"fwd+bwd s":>10} {"step s":>9} {"ratio":>6} {"1000 steps":>11}')
    for res in args.resolutions:
        Gs = Network(nets2.G_main(name='Gs', num_channels=3, resolution=res, label_size=0))
        base = baseline_seconds(Gs, args.steps)
        for loss in args.losses:
            step = step_seconds(Gs, loss, args.steps)
            print(f'{res:>5} {loss:>6} {base:>10.3f} {step:>9.3f} {step / base:>6.2f} '
                  f'{step * 1000 / 60:>9.1f} min', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
