#!/usr/bin/env python3
"""Benchmark: how close to this CPU's float32 arithmetic limit generation and training already run.

Prints, all measured in the same run:

1. The practical float32 peak: GFLOP/s of a large `tf.linalg.matmul` (--matmul-n cubed) and of
   a plain `tf.nn.conv2d` NHWC (batch 8, 64x64, 128 -> 128 channels, 3x3, SAME), best of --reps
   after a warm-up call, each in a tf.function. Measured at the start and again at the end; the
   best of both is the peak (on a shared machine the lower one says how busy it was).
2. Gs.run of the official default v1 generator (G_style, random weights, NHWC) at --resolution,
   batch --batch, truncation_psi 1, randomize_noise True: FLOPs per image counted from the traced
   graph, img/s (best of --gen-reps timed calls after warm-up), GFLOP/s and share of the peak,
   and the share of the peak that 1.3x of the official code's 2.0 img/s would need.
3. One demo training step (D step with R1, G step), built as bench/profile_training_step.py
   builds it (its Bench class: training_options.DEMO_NETWORK, G_style / D_basic at 64x64,
   training.training_loop.TrainSteps, each step traced for its lod phase with
   tf2.layers.static_lod_phase), at the stable phases --resolutions (default 8 and 64 px),
   minibatch --minibatch: FLOPs of D_grads and G_grads, their times (best and median of
   --train-reps, each synchronised on its own) and that of the whole unsynchronised step, GFLOP/s
   and share of the peak.

How FLOPs are counted (2 per multiply-add): our own per-op count over the concrete function's
graph (`dense_flops`) for the ops that carry the arithmetic: Conv2D, Conv2DBackpropInput
(transposed convs: the fused upscale, and conv gradients), Conv2DBackpropFilter,
DepthwiseConv2dNative and its two gradients (the blur), MatMul and BatchMatMul, from the static
op shapes (taps on zero padding included, the convention of TensorFlow's profiler). Only the
ops a call runs are counted: those the function's outputs (and its stateful ops) depend on; the
rest is pruned when TensorFlow instantiates the function (a conv's gradient function emits both
the input and the filter gradient: in the G step D's filter gradients are dead, in the D step
R1's first-order ones are) and is printed as "dead". Elementwise work (bias, noise, activations,
normalisation, Adam) is left out of the rates, so the shares are slightly conservative. For
comparison the TensorFlow profiler's float_operation total (`tf.compat.v1.profiler`: top-level
ops only, dead ones included, elementwise ops and reductions added, no count for the depthwise
gradients) is printed next to it.

Checks of the count: for Gs, the hand count of bench/bench_generate.py (`generator_flops`, from
the layers' weight shapes). For the training step, the forward FLOPs of G and D alone: the G
step should come to 3 G + 2 D forwards (G forward, its input and filter gradients; D forward
and its input gradient), the D step with R1 to G + 9 D (G forward; D forward on fakes and on
reals, the filter and input gradients of both: 6 D; R1's gradient w.r.t. the reals: 1 D; its
gradient w.r.t. D's weights, a Conv2D and a filter gradient per conv: 2 D).

The graphs are traced for a static lod phase, so they hold no tf.cond: every counted op runs
exactly once per call. Gs.run's own graph reaches the lod-0 convolutions through tf.cond, whose
taken branch a static count cannot know; the count traces the same forward function (the one
Network._make_fn compiles) inside static_lod_phase(0), with a static batch.

On a shared machine the absolute rates are low; the peak is measured under the same load at the
start (used for the shares) and again at the end, so the shares are indicative, not exact.

Example:
  python bench/bench_flops.py                           # about 3-5 min on 2 idle cores
  python bench/bench_flops.py --skip-train --gen-reps 5
  python bench/bench_flops.py --resolutions 8,16,32,64 --train-reps 10
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)          # bench_generate, profile_training_step, timing
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from profile_training_step import DEMO_MINIBATCH   # noqa: E402  (no TensorFlow import)
from timing import best_seconds     # noqa: E402

# Issue 20's table; NVIDIA's code is not here: the official StyleGAN (TF 1) Gs.run, v1 at 256 px,
# batch 8, measured on this machine class. The target is 1.3x that.
OFFICIAL_IMG_PER_S = 2.0
TARGET_FACTOR = 1.3


# ---------------------------------------------------------------------------------------------
# The peak arithmetic rate of this CPU.

def peak_gflops(n: int, reps: int) -> dict:
    """GFLOP/s of an n^3 matmul and of a representative NHWC conv2d (see module docstring)."""
    import tensorflow as tf
    from bench_generate import matmul_gflops      # the matmul rate bench_generate.py measures
    # 128 channels at the demo's full 64x64, batch 8: the width of the demo networks' widest
    # layers before issue 20's recipe (64 now), kept so that the peak stays comparable.
    x = tf.random.normal([8, 64, 64, 128])
    w = tf.random.normal([3, 3, 128, 128])
    conv = tf.function(lambda x, w: tf.nn.conv2d(x, w, 1, 'SAME', data_format='NHWC'), autograph=False)
    t_conv = best_seconds(lambda: conv(x, w).numpy(), reps)
    return dict(matmul=matmul_gflops(n, reps),
                conv2d=2.0 * 8 * 64 * 64 * 128 * 128 * 9 / t_conv / 1e9)


# ---------------------------------------------------------------------------------------------
# FLOP counting.

def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _op_flops(op):
    """FLOPs (2 per multiply-add) of one dense op from its static shapes; None if not counted.
    Raises ValueError for a counted op type whose shapes are not fully known."""
    t = op.type
    if t not in DENSE_OPS:
        return None
    shapes = [i.shape for i in op.inputs] + [op.outputs[0].shape]
    if t in ('MatMul', 'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3'):
        a, out = op.inputs[0].shape, op.outputs[0].shape
        adj = op.get_attr('transpose_a' if t == 'MatMul' else 'adj_x')
        k = a[-2] if adj else a[-1]
        needed = [a, out]
    elif t == 'Conv2D':                         # x, w [kh, kw, cin, cout] -> y
        w, out = op.inputs[1].shape, op.outputs[0].shape
        needed = [w, out]
    elif t == 'Conv2DBackpropInput':            # sizes, w, dy -> dx: every dy element, kh*kw*cin taps
        w, out = op.inputs[1].shape, op.inputs[2].shape
        needed = [w, out]
    elif t == 'Conv2DBackpropFilter':           # x, sizes, dy -> dw: every dy element, kh*kw*cin taps
        w, out = op.outputs[0].shape, op.inputs[2].shape
        needed = [w, out]
    elif t == 'DepthwiseConv2dNative':          # x, w [kh, kw, c, 1] -> y: kh*kw taps per output
        w, out = op.inputs[1].shape, op.outputs[0].shape
        needed = [w, out]
    else:                                       # Depthwise...BackpropInput / ...BackpropFilter
        w = op.inputs[1].shape if t.endswith('Input') else op.outputs[0].shape
        out = op.inputs[2].shape
        needed = [w, out]
    if not all(s.is_fully_defined() for s in needed):
        raise ValueError(f'{op.name} ({t}): shapes not static: {shapes}')
    if t.startswith('Depthwise'):
        return 2 * _prod(out) * int(w[0]) * int(w[1])
    if t.startswith('Conv2D'):
        return 2 * _prod(out) * int(w[0]) * int(w[1]) * int(w[2])
    return 2 * _prod(out) * int(k)


DENSE_OPS = ('Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'DepthwiseConv2dNative',
             'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter',
             'MatMul', 'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3')
# Ops that run a nested function: counted once per call (PartitionedCall), or not at all when
# the count cannot know how often they run (cond branches, loop bodies): reported instead.
_CALL_OPS = ('PartitionedCall', 'StatefulPartitionedCall')
_UNCOUNTABLE = ('If', 'StatelessIf', 'While', 'StatelessWhile', 'Case', 'StatelessCase')


def live_ops(graph) -> set:
    """The ops a call of the function runs: those its outputs and control outputs (the stateful
    ops, kept by automatic control dependencies) depend on. The rest is pruned when the function
    is instantiated: e.g. the Conv2DBackpropFilter that a conv's gradient function emits for D's
    weights in the G step, where only G's variables are watched."""
    stack = [t.op for t in graph.outputs] + list(getattr(graph, 'control_outputs', []))
    seen = set()
    while stack:
        op = stack.pop()
        if op not in seen:
            seen.add(op)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return seen


