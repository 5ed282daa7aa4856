#!/usr/bin/env python3
"""Profile of one StyleGAN (v1) demo training step: where the time goes.

It builds the demo networks (training_options.DEMO_NETWORK, G_style / D_basic, 64x64) and the
step functions of training.training_loop.TrainSteps exactly as `python run_training.py` does
(D step with R1 via D_logistic_simplegp, Adam apply, Gs moving average, G step, Adam apply), on
the demo dataset, and prints:

1. Start-up: importing TensorFlow, opening the dataset, building the networks and optimizers,
   then for every step function its Python trace (`get_concrete_function`) and its first call
   (graph optimisation by Grappler, executor set-up, one run) separately.
2. Per resolution (stable phases 8, 16, 32, 64 px by default): the first call at the new lod
   (does anything re-trace?), the tracing counts of every step function, and the steady-state
   time of each part of a step, each synchronised on its own (`.numpy()` of its result):
   input pipeline fetch, prepare_reals, D_grads, apply_D, update_Gs, G_grads, apply_G.
   "step" is the unsynchronised sequence of those parts (one sync at the end); "v1 step" is the
   step as training runs it on one device: the fetches, then one compiled call for
   --minibatches-per-call whole minibatches at full resolution, one below it
   (`TrainSteps.minibatch_v1`: D step, Gs average, G step each; the same ops), its time divided
   by the minibatches.
3. With --profile: a tf.profiler capture of --profile-steps such calls at each resolution, reduced
   to the time op kernels were in flight, by op type, and the share of the wall clock with 0, 1 or
   2+ kernels in flight (kernel durations are wall-clock: on a loaded machine they include time
   the thread was descheduled; the time between kernels is not idle CPU: the executor, Python and
   tf.data run there).
4. Graph sizes: ops in each traced function, nested functions (cond branches, gradients)
   included, and the average time per op that the smallest resolution's step implies.

Timings on a shared machine are noisy; compare the parts within one run (they are interleaved:
every repetition runs all parts in order).

The step functions are traced per lod phase as training traces them (tf2.layers.static_lod_phase);
--tf-cond traces the tf.cond structure instead (the code before, for comparison).

Example:
  python bench/profile_training_step.py --resolutions 8,64 --profile
  python bench/profile_training_step.py --resolutions 8,64 --tf-cond   # several minutes: tracing
                                                                        # the D step alone takes minutes
  python bench/profile_training_step.py --resolutions 8,16,32,64 --steps 20
  python bench/profile_training_step.py --tf-default-threads   # ops split over the cores (before)

Threads: as run_training.py runs the demo, one thread per op on a machine with at most 2 cores
(training.distribute.choose_intra_op_threads; TF_NUM_INTRAOP_THREADS overrides).
"""

import argparse
import collections
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

T_START = time.perf_counter()

from training.training_options import PRESETS   # noqa: E402  (no TensorFlow import)

DEMO_MINIBATCH = PRESETS['demo']['sched']['minibatch_base']
DEMO_MINIBATCH_DICT = PRESETS['demo']['sched']['minibatch_dict']
DEMO_PER_CALL = PRESETS['demo']['v1_minibatches_per_call']


def _sync(x):
    """Waits for a step function's result (a tensor, or a structure holding tensors)."""
    import tensorflow as tf
    for t in tf.nest.flatten(x):
        if hasattr(t, 'numpy'):
            t.numpy()
            return


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    _sync(out)
    return time.perf_counter() - t0, out


def count_graph_ops(concrete) -> int:
    """Ops of a concrete function's graph plus those of every function in its library."""
    gdef = concrete.graph.as_graph_def()
    return len(gdef.node) + sum(len(f.node_def) for f in gdef.library.function)


