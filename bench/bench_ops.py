"""Speed of the compiled C++ kernels of tf2.ops against impl='ref' on CPU, measured in one run.

Prints, per op and StyleGAN2-like shape, the median time of the forward pass and of
forward + gradient (inside tf.function) for 'ref' and 'cpp', and the speedup ref / cpp.

Example:
    python bench/bench_ops.py --iters 20
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf2 import ops  # noqa: E402

K = [1, 3, 3, 1]


def cases(batch):
    """(name, input shape, function(x, impl), variables) for the ops as StyleGAN2 uses them.

    The variables (bias, conv weight) get gradients too, as in training.
    """
    rs = np.random.RandomState(0)
    bias = tf.Variable(rs.randn(128).astype(np.float32))
    w3 = tf.Variable(rs.randn(3, 3, 64, 64).astype(np.float32))
    return [
        ('fused_bias_act lrelu NCHW', [batch, 128, 64, 64],
         lambda x, i: ops.fused_bias_act(x, bias, act='lrelu', impl=i), [bias]),
        ('fused_bias_act lrelu NHWC', [batch, 64, 64, 128],
         lambda x, i: ops.fused_bias_act(x, bias, axis=-1, act='lrelu', impl=i), [bias]),
        ('upsample_2d NCHW (skip rgb)', [batch, 3, 128, 128],
         lambda x, i: ops.upsample_2d(x, K, impl=i), []),
        ('downsample_2d NCHW (skip rgb)', [batch, 3, 128, 128],
         lambda x, i: ops.downsample_2d(x, K, impl=i), []),
        ('upsample_conv_2d NHWC 3x3', [batch, 32, 32, 64],
         lambda x, i: ops.upsample_conv_2d(x, w3, K, data_format='NHWC', impl=i), [w3]),
        ('conv_downsample_2d NHWC 3x3', [batch, 64, 64, 64],
         lambda x, i: ops.conv_downsample_2d(x, w3, K, data_format='NHWC', impl=i), [w3]),
    ]


def median_times(fn_ref, fn_cpp, x, iters):
    """Median seconds of each function; calls alternate so background load hits both alike."""
    fn_ref(x), fn_cpp(x)  # trace and warm up
    times = ([], [])
    for _ in range(iters):
        for fn, out in ((fn_ref, times[0]), (fn_cpp, times[1])):
            start = time.perf_counter()
            fn(x).numpy()
            out.append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


def make_fns(op, variables, impl):
    @tf.function
    def forward(x):
        return op(x, impl)

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(op(x, impl)))
        grads = tape.gradient(loss, [x] + variables)
        return grads[0] + sum(tf.reduce_sum(g) for g in grads[1:])  # use every gradient
    return forward, forward_backward


def run(batch, iters):
    """Times every case for 'ref' and 'cpp' and prints one line per case."""
    print(f'{"op":32s} {"pass":9s} {"ref ms":>8s} {"cpp ms":>8s} {"speedup":>8s}')
    for name, shape, op, variables in cases(batch):
        x = tf.constant(np.random.RandomState(1).randn(*shape).astype(np.float32))
        fns = {impl: make_fns(op, variables, impl) for impl in ('ref', 'cpp')}
        for pass_index, pass_name in enumerate(['fwd', 'fwd+grad']):
            t_ref, t_cpp = median_times(fns['ref'][pass_index], fns['cpp'][pass_index], x, iters)
            print(f'{name:32s} {pass_name:9s} {t_ref * 1e3:8.2f} {t_cpp * 1e3:8.2f} '
                  f'{t_ref / t_cpp:7.2f}x', flush=True)


def main():
    parser = argparse.ArgumentParser(
        description='Speedup of the compiled C++ CPU kernels of tf2.ops over impl=ref '
                    '(both measured in this run; the first run builds the kernels).')
    parser.add_argument('--batch', type=int, default=4, help='minibatch size (default 4)')
    parser.add_argument('--iters', type=int, default=20,
                        help='timed repetitions per measurement; the median is shown (default 20)')
    args = parser.parse_args()
    print(f'TensorFlow {tf.__version__}, CPU threads: {os.cpu_count()}, batch {args.batch}')
    run(args.batch, args.iters)


if __name__ == '__main__':
    main()