def dense_flops(graph) -> dict:
    """{op type: FLOPs} of the dense ops a call of the (Func)Graph runs, nested function calls
    included. Key '_dead': FLOPs of dense ops in the graph that no output needs (pruned, not
    counted); '_uncounted': control-flow ops whose bodies were not counted (none expected: the
    graphs are traced for a static lod phase)."""
    totals = {'_dead': 0, '_uncounted': []}

    def walk(g):
        live = live_ops(g)
        for op in g.get_operations():
            f = _op_flops(op)
            if f is not None:
                if op in live:
                    totals[op.type] = totals.get(op.type, 0) + f
                else:
                    totals['_dead'] += f
            elif op not in live:
                continue
            elif op.type in _CALL_OPS:
                walk(g._functions[op.get_attr('f').name].graph)
            elif op.type in _UNCOUNTABLE:
                totals['_uncounted'].append(f'{op.type} {op.name}')
    walk(graph)
    return totals


def profiler_flops(graph) -> int:
    """The TensorFlow profiler's float_operation total of the graph (top level only; elementwise
    ops and reductions included)."""
    import tensorflow as tf
    opts = (tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build())
    level = tf.get_logger().level
    tf.get_logger().setLevel('ERROR')          # its TF1 shape helper warns that it is deprecated
    try:
        return tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops
    finally:
        tf.get_logger().setLevel(level)