class Bench:
    """The demo's networks, optimizers, dataset and TrainSteps, built as training_loop builds them."""

    def __init__(self, data_dir: str, minibatch: int, log, tf_cond: bool = False, per_call: int = 1):
        t = time.perf_counter()
        import tensorflow as tf
        self.tf = tf
        log('import tensorflow', time.perf_counter() - t)
        from training import loss, optimizers, training_options
        from training import training_loop as tl
        from training.dataset import TFRecordDataset
        tl.disable_fragile_graph_rewrite()
        t = time.perf_counter()
        self.dataset = TFRecordDataset(data_dir, seed=1000)
        log('open dataset', time.perf_counter() - t)
        t = time.perf_counter()
        G_args = dict(func_name='G_style', **training_options.DEMO_NETWORK)
        D_args = dict(func_name='D_basic', fmap_base=training_options.DEMO_NETWORK['fmap_base'],
                      fmap_max=training_options.DEMO_NETWORK['fmap_max'])
        self.G, self.D, self.Gs = tl._build_networks(G_args, D_args, self.dataset)
        log('build G, D, Gs', time.perf_counter() - t)
        t = time.perf_counter()
        self.G_opt = optimizers.make_optimizer(variables=self.G.trainable_variables, opt_name='G_opt')
        self.D_opt = optimizers.make_optimizer(variables=self.D.trainable_variables, opt_name='D_opt')
        log('build optimizers', time.perf_counter() - t)
        rng = tf.random.Generator.from_seed(0)
        self.steps = tl.TrainSteps(self.G, self.D, self.Gs, self.G_opt, self.D_opt,
                                   loss.G_logistic_nonsaturating,
                                   lambda *a: loss.D_logistic_simplegp(*a, r1_gamma=10.0),
                                   rng, True, self.dataset.dynamic_range, [-1, 1])
        self.minibatch = minibatch
        self.per_call = per_call        # minibatches per compiled call of v1_step
        self.tf_cond = tf_cond          # True: the tf.cond structure of before the static phases
        self.lrate = tf.constant(0.003)
        self.beta = tf.constant(0.5 ** (minibatch / 1000.0))

    def set_lod(self, lod: float, minibatch: int):
        self.dataset.configure(minibatch, lod)
        self.lod = self.tf.constant(float(lod))
        from tf2 import layers as L
        self.phase = None if self.tf_cond else L.lod_phase_key(lod)     # as training_loop does
        self.labels = self.tf.zeros([minibatch, 0])

    # The parts of one step, in the loop's order (v1: D, Gs, G).
    def fetch(self):
        self.reals_u8, self.reals_labels = self.dataset.get_minibatch_tf()
        return self.reals_u8

    def prepare(self):
        self.reals = self.steps.prepare_reals(self.reals_u8, self.lod)
        return self.reals

    def D_grads(self):
        self.d_out = self.steps.D_grads(self.reals, self.reals_labels, self.lod, phase=self.phase)
        return self.d_out[0]

    def apply_D(self):
        return self.steps.apply_D(self.d_out[2], self.lrate)

    def update_Gs(self):
        self.steps.update_Gs(self.beta)
        return self.Gs.trainable_variables[0].value

    def G_grads(self):
        self.g_out = self.steps.G_grads(self.labels, self.lod, phase=self.phase)
        return self.g_out[0]

    def apply_G(self):
        return self.steps.apply_G(self.g_out[2], self.lrate)

    PARTS = ('fetch', 'prepare', 'D_grads', 'apply_D', 'update_Gs', 'G_grads', 'apply_G')

    def v1_step(self):
        """Steps as training runs them on one device (training_loop's run_minibatches_v1): the
        fetches, then one compiled call for `per_call` minibatches of D step, Gs average and G
        step, one round each."""
        tf = self.tf
        fetched = [self.dataset.get_minibatch_tf() for _ in range(self.per_call)]
        results = self.steps.minibatch_v1(
            tf.stack([[reals] for reals, _ in fetched]), tf.stack([[labels] for _, labels in fetched]),
            self.lod, self.lrate, self.lrate, self.beta,
            tf.stack([self.labels[None]] * self.per_call), None, D_reg=None, G_reg=None, phase=self.phase)
        return results[-1][0]

    def step(self):
        """The parts one call each, one after the other, no sync between them (the loop's three
        calls per minibatch before the one-call v1 step; see v1_step)."""
        for part in self.PARTS:
            out = getattr(self, part)()
        return out

    def trace_only(self, part):
        """Traces the tf.function of `part` for the current inputs without running it."""
        s = self.steps
        if part == 'prepare':
            s.prepare_reals.get_concrete_function(self.reals_u8, self.lod)
        elif part == 'D_grads':
            s.D_grads.get_concrete_function(self.reals, self.reals_labels, self.lod, phase=self.phase)
        elif part == 'apply_D':
            s.apply_D.get_concrete_function(self.d_out[2], self.lrate)
        elif part == 'update_Gs':
            s.update_Gs.get_concrete_function(self.beta)
        elif part == 'G_grads':
            s.G_grads.get_concrete_function(self.labels, self.lod, phase=self.phase)
        elif part == 'apply_G':
            s.apply_G.get_concrete_function(self.g_out[2], self.lrate)

    def functions(self):
        s = self.steps
        return dict(prepare_reals=s.prepare_reals, D_grads=s.D_grads, apply_D=s.apply_D,
                    update_Gs=s.update_Gs, G_grads=s.G_grads, apply_G=s.apply_G)

    def tracing_counts(self):
        return {k: f.experimental_get_tracing_count() for k, f in self.functions().items()}