def total(counts: dict) -> int:
    return sum(v for k, v in counts.items() if not k.startswith('_'))


def describe(counts: dict, per: int = 1) -> str:
    parts = sorted(((v, k) for k, v in counts.items() if not k.startswith('_')), reverse=True)
    return ', '.join(f'{k} {v / per / 1e9:.2f}' for v, k in parts)


# ---------------------------------------------------------------------------------------------
# (a) Gs.run.

def bench_generation(args, peak: float, conv_peak: float) -> None:
    import numpy as np
    import tensorflow as tf
    from bench_generate import generator_flops
    from tf2 import layers as L
    from tf2 import networks_stylegan
    from tf2.network import Network
    G = networks_stylegan.G_style(name='Gs', num_channels=3, resolution=args.resolution, label_size=0)
    Gs = Network(G)
    kwargs = dict(truncation_psi=1.0, randomize_noise=True)

    # The count: the forward function Gs.run compiles, traced with a static batch (its own
    # signature has batch None) for the lod-0 phase (its own graph reaches the same convolutions
    # through tf.cond, whose branches a static count cannot choose between).
    forward = Gs._compiled(None, None, kwargs).python_function
    specs = [tf.TensorSpec([args.batch] + list(s[1:]), tf.float32) for s in Gs.input_shapes]
    with L.static_lod_phase(0.0):
        graph = tf.function(forward, autograph=False).get_concrete_function(*specs).graph
    counts = dense_flops(graph)
    flops = total(counts) / args.batch
    prof = profiler_flops(graph) / args.batch
    hand = generator_flops(G)

    z = np.random.RandomState(0).randn(args.batch, Gs.input_shape[1]).astype(np.float32)
    t = time.perf_counter()
    Gs.run(z, None, **kwargs)                    # trace + first call, timed on its own
    first = time.perf_counter() - t
    sec = best_seconds(lambda: Gs.run(z, None, **kwargs), args.gen_reps, warmup=False)
    ips = args.batch / sec
    rate = ips * flops / 1e9

    print(f'\n(a) Gs.run, v1 G_style default kwargs, {args.resolution} px, batch {args.batch}, NHWC, '
          f'truncation_psi 1, randomize_noise True')
    print(f'  GFLOP per image, dense ops of the traced graph: {flops / 1e9:.3f} '
          f'({describe(counts, args.batch)})')
    print(f'  check: hand count (bench_generate.generator_flops, dense layers + blur): '
          f'{hand / 1e9:.3f}, ratio {flops / hand:.4f}; tf profiler float_operation (adds '
          f'elementwise): {prof / 1e9:.3f}')
    if counts['_uncounted'] or counts['_dead']:
        print(f'  WARNING: not counted: {counts["_uncounted"]}, dead {counts["_dead"] / 1e9:.3f} GFLOP')
    print(f'  first call {first:.1f} s; best of {args.gen_reps}: {sec:.2f} s per call = {ips:.3f} img/s '
          f'= {rate:.1f} GFLOP/s = {rate / peak:.1%} of the matmul peak ({rate / conv_peak:.1%} '
          f'of the conv2d one)')
    target = TARGET_FACTOR * OFFICIAL_IMG_PER_S
    need = target * flops / 1e9
    print(f'  target {TARGET_FACTOR} x {OFFICIAL_IMG_PER_S} img/s (official code, issue 20) = '
          f'{target:.2f} img/s needs {need:.1f} GFLOP/s = {need / peak:.1%} of the matmul peak '
          f'measured here ({need / conv_peak:.1%} of conv2d), {target / ips:.1f}x the measured img/s')


# ---------------------------------------------------------------------------------------------
# (b) Demo training step.

def forward_flops(b) -> tuple:
    """Dense FLOPs of one forward of G (training mode) and of D on a minibatch at the current lod
    phase: the units a hand estimate of the step's count is made of."""
    import tensorflow as tf
    from tf2 import layers as L
    n = b.minibatch
    with L.static_lod_phase(b.phase):
        g = tf.function(lambda z, c: b.G(z, c, is_training=True), autograph=False).get_concrete_function(
            tf.TensorSpec([n, b.steps.latent_size]), tf.TensorSpec(b.labels.shape)).graph
        d = tf.function(lambda x, c: b.D(x, c), autograph=False).get_concrete_function(
            tf.TensorSpec(b.reals.shape), tf.TensorSpec(b.reals_labels.shape)).graph
    return total(dense_flops(g)), total(dense_flops(d))


def bench_training(args, peak: float, conv_peak: float) -> None:
    from profile_training_step import Bench, _timed
    from training.dataset_tool import create_demo
    tmp = tempfile.TemporaryDirectory(prefix='bench_flops_')
    data = args.data
    if data is None:
        data = os.path.join(tmp.name, 'demo')
        create_demo(data, resolution=64, progress=False, log=lambda *_: None)
    b = Bench(data, args.minibatch, lambda *_: None)
    full_log2 = b.dataset.resolution_log2

    print(f'\n(b) demo training step (G_style / D_basic, DEMO_NETWORK, {b.dataset.resolution} px), '
          f'minibatch {args.minibatch}; ms: best / median of {args.train_reps}, each part '
          'synchronised on its own; "step" = all parts unsynchronised as the loop runs them')
    print(f'  {"res":>4} {"lod":>3} {"part":<8} {"GFLOP":>8} {"best ms":>9} {"median":>8} '
          f'{"GFLOP/s":>8} {"of matmul":>9} {"of conv":>8}  dense FLOPs by op type (GFLOP)')
    for res in [int(r) for r in args.resolutions.split(',')]:
        lod = full_log2 - (res.bit_length() - 1)
        b.set_lod(lod, args.minibatch)
        _timed(b.step)                             # traces this phase's graphs, first call
        # The graphs the calls above traced (same arguments, so no new trace).
        s = b.steps
        g_d = s.D_grads.get_concrete_function(b.reals, b.reals_labels, b.lod, phase=b.phase).graph
        g_g = s.G_grads.get_concrete_function(b.labels, b.lod, phase=b.phase).graph
        c_d, c_g = dense_flops(g_d), dense_flops(g_g)
        for c in (c_d, c_g):
            if c['_uncounted']:
                print(f'  WARNING: not counted: {c["_uncounted"]}')
        fwd_G, fwd_D = forward_flops(b)
        times = {p: [] for p in ('D_grads', 'G_grads', 'step')}
        for _ in range(args.train_reps):
            for part in Bench.PARTS:                # every part, as the loop's order needs
                sec, _ = _timed(getattr(b, part))
                if part in times:
                    times[part].append(sec)
            times['step'].append(_timed(b.step)[0])
        rows = (('D_grads', total(c_d), c_d), ('G_grads', total(c_g), c_g),
                ('step', total(c_d) + total(c_g), None))
        for part, flops, counts in rows:
            best, med = min(times[part]), statistics.median(times[part])
            rate = flops / best / 1e9
            detail = describe(counts) if counts else 'D_grads + G_grads (applies, Gs average: elementwise)'
            print(f'  {res:>4} {lod:>3} {part:<8} {flops / 1e9:>8.2f} {best * 1e3:>9.1f} {med * 1e3:>8.1f} '
                  f'{rate:>8.1f} {rate / peak:>9.1%} {rate / conv_peak:>8.1%}  {detail}', flush=True)
        print(f'  {"":>8} check: forward only G {fwd_G / 1e9:.3f}, D {fwd_D / 1e9:.3f} GFLOP (D_grads = G + '
              f'{(total(c_d) - fwd_G) / fwd_D:.2f} D, G_grads = {(total(c_g) - 2 * fwd_D) / fwd_G:.2f} G '
              '+ 2 D; expected 9 and 3); dead dense ops '
              f'in the graphs (pruned, not counted): D_grads {c_d["_dead"] / 1e9:.2f}, G_grads '
              f'{c_g["_dead"] / 1e9:.2f}; tf profiler float_operation (all ops, dead ones included, no '
              f'depthwise gradients): D_grads {profiler_flops(g_d) / 1e9:.2f}, G_grads '
              f'{profiler_flops(g_g) / 1e9:.2f}')
    tmp.cleanup()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--reps', type=int, default=10, help='timed calls of each peak kernel (default: 10)')
    p.add_argument('--matmul-n', type=int, default=2048, help='matmul size n (n x n @ n x n; default 2048)')
    p.add_argument('--resolution', type=int, default=256, help='Gs resolution (default: 256)')
    p.add_argument('--batch', type=int, default=8, help='Gs.run batch (default: 8)')
    p.add_argument('--gen-reps', type=int, default=3, help='timed Gs.run calls (default: 3)')
    p.add_argument('--resolutions', default='8,64', help='training stable phases in px (default: 8,64)')
    p.add_argument('--minibatch', type=int, default=DEMO_MINIBATCH, help=f'training minibatch (default: {DEMO_MINIBATCH}, the demo\'s)')
    p.add_argument('--train-reps', type=int, default=5, help='timed training repetitions (default: 5)')
    p.add_argument('--data', default=None, help='demo dataset folder (default: built into a temporary one)')
    p.add_argument('--skip-gen', action='store_true', help='skip (a), Gs.run')
    p.add_argument('--skip-train', action='store_true', help='skip (b), the training step')
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    import tensorflow as tf
    pk = peak_gflops(args.matmul_n, args.reps)
    print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPU(s), TF_ENABLE_ONEDNN_OPTS='
          f'{os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")}, load average {os.getloadavg()[0]:.1f}')
    print(f'Peak (start), float32, best of {args.reps}: matmul {args.matmul_n}^3 {pk["matmul"]:.1f} GFLOP/s, '
          'conv2d NHWC 8x64x64x128 -> 128, 3x3 '
          f'{pk["conv2d"]:.1f} GFLOP/s')
    # The shares use the start peak; the end one is printed beside it (a busy moment lowers it).
    peak, conv_peak = pk['matmul'], pk['conv2d']
    if not args.skip_gen:
        bench_generation(args, peak, conv_peak)
    if not args.skip_train:
        bench_training(args, peak, conv_peak)
    end = peak_gflops(args.matmul_n, args.reps)
    print(f'\nPeak (end): matmul {end["matmul"]:.1f}, conv2d {end["conv2d"]:.1f} GFLOP/s; best of both: '
          f'matmul {max(peak, end["matmul"]):.1f}, conv2d {max(conv_peak, end["conv2d"]):.1f} '
          f'(the shares above used the start values; a large spread means the machine was busy)')
    print(f'load average {os.getloadavg()[0]:.1f}; total {time.perf_counter() - t_start:.0f} s')
    return 0


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