def kernels_in_flight(intervals) -> dict:
    """{k: seconds during which exactly k of the (start, end) intervals (seconds) were open},
    from the first start to the last end."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    out = collections.Counter()
    level, last = 0, edges[0][0] if edges else 0.0
    for t, step in edges:
        out[level] += t - last
        level, last = level + step, t
    return dict(out)


def profile_op_types(bench, steps: int, logdir: str):
    """tf.profiler capture of `steps` v1 steps -> (wall seconds, {op type: busy seconds}, threads,
    {k: seconds with k op kernels in flight})."""
    tf = bench.tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    _sync(bench.v1_step())
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    for _ in range(steps):
        out = bench.v1_step()
    _sync(out)
    wall = time.perf_counter() - t0
    tf.profiler.experimental.stop()
    paths = sorted(glob.glob(os.path.join(logdir, 'plugins', 'profile', '*', '*.xplane.pb')))
    space = xplane_pb2.XSpace()
    with open(paths[-1], 'rb') as f:
        space.ParseFromString(f.read())
    busy = collections.Counter()
    threads, intervals = set(), []
    for plane in space.planes:
        if not plane.name.startswith('/host:CPU'):
            continue
        meta = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = meta.get(ev.metadata_id, '')
                # Op kernels are recorded as "<op name>:<op type>" on the executor threads.
                if ':' in name and not name.startswith(('Eager', 'Executor', 'Function', 'Iterator')) \
                        and '::' not in name and ' ' not in name:
                    busy[name.rsplit(':', 1)[1]] += ev.duration_ps * 1e-12
                    threads.add(line.name)
                    start = line.timestamp_ns * 1e-9 + ev.offset_ps * 1e-12
                    intervals.append((start, start + ev.duration_ps * 1e-12))
    return wall, busy, threads, kernels_in_flight(intervals)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default=None,
                        help='demo dataset folder (default: built from the embedded art into a temporary folder)')
    parser.add_argument('--resolutions', default='8,16,32,64', help='stable phases to time (default: 8,16,32,64)')
    parser.add_argument('--minibatch', type=int, default=DEMO_MINIBATCH, help=f'images per step at every resolution (default: {DEMO_MINIBATCH}, the demo\'s '
                             f'minibatch_base; the demo takes {DEMO_MINIBATCH_DICT or "no other"} by resolution)')
    parser.add_argument('--steps', type=int, default=10, help='timed repetitions per resolution (default: 10)')
    parser.add_argument('--profile', action='store_true', help='tf.profiler op-type breakdown at every resolution')
    parser.add_argument('--tf-cond', action='store_true',
                        help='trace the tf.cond structure (before static lod phases) instead of '
                             'one graph per lod phase as training does')
    parser.add_argument('--profile-steps', type=int, default=5)
    parser.add_argument('--minibatches-per-call', type=int, default=DEMO_PER_CALL,
                        help='minibatches per compiled call of the v1 step at full resolution, '
                             'one below it as in training (default: '
                             f'{DEMO_PER_CALL}, the demo preset\'s v1_minibatches_per_call)')
    parser.add_argument('--tf-default-threads', action='store_true',
                        help="TensorFlow's default intra-op threads instead of the demo preset's "
                             '(one thread per op on 2 cores, as run_training.py sets it)')
    args = parser.parse_args(argv)
    from training import distribute        # no TensorFlow import
    threads = None if args.tf_default_threads else distribute.choose_intra_op_threads(
        PRESETS['demo']['intra_op_threads'])
    if threads is not None:                # before TensorFlow starts, as run_training.py does
        os.environ['TF_NUM_INTRAOP_THREADS'] = str(threads)
    resolutions = [int(r) for r in args.resolutions.split(',')]

    startup = []

    def log(what, sec):
        startup.append((what, sec))

    tmp = tempfile.TemporaryDirectory(prefix='profile_training_step_')
    data = args.data
    if data is None:
        from training.dataset_tool import create_demo
        data = os.path.join(tmp.name, 'demo')
        t = time.perf_counter()
        create_demo(data, resolution=64, progress=False, log=lambda *_: None)
        log('build demo dataset (not in a normal run)', time.perf_counter() - t)
    b = Bench(data, args.minibatch, log, tf_cond=args.tf_cond, per_call=args.minibatches_per_call)
    tf = b.tf
    full_log2 = b.dataset.resolution_log2
    print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPU(s), oneDNN '
          f'{os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (off without AVX-512)")}, intra-op '
          f'threads {os.environ.get("TF_NUM_INTRAOP_THREADS", "default")}; '
          f'demo networks G_style/D_basic at {b.dataset.resolution}x{b.dataset.resolution}, '
          f'minibatch {args.minibatch}, {args.steps} timed repetitions per resolution, '
          f'{args.minibatches_per_call} minibatch(es) per compiled call of the v1 step at full '
          f'resolution (1 below it, as training runs them)')

    # 1. Start-up: first call of each part at the first resolution's lod.
    b.set_lod(full_log2 - int(resolutions[0]).bit_length() + 1, args.minibatch)
    fns = b.functions()
    for part in Bench.PARTS:
        fn = fns.get({'prepare': 'prepare_reals'}.get(part, part))
        if fn is not None:
            # Python tracing (autograph, Keras calls, tape.gradient) alone, then the first call
            # (graph optimisation by Grappler, executor set-up, one run).
            t = time.perf_counter()
            b.trace_only(part)
            log(f'trace {part} (Python: build the graph)', time.perf_counter() - t)
        sec, _ = _timed(getattr(b, part))
        log(f'first call {part} (optimise + run)' if fn is not None else f'first {part}', sec)
    log('= process start to first step done', time.perf_counter() - T_START)
    print('\nStart-up (seconds)')
    for what, sec in startup:
        print(f'  {what:<48s} {sec:8.2f}')

    # 2. Per resolution.
    print('\nSteady state per resolution (ms; each part synchronised on its own; median of repetitions)')
    head = f'{"res":>4} {"lod":>4} ' + ''.join(f'{p:>10}' for p in Bench.PARTS) + \
        f'{"sum":>9}{"step":>9}{"v1 step":>9}{"sec/kimg":>10}  first step at this lod / retraced'
    print(head)
    rows, profiles = {}, {}
    for res in resolutions:
        lod = full_log2 - (res.bit_length() - 1)
        b.set_lod(lod, args.minibatch)
        b.per_call = args.minibatches_per_call if lod == 0 else 1     # as training groups them
        before = b.tracing_counts()
        first, _ = _timed(b.step)
        retraced = [k for k, v in b.tracing_counts().items() if v != before[k]]
        _timed(b.v1_step)                  # its trace and first call at this lod
        times = {p: [] for p in Bench.PARTS + ('step', 'v1_step')}
        for _ in range(args.steps):
            for part in Bench.PARTS:
                times[part].append(_timed(getattr(b, part))[0])
            times['step'].append(_timed(b.step)[0])
            times['v1_step'].append(_timed(b.v1_step)[0] / b.per_call)     # per minibatch
        med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in times.items()}
        rows[res] = med
        print(f'{res:>4} {lod:>4} ' + ''.join(f'{med[p]:>10.1f}' for p in Bench.PARTS) +
              f'{sum(med[p] for p in Bench.PARTS):>9.1f}{med["step"]:>9.1f}{med["v1_step"]:>9.1f}'
              f'{med["v1_step"] / args.minibatch:>10.1f}  {first:6.2f} s / {", ".join(retraced) or "nothing"}',
              flush=True)
        if args.profile:
            profiles[res] = (b.per_call,) + profile_op_types(b, args.profile_steps,
                                                              os.path.join(tmp.name, f'prof{res}'))
    # 3. Op-level profile (tf.profiler), taken right after each resolution's timing.
    for res, (per_call, wall, busy, threads, in_flight) in profiles.items():
        total = sum(busy.values())
        n = args.profile_steps * per_call            # minibatches profiled at this resolution
        span = sum(in_flight.values())
        print(f'\ntf.profiler at {res} px, {n} v1 steps ({args.profile_steps} call(s) of {per_call}): wall {wall * 1e3 / n:.1f} ms/step; op kernels busy '
              f'{total * 1e3 / n:.1f} ms/step summed over {len(threads)} threads '
              f'({100 * total / (wall * os.cpu_count()):.0f} % of {os.cpu_count()} cores x wall)')
        print('  op kernels in flight, share of the time from the first kernel to the last: ' +
              ', '.join(f'{k if k < 2 else "2+"}: {100 * v / span:.0f} %' for k, v in
                        [(0, in_flight.get(0, 0.0)), (1, in_flight.get(1, 0.0)),
                         (2, sum(v for k, v in in_flight.items() if k >= 2))]))
        print(f'  {"op type":<34s} {"ms/step":>8} {"share":>6}')
        for op, sec in busy.most_common(12):
            print(f'  {op:<34s} {sec * 1e3 / n:>8.2f} {100 * sec / total:>5.1f}%')
    counts = b.tracing_counts()
    print('Tracing counts after all resolutions: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))

    # 4. Graph sizes.
    print('\nGraph sizes (ops incl. nested functions) of the concrete functions traced so far')
    step_ops = 0
    for name, fn in b.functions().items():
        concretes = fn._list_all_concrete_functions()
        sizes = [count_graph_ops(c) for c in concretes]
        step_ops += max(sizes)
        print(f'  {name:<14s} {len(concretes)} concrete: ' + ', '.join(str(n) for n in sizes))
    res0 = resolutions[0]
    print(f'  one step: at most {step_ops} ops (graph ops, untaken cond branches included); the {res0} px step '
          f'of {rows[res0]["step"]:.1f} ms averages >= {rows[res0]["step"] * 1e3 / step_ops:.1f} us per op')

    tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
