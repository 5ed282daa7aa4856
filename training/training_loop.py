"""The StyleGAN (v1) training loop on TensorFlow 2 (spec 6.3-6.6).

What it does, in the official order: progressive growing by a fractional `lod` (schedule.py),
per step `D_repeats` D updates (each followed by the Gs moving-average update) then one G update,
`minibatch_repeats` steps per schedule evaluation, Adam state reset when floor(lod) or ceil(lod)
changes, updates skipped when a gradient is non-finite, ticks measured in kimg, image grids and
`(G, D, Gs)` snapshots in the official pickle format.

StyleGAN2 (spec 6.7) runs in the same loop with `loop_order='v2'`: per step the G update (and,
every `G_reg_interval` minibatches, a separate path-length regularisation update), the Gs
update, then the D update (and every `D_reg_interval` minibatches an R1 update); lazy
regularisation rescales Adam's lr and betas by interval/(interval+1). With
`lod_initial_resolution='full'` there is no progressive growing.

Additions of this port:
* Gradient accumulation: a minibatch is processed in rounds of `minibatch_gpu` images
  (schedule.py), so large minibatches fit in little memory. `num_gpus` devices are emulated by
  rounds on the one device the loop runs on (the update is the same). The rounds and the update
  of a phase (D, D reg, G, G reg) run inside one compiled call (`TrainSteps.D_step`/`G_step`;
  `ShardedSteps` under tf.distribute), traced once per lod phase without progressive growing's
  tf.cond (tf2.layers.static_lod_phase); losses and statistics are read once per tick. The
  optimizer applies and the Gs average are compiled functions of their own, traced once for all
  phases, and on one device the v1 step of the schedule's next phase is traced on a background
  thread while the current phase trains (PhaseTracer). With `v1_minibatches_per_call` k > 1, k
  v1 minibatches of a schedule evaluation at full resolution run in one compiled call (the demo:
  4), the same weights to the bit, faster where one core idles through G's step.
* Exact resume: every network snapshot `network-snapshot-<kimg>.pkl` has a sidecar
  `training-state-<kimg>.npz` with the optimizer state, the progress counters, the numpy and
  `tf.random.Generator` states and the grid latents. The sidecar is written first and names the
  SHA-256 of the pickle, both by temporary file + rename; a snapshot counts only when both files
  exist and match, so a kill at any moment leaves the previous complete snapshot as the newest.
  The dataset is re-seeded from (random_seed, kimg) at every network snapshot, so a resumed run
  sees the same data order as the uninterrupted one.
* A non-finite loss stops training with `TrainingDivergedError`; the snapshots on disk stay.
"""

import contextlib
import functools
import inspect
import hashlib
import io
import math
import os
import re
import threading
import time
from concurrent import futures
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import PIL.Image
import keras
import tensorflow as tf

import dnnlib
from dnnlib import legacy_pickle
from dnnlib.util import EasyDict, atomic_write, format_time
from tf2 import checkpoint, networks_stylegan
from tf2 import layers as tf2_layers
from tf2.network import Network
from training import distribute, finetune, optimizers
from training import loss as loss_lib
from training.dataset import TFRecordDataset
from training.schedule import normalize_sched_args, training_schedule
from training.resume_state import ResumeState
from training.snapshot_metrics import SnapshotMetrics
from training.stats import StatsCollector, truncate_stats_file

STATE_FORMAT = 1
SNAPSHOT_RE = re.compile(r'^network-snapshot-(\d+)\.pkl$')


# Before the layout of issue 15 the training modules lived in tf2/; keyword dicts written by
# earlier runs or user scripts may still name them so ('tf2.loss.D_logistic_r1').
_MOVED_MODULES = {f'tf2.{m}.': f'training.{m}.' for m in
                  ('loss', 'optimizers', 'finetune', 'augment', 'dataset', 'schedule', 'stats')}


def _obj_by_name(name: str) -> Any:
    """``dnnlib.util.get_obj_by_name`` that also accepts the pre-move ``tf2.<module>.`` names."""
    for old, new in _MOVED_MODULES.items():
        if name.startswith(old):
            name = new + name[len(old):]
    return dnnlib.util.get_obj_by_name(name)


def _call_by_name(func_name: str, /, *args: Any, **kwargs: Any) -> Any:
    return _obj_by_name(func_name)(*args, **kwargs)


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or Inf; training stopped and the snapshots on disk were kept."""


# ------------------------------------------------------------------------------------------------
# Real images (spec 6.4).

def process_reals(x: tf.Tensor, lod: tf.Tensor, mirror_augment: bool, rng: tf.random.Generator,
                  drange_data: Sequence[float], drange_net: Sequence[float],
                  resolution: int) -> tf.Tensor:
    """uint8 reals at the resolution of floor(lod) -> float network input at full resolution.

    Args:
        x: [N, C, h, w] uint8 (h = resolution / 2**floor(lod)).
        lod: scalar float32 level of detail.
        mirror_augment: flip each image along W with probability 0.5.
        rng: the training random stream.
        drange_data, drange_net: dynamic ranges of the data ([0, 255]) and the networks ([-1, 1]).
        resolution: full resolution R.

    Returns:
        [N, C, R, R] float32.
    """
    x = tf.cast(x, tf.float32)                                      # [N, C, h, w]
    scale = (drange_net[1] - drange_net[0]) / (drange_data[1] - drange_data[0])
    x = x * scale + (drange_net[0] - drange_data[0] * scale)
    if mirror_augment:
        flip = rng.uniform([tf.shape(x)[0], 1, 1, 1], 0.0, 1.0) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[3]), x)
    # Fade: blend with the 2x2-box-downscaled, nearest-upscaled image by the fractional lod.
    n, c, h, w = tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    y = tf.reduce_mean(tf.reshape(x, [n, c, h // 2, 2, w // 2, 2]), axis=[3, 5], keepdims=True)
    y = tf.reshape(tf.tile(y, [1, 1, 1, 2, 1, 2]), [n, c, h, w])
    x = x + (y - x) * (lod - tf.floor(lod))
    # Nearest-neighbour upscale to the full resolution: D always sees R x R.
    factor = resolution // h
    if factor > 1:
        x = tf.reshape(x, [n, c, h, 1, w, 1])
        x = tf.reshape(tf.tile(x, [1, 1, 1, factor, 1, factor]), [n, c, h * factor, w * factor])
    return x


# ------------------------------------------------------------------------------------------------
# Image grids (spec 6.6).

GRID_SIZES = {'1080p': (1920, 1080, 3, 2), '4k': (3840, 2160, 7, 4), '8k': (7680, 4320, 7, 4)}


def grid_shape(size: str, resolution: int) -> Tuple[int, int]:
    """(columns, rows) of a snapshot grid: a display name ('1080p', '4k', '8k') or 'COLSxROWS'."""
    if size in GRID_SIZES:
        width, height, min_w, min_h = GRID_SIZES[size]
        return int(np.clip(width // resolution, min_w, 32)), int(np.clip(height // resolution, min_h, 32))
    m = re.fullmatch(r'(\d+)x(\d+)', str(size))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ValueError(f'grid size {size!r}: expected 1080p, 4k, 8k or COLSxROWS such as 8x4')
    return int(m.group(1)), int(m.group(2))


def save_image_grid(images: np.ndarray, path: str, drange: Sequence[float], grid: Tuple[int, int]) -> None:
    """Writes NCHW images as one PNG grid (row-major), mapping `drange` to [0, 255], atomically."""
    gw, gh = grid
    n, c, h, w = images.shape
    canvas = np.zeros([c, gh * h, gw * w], np.float32)
    for i in range(min(n, gw * gh)):
        y, x = divmod(i, gw)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = images[i]
    canvas = (canvas - drange[0]) * (255.0 / (drange[1] - drange[0]))
    canvas = np.rint(canvas).clip(0, 255).astype(np.uint8).transpose(1, 2, 0)   # [H, W, C]
    image = PIL.Image.fromarray(canvas[:, :, 0] if c == 1 else canvas, 'L' if c == 1 else 'RGB')
    buf = io.BytesIO()
    image.save(buf, format='PNG')
    _write_atomic(path, buf.getvalue())


def _write_atomic(path: str, data: bytes) -> None:
    # Temporary name + rename: a killed process never leaves a partial file under `path`. No
    # fsync: it guards only against an OS crash, and it stalled a tick for up to a minute while
    # other processes kept the disk busy.
    with atomic_write(path) as f:
        f.write(data)


# ------------------------------------------------------------------------------------------------
# Optimizer state and snapshots.

def optimizer_arrays(opt) -> Dict[str, np.ndarray]:
    """Every optimizer variable (step counter, moments, learning rate) as numpy, keyed '<i>:<path>'."""
    return {f'{i:04d}:{v.path}': np.array(v.numpy()) for i, v in enumerate(opt.variables)}


def restore_optimizer_arrays(opt, arrays: Dict[str, np.ndarray], label: str) -> None:
    """Assigns arrays saved by `optimizer_arrays` back, checking count and shapes."""
    variables = list(opt.variables)
    arrays = optimizers.complete_saved_state(opt, arrays)
    keys = sorted(arrays)
    if len(keys) != len(variables):
        raise ValueError(f'{label}: {len(keys)} saved optimizer variables, the optimizer has '
                         f'{len(variables)} (different networks or optimizer?)')
    for key, var in zip(keys, variables):
        value = arrays[key]
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f'{label}: optimizer variable {key} has shape {value.shape}, '
                             f'expected {tuple(var.shape)}')
        var.assign(value)


def snapshot_paths(run_dir: str, kimg: int) -> Tuple[str, str]:
    """(network pickle, training-state sidecar) paths of the snapshot at `kimg`."""
    return (os.path.join(run_dir, f'network-snapshot-{kimg:06d}.pkl'),
            os.path.join(run_dir, f'training-state-{kimg:06d}.npz'))


def write_snapshot(run_dir: str, kimg: int, networks: Tuple, state: Dict[str, Any]) -> str:
    """Writes the (G, D, Gs) pickle and its training-state sidecar; returns the pickle path.

    The sidecar goes first and records the pickle's SHA-256, so `find_latest_snapshot` accepts a
    pair only when both renames happened.
    """
    pkl_path, state_path = snapshot_paths(run_dir, kimg)
    data = legacy_pickle.dumps(tuple(checkpoint.network_states(*networks)))
    state = dict(state, pkl_sha256=np.array(hashlib.sha256(data).hexdigest()),
                 state_format=np.array(STATE_FORMAT))
    buf = io.BytesIO()
    np.savez(buf, **state)
    _write_atomic(state_path, buf.getvalue())
    _write_atomic(pkl_path, data)
    return pkl_path


def _read_state(state_path: str, pkl_path: str) -> Optional[Dict[str, np.ndarray]]:
    try:
        with np.load(state_path, allow_pickle=False) as f:
            state = {k: f[k] for k in f.files}
        with open(pkl_path, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except (OSError, ValueError, KeyError):
        return None
    if str(state.get('pkl_sha256')) != digest or int(state.get('state_format', -1)) != STATE_FORMAT:
        return None
    return state


def find_latest_snapshot(run_dir: str) -> Optional[Tuple[str, Dict[str, np.ndarray]]]:
    """The newest complete (pickle, sidecar) pair in `run_dir` as (pkl path, state), or None."""
    found = []
    for name in os.listdir(run_dir):
        m = SNAPSHOT_RE.match(name)
        if m:
            found.append(int(m.group(1)))
    for kimg in sorted(found, reverse=True):
        pkl_path, state_path = snapshot_paths(run_dir, kimg)
        state = _read_state(state_path, pkl_path) if os.path.isfile(state_path) else None
        if state is not None:
            return pkl_path, state
    return None


# ------------------------------------------------------------------------------------------------
# Train steps (tf.function; the big ones are traced once per minibatch_gpu size and lod phase).
#
# `phase` (tf2.layers.lod_phase_key of the schedule's lod, a Python float) makes each step trace
# the networks with progressive growing's branches chosen in Python: one small cond-free graph
# per phase (fading into resolution R, or stable at R) instead of one graph holding every
# resolution in a tf.cond nest, whose R1 double gradient took minutes to trace.

def _zeros_for_none(grads, variables):
    """Zero gradients for variables a loss does not reach (e.g. ToRGB biases in the path-length
    regulariser), as tflib.Optimizer did, so that every apply sees a full gradient list."""
    return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]


def run_rounds(body: Callable, rounds: int, carry, sum_dtype=tf.float32):
    """Runs ``body(r, carry) -> (grads, out, carry)`` for r < rounds inside the traced step.

    Returns the gradients summed in round order (in ``sum_dtype``), ``out`` stacked over the
    rounds (a leading [rounds] axis) and the last carry. Round 0 is traced on its own (it fixes the
    structure of ``out`` for the TensorArrays); rounds 1.. run in a tf.while_loop, so the graph
    holds at most two copies of the round however many rounds there are.
    """
    grads, out, carry = body(tf.constant(0), carry)
    grads = [tf.cast(g, sum_dtype) for g in grads]
    if rounds == 1:
        return grads, tf.nest.map_structure(lambda t: t[None], out), carry
    arrays = tf.nest.map_structure(
        lambda t: tf.TensorArray(t.dtype, size=rounds, element_shape=t.shape).write(0, t), out)

    def step(r, grads, arrays, carry):
        g, o, carry = body(r, carry)
        grads = [a + tf.cast(b, sum_dtype) for a, b in zip(grads, g)]
        arrays = tf.nest.map_structure(lambda a, t: a.write(r, t), arrays, o)
        return r + 1, grads, arrays, carry

    _, grads, arrays, carry = tf.while_loop(lambda r, *_: r < rounds, step,
                                            (tf.constant(1), grads, arrays, carry))
    return grads, tf.nest.map_structure(lambda a: a.stack(), arrays), carry


class _Steps:
    """What both step objects hold and do alike: the networks, optimizers, losses, the reals'
    processing options, the trained variables, lod assignment and the Gs moving average."""

    def __init__(self, G, D, Gs, G_opt, D_opt, G_loss: Callable, D_loss: Callable,
                 mirror_augment: bool, drange_data, drange_net, D_augment: Optional[Callable],
                 G_vars: Optional[list], D_vars: Optional[list]):
        self.G, self.D, self.Gs = G, D, Gs
        self.G_opt, self.D_opt = G_opt, D_opt
        self.G_loss, self.D_loss = G_loss, D_loss
        self.mirror_augment = bool(mirror_augment)
        self.drange_data, self.drange_net = list(drange_data), list(drange_net)
        self.D_augment = D_augment
        self.G_vars = list(G.trainable_variables if G_vars is None else G_vars)
        self.D_vars = list(D.trainable_variables if D_vars is None else D_vars)
        self.latent_size = latent_size_of(G)
        self.resolution = int(networks_stylegan.resolved_kwargs(D)['resolution'])
        self.update_Gs = tf.function(self._update_Gs)

    def _set_lod(self, lod):
        # StyleGAN2 config e/f: only G_main has a lod variable (unused); D_stylegan2 has none.
        for net in (self.G, self.D):
            if getattr(net, 'lod', None) is not None:
                net.lod.assign(lod)

    @staticmethod
    def _finite(grads) -> tf.Tensor:
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(g)) for g in grads]))

    def _update_Gs(self, beta):
        checkpoint.setup_as_moving_average_of(self.Gs, self.G, beta)


class TrainSteps(_Steps):
    """The compiled D step, G step, optimizer applies and Gs update of one training run.

    `D_step` / `G_step` are what the loop calls: one compiled call per phase of a minibatch, the
    minibatch_gpu rounds inside it, each round exactly `D_grads` / `G_grads` (which stay callable
    on their own: the readable per-round pieces), the gradients summed in round order in float32
    and averaged, then applied. The training stream `rng` is drawn in the same order as when the
    rounds ran one call each (tested); the values agree with that to float32 rounding (a compiled
    graph fuses kernels its own way), so a run resumed from an older version's snapshot continues
    correctly but not bit for bit as the older version would have.

    Args:
        G, D, Gs: Keras models (networks_stylegan).
        G_opt, D_opt: built Keras optimizers.
        G_loss, D_loss: loss functions (loss.py signature) with their extra kwargs bound.
        rng: the training random stream (latents, mirror flips, G's noise and style mixing).
        mirror_augment, drange_data, drange_net: see process_reals.
        D_augment: None, or a callable applied to every image batch D sees (reals and fakes).
        G_vars, D_vars: the variables the optimizers train (fine-tuning freezes some, see
            training/finetune.py). None: all trainable variables of G / D.
    """

    def __init__(self, G, D, Gs, G_opt, D_opt, G_loss: Callable, D_loss: Callable,
                 rng: tf.random.Generator, mirror_augment: bool, drange_data, drange_net,
                 D_augment: Optional[Callable] = None, G_vars: Optional[list] = None,
                 D_vars: Optional[list] = None):
        super().__init__(G, D, Gs, G_opt, D_opt, G_loss, D_loss, mirror_augment, drange_data,
                         drange_net, D_augment, G_vars, D_vars)
        self.rng = rng
        self.G_loss_takes_pl_labels = 'pl_labels' in inspect.signature(G_loss).parameters
        self.prepare_reals = tf.function(self._prepare_reals)
        self.D_grads = tf.function(self._D_grads)
        self.G_grads = tf.function(self._G_grads)
        self.apply_D = tf.function(self._apply_D)
        self.apply_G = tf.function(self._apply_G)
        self.D_step = tf.function(self._D_step)
        self.G_step = tf.function(self._G_step)
        self._minibatch_v1_by_phase = {}        # lod phase -> tf.function (see minibatch_v1)
        self._minibatch_v1_lock = threading.Lock()

    def _G_train(self, latents, labels, **kwargs):
        # kwargs: e.g. return_dlatents=True for StyleGAN2's path-length regulariser.
        return self.G(latents, labels, is_training=True, rng=self.rng, **kwargs)

    def _D_train(self, images, labels):
        if self.D_augment is not None:
            images = self.D_augment(images)
        return self.D(images, labels)

    def _prepare_reals(self, reals, lod):
        # Separate from _D_grads so that the big function sees [n, C, R, R] at every lod and is
        # traced once per minibatch size, not once per resolution.
        return process_reals(reals, lod, self.mirror_augment, self.rng, self.drange_data,
                             self.drange_net, self.resolution)

    def _D_grads(self, reals, labels, lod, reg=None, scale=1.0, phase=None):
        # reals [n, C, R, R] float (prepare_reals), labels [n, L], lod scalar, phase see above.
        # reg: None (loss without a `reg` argument, or its default) or 'none' / 'only' / 'both'
        # (loss.py StyleGAN2 losses); the gradient is of scale * mean(loss) (lazy regularisation
        # multiplies the regulariser by its interval). Python values: one trace per combination.
        self._set_lod(lod)
        latents = self.rng.normal([tf.shape(reals)[0], self.latent_size])
        variables = self.D_vars
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in variables])   # the tf.Variables inside the Keras variables
            with tf2_layers.static_lod_phase(phase):
                loss, stats = self.D_loss(self._G_train, self._D_train, latents, reals, labels,
                                          **({} if reg is None else {'reg': reg}))
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss * scale if scale != 1.0 else loss, variables)
        return loss, stats, _zeros_for_none(grads, variables)

    def _G_grads(self, labels, *args, reg=None, scale=1.0, phase=None):
        # labels [n, L], then pl_labels [n, L] if the loss takes them, then lod (scalar); reg and
        # scale as in _D_grads.
        *pl_labels, lod = args
        extra = {} if reg is None else {'reg': reg}
        if pl_labels:
            extra['pl_labels'] = pl_labels[0]
        self._set_lod(lod)
        latents = self.rng.normal([tf.shape(labels)[0], self.latent_size])
        variables = self.G_vars
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in variables])   # the tf.Variables inside the Keras variables
            with tf2_layers.static_lod_phase(phase):
                loss, stats = self.G_loss(self._G_train, self._D_train, latents, labels, **extra)
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss * scale if scale != 1.0 else loss, variables)
        return loss, stats, _zeros_for_none(grads, variables)

    def _apply(self, opt, variables, grads, lrate):
        # Skip the whole update when a gradient is non-finite (tflib.Optimizer did the same).
        ok = self._finite(grads)
        if ok:
            opt.learning_rate.assign(lrate)
            opt.apply_gradients(zip(grads, variables))
        return ok

    def _apply_D(self, grads, lrate):
        return self._apply(self.D_opt, self.D_vars, grads, lrate)

    def _apply_G(self, grads, lrate):
        return self._apply(self.G_opt, self.G_vars, grads, lrate)

    @staticmethod
    def _mean(grads, rounds: int):
        return grads if rounds == 1 else [g / rounds for g in grads]

    def _D_step(self, reals, labels, lod, lrate, reg=None, scale=1.0, phase=None, repeat=0):
        """One D update: its rounds, then apply_D. Returns (ok, out).

        reals, labels: uint8 [rounds, n, C, h, w] and [rounds, n, L], one fetched minibatch per
            round; or, with repeat=k, processed reals [n, C, R, R] and labels [n, L] that each of
            k rounds reads again (the official D_reg_op reads the last D minibatch again).
        out: 'loss' [rounds], 'stats' {name: [rounds, ...]}, 'reals' the processed reals.
        """
        rounds = repeat or int(reals.shape[0])

        def body(r, carry):
            x = reals if repeat else self._prepare_reals(reals[r], lod)
            loss, stats, grads = self._D_grads(x, labels if repeat else labels[r], lod, reg, scale,
                                               phase)
            return grads, dict(loss=loss, stats=stats, reals=x), carry

        grads, out, _ = run_rounds(body, rounds, tf.zeros([0]))
        # The apply is its own compiled function, traced once: it is the same for every lod phase
        # and regulariser (see apply_D).
        return self.apply_D(self._mean(grads, rounds), lrate), out

    def _G_step(self, labels, lod, lrate, pl_labels=None, reg=None, scale=1.0, phase=None):
        """One G update: its rounds (labels [rounds, n, L], pl_labels likewise when the loss
        takes them), then apply_G. Returns (ok, out) as _D_step."""
        rounds = int(labels.shape[0])

        def body(r, carry):
            args = (labels[r],) + (() if pl_labels is None else (pl_labels[r],))
            loss, stats, grads = self._G_grads(*args, lod, reg=reg, scale=scale, phase=phase)
            return grads, dict(loss=loss, stats=stats), carry

        grads, out, _ = run_rounds(body, rounds, tf.zeros([0]))
        return self.apply_G(self._mean(grads, rounds), lrate), out

    def minibatch_v1(self, *args, phase=None, **kwargs):
        """_minibatch_v1 compiled: one tf.function per lod phase. A tf.function holds its lock
        while it traces, so with one per phase the next phase can be traced on another thread
        (trace_minibatch_v1, training's PhaseTracer) while this one runs."""
        return self._minibatch_v1_function(phase)(*args, phase=phase, **kwargs)

    def trace_minibatch_v1(self, specs, phase=None, warm_up: bool = False, **kwargs) -> bool:
        """Traces minibatch_v1 for the tf.TensorSpecs `specs` (its positional arguments) without
        running it; a later call with tensors of those specs runs the trace.

        TensorFlow optimises and instantiates a traced graph at its first call (Grappler, the
        executor: seconds for several minibatches per call, growing faster than the graph).
        With `warm_up` the trace is also run once, here, on zero-filled stand-ins of every
        variable it captures and zero inputs, so that the loop's first call finds it
        instantiated; the real variables are not touched. Returns whether it was run (False
        when a captured resource is not one of the step's variables)."""
        concrete = self._minibatch_v1_function(phase).get_concrete_function(*specs, phase=phase,
                                                                            **kwargs)
        return warm_up and self._run_on_stand_ins(concrete, specs)

    def _run_on_stand_ins(self, concrete, specs) -> bool:
        # The instantiated graph is cached by function, not by the resources passed in: captured
        # variables are inputs of the call, so the same graph runs on other variables of the
        # same dtypes and shapes (ConcreteFunction._call_flat, the call with explicit captures).
        own = {}
        for v in (self.G.variables + self.D.variables + self.Gs.variables + self.G_opt.variables
                  + self.D_opt.variables + [self.rng.state]):
            v = v.value if isinstance(v, keras.Variable) else v
            own[id(v.handle)] = v
        stand_ins = []
        for captured in concrete.captured_inputs:
            if captured.dtype != tf.resource:
                stand_ins.append(captured)              # a constant: read only
            elif id(captured) in own:
                v = own[id(captured)]
                stand_ins.append(tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False).handle)
            else:
                return False
        inputs = [tf.zeros(spec.shape, spec.dtype) for spec in specs if spec is not None]
        concrete._call_flat(inputs, stand_ins)
        return True

    def minibatch_v1_tracing_count(self) -> int:
        return sum(f.experimental_get_tracing_count() for f in self._minibatch_v1_by_phase.values())

    def _minibatch_v1_function(self, phase):
        with self._minibatch_v1_lock:
            if phase not in self._minibatch_v1_by_phase:
                self._minibatch_v1_by_phase[phase] = tf.function(self._minibatch_v1)
            return self._minibatch_v1_by_phase[phase]

    def _minibatch_v1(self, reals, labels, lod, D_lrate, G_lrate, Gs_beta, G_labels,
                      G_pl_labels=None, D_reg=None, G_reg=None, phase=None):
        """k whole v1 minibatches in one compiled call, k = reals.shape[0]: for each, D step, Gs
        average, G step (step_phases' order with D_repeats 1 and no lazy regulariser due). The
        same work, in the same order (automatic control dependencies order the variable and
        random-stream accesses as written), as D_step, update_Gs and G_step called one after the
        other; one call instead of three saves their dispatch and lets the executor overlap
        independent parts (the Gs average and G's forward pass with D's Adam apply: about 2 ms of
        an 8x8 demo step), and several minibatches in one call let minibatch i+1's D pass on the
        reals, which needs only D's weights after update i, run beside G step i, whose chain of
        layers leaves a core idle (issue 20; v1_minibatches_per_call).

        reals, labels, G_labels (and G_pl_labels): [k, rounds, n, ...], minibatch by minibatch.
        Returns a list of k (D ok, D out without 'reals', G ok, G out)."""
        results = []
        for i in range(int(reals.shape[0])):
            with _minibatch_scope(i):
                D_ok, D_out = self._D_step(reals[i], labels[i], lod, D_lrate, reg=D_reg, phase=phase)
                D_out.pop('reals')
                self.update_Gs(Gs_beta)
                G_ok, G_out = self._G_step(G_labels[i], lod, G_lrate, reg=G_reg, phase=phase,
                                           pl_labels=None if G_pl_labels is None else G_pl_labels[i])
            results.append((D_ok, D_out, G_ok, G_out))
        return results


def _minibatch_scope(i: int):
    """Minibatch i > 0 of a compiled call gets its own name scope. Grappler orders the inputs of
    the additions it rewrites (the gradients of a weight used several times) by op name, so
    without the scope the later minibatches' op names (D_7, D_9, D_11, ...) would sum some
    gradients in another order than one minibatch per call does (D_1, D_3, D_5), and the weights
    would differ in the last bits; inside the scope the names, relative to it, are those of
    minibatch 0 (tests/test_training_loop.py, to the bit)."""
    return contextlib.nullcontext() if i == 0 else tf.name_scope(f'minibatch{i}')


# ------------------------------------------------------------------------------------------------
# Tracing the next lod phase ahead (issue 20). Each lod phase has its own compiled v1 step, and its
# trace (Python building the networks' graph, R1's two tapes, the losses) takes seconds, during
# which the cores would idle at the phase's first step. The schedule says which phase comes next,
# so a background thread traces it while the current phase trains (the step runs in TensorFlow's
# threads, without the GIL). The graph is the same whichever thread traces it.

def v1_step_signature(sched, rounds: int, minibatches: int = 1) -> tuple:
    """What makes minibatch_v1 trace anew: the lod phase, the rounds and their images, the
    resolution of the dataset file (floor(lod)) and the minibatches per call."""
    return (tf2_layers.lod_phase_key(sched.lod), rounds, sched.minibatch_gpu, math.floor(sched.lod),
            minibatches)


def v1_step_specs(training_set, sched, rounds: int, pl_labels: bool, minibatches: int = 1) -> tuple:
    """tf.TensorSpecs of minibatch_v1's positional arguments as the loop passes them under
    `sched`: reals, labels, lod, D_lrate, G_lrate, Gs_beta, G_labels, G_pl_labels."""
    images, labels = training_set.minibatch_spec(sched.minibatch_gpu, sched.lod)

    def per_round(spec):
        return tf.TensorSpec([minibatches, rounds] + spec.shape.as_list(), spec.dtype)
    scalar = tf.TensorSpec([], tf.float32)
    return (per_round(images), per_round(labels), scalar, scalar, scalar, scalar, per_round(labels),
            per_round(labels) if pl_labels else None)


def next_phase_schedule(nimg: int, total_nimg: int, schedule_at: Callable, signature_of: Callable,
                        minibatch_repeats: int):
    """The schedule of the first evaluation after `nimg` (an evaluation point of the loop) whose
    signature differs from nimg's, or None if training ends first. Walks the evaluations as the
    loop makes them: minibatch_repeats minibatches of the schedule's minibatch each."""
    sched = schedule_at(nimg)
    current = signature_of(sched)
    while True:
        nimg += minibatch_repeats * sched.minibatch
        if nimg >= total_nimg:
            return None
        sched = schedule_at(nimg)
        if signature_of(sched) != current:
            return sched


class PhaseTracer:
    """Traces TrainSteps.minibatch_v1 for coming phases on one background thread."""

    def __init__(self, steps: 'TrainSteps'):
        self._steps = steps
        self._pool = futures.ThreadPoolExecutor(1, thread_name_prefix='trace-next-lod-phase')
        self._jobs = {}                 # signature -> Future

    def submit(self, signature: tuple, specs: tuple, **kwargs) -> None:
        """Starts tracing minibatch_v1 for `specs` and kwargs (D_reg, G_reg, phase, warm_up),
        once per signature."""
        if signature not in self._jobs:
            self._jobs[signature] = self._pool.submit(self._steps.trace_minibatch_v1, specs, **kwargs)

    def wait(self, signature: tuple) -> Optional[bool]:
        """Waits for the trace of `signature`, if one was started, and raises its error; returns
        whether it was warmed up (None: never submitted)."""
        job = self._jobs.get(signature)
        return None if job is None else job.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# ------------------------------------------------------------------------------------------------
# Sharded train steps: the minibatch as shards of minibatch_gpu images, replicas of a strategy
# (issue 19). Every random draw of a shard depends on (step seed, shard index) only, so the
# weights come out the same whether a shard runs as a round on one device, on a replica of a
# MirroredStrategy or in another worker process.

class ShardRandom:
    """A `tf.random.Generator` stand-in (`normal`, `uniform`) for one shard of one step.

    Draw i (in the order the traced code asks) uses the stateless seed
    fold_in(fold_in(seed, shard), i): no state, the same numbers on any device and in any
    process. The networks, the losses and DiffAugment take it where they take a generator.
    """

    def __init__(self, seed: tf.Tensor, shard):
        self.key = tf.random.experimental.stateless_fold_in(seed, tf.cast(shard, tf.int64))
        self.count = 0

    def _next_seed(self):
        self.count += 1
        return tf.random.experimental.stateless_fold_in(self.key, self.count)

    def normal(self, shape, mean=0.0, stddev=1.0, dtype=tf.float32, name=None):
        return tf.random.stateless_normal(shape, self._next_seed(), mean, stddev, dtype)

    def uniform(self, shape, minval=0, maxval=None, dtype=tf.float32, name=None):
        return tf.random.stateless_uniform(shape, self._next_seed(), minval, maxval, dtype)


class _StateCell:
    """A loss state (pl_mean) read and written as a tensor inside one traced shard."""

    def __init__(self, value):
        self.value = value

    def assign(self, value):
        self.value = value

    def __tf_tensor__(self, dtype=None, name=None):
        return tf.convert_to_tensor(self.value, dtype=dtype, name=name)


class ShardedSteps(_Steps):
    """One compiled function per phase (D, D_reg, G, G_reg) that runs a whole minibatch.

    The global minibatch is `shards` shards of `minibatch_gpu` images; replica k of the strategy
    runs shards k*R .. k*R+R-1 as R rounds of a `tf.while_loop` (gradient accumulation inside
    the compiled step). Per shard: loss = mean over its images (times `scale` for lazy
    regularisation); the applied gradient is the sum over all shards / shards (the mean over the
    minibatch, as NVIDIA's per-GPU means x 1/(GPUs x rounds)), all-reduced across replicas, and
    the update is skipped when any gradient is non-finite. Minibatch-stddev groups stay within a
    shard. State that the official code keeps per GPU stays per official GPU ("slot": shards
    j*slot_rounds .. (j+1)*slot_rounds-1): pl_mean is a vector of one value per slot, updated
    round after round within its slot. G's dlatent_avg gets the batch averages of every G call
    of every shard, in shard order, as the sequential loop would. Statistics come back gathered
    from all replicas in shard order.

    Args:
        strategy: a tf.distribute strategy (variables created in its scope).
        G, D, Gs, G_opt, D_opt, G_vars, D_vars, mirror_augment, drange_data, drange_net,
            D_augment: as `TrainSteps`.
        G_loss, D_loss: loss functions with their static kwargs bound; `rng` and `pl_mean` are
            passed per shard.
        pl_mean: None, or the float32 variable [slots] of the path-length means.
        mixed_precision: None, 'bfloat16', or 'float16': then each optimizer has a dynamic loss
            scale (TensorFlow's rule: start 2**15, halve on a non-finite gradient, which skips
            the update, double after 2000 finite ones); `state()` / `set_state()` save it.
    """

    LOSS_SCALE_INIT, LOSS_SCALE_GROWTH_STEPS = 2.0 ** 15, 2000

    def __init__(self, strategy, G, D, Gs, G_opt, D_opt, G_loss: Callable, D_loss: Callable,
                 mirror_augment: bool, drange_data, drange_net, D_augment=None,
                 G_vars: Optional[list] = None, D_vars: Optional[list] = None, pl_mean=None,
                 mixed_precision: Optional[str] = None):
        self.strategy = strategy
        self.loss_scale, self.good_steps = {}, {}
        if mixed_precision == 'float16':
            with strategy.scope():
                for key in ('G', 'D'):
                    self.loss_scale[key] = tf.Variable(self.LOSS_SCALE_INIT, trainable=False,
                                                       name=f'{key}_loss_scale')
                    self.good_steps[key] = tf.Variable(0, dtype=tf.int64, trainable=False,
                                                       name=f'{key}_loss_scale_good_steps')
        super().__init__(G, D, Gs, G_opt, D_opt, G_loss, D_loss, mirror_augment, drange_data,
                         drange_net, D_augment, G_vars, D_vars)
        self.G_loss_takes = set(inspect.signature(G_loss).parameters)
        self.D_loss_takes = set(inspect.signature(D_loss).parameters)
        self.pl_mean = pl_mean
        self.dlatent_avg = getattr(G, 'dlatent_avg', None)
        self.dlatent_beta = (G.resolve_kwargs({'is_training': True})['dlatent_avg_beta']
                             if self.dlatent_avg is not None else None)
        self.D_phase = tf.function(self._D_phase)
        self.G_phase = tf.function(self._G_phase)

    # Per shard ------------------------------------------------------------------------------
    def _G_fn(self, rnd: ShardRandom, avgs: list):
        def G_train(latents, labels, return_dlatents=False, **kwargs):
            # dlatent_avg is updated after the step from `avgs`, in shard order (not here, where
            # replicas would each move their own copy).
            images, dlatents = self.G(latents, labels, is_training=True, rng=rnd,
                                      dlatent_avg_beta=None, return_dlatents=True, **kwargs)
            avgs.append(tf.reduce_mean(tf.cast(dlatents[:, 0], tf.float32), axis=0))
            return (images, dlatents) if return_dlatents else images
        return G_train

    def _D_fn(self, rnd: ShardRandom):
        def D_train(images, labels):
            if self.D_augment is not None:
                images = self.D_augment(images, generator=rnd)
            return self.D(images, labels)
        return D_train

    def state(self) -> Dict[str, np.ndarray]:
        """The loss scales (float16): the sidecar's group 'loss_scale'."""
        st = {k: v.numpy() for k, v in self.loss_scale.items()}
        st.update({f'{k}_good_steps': v.numpy() for k, v in self.good_steps.items()})
        return st

    def set_state(self, state: Dict[str, np.ndarray]) -> None:
        for key in self.loss_scale:
            self.loss_scale[key].assign(state[key])
            self.good_steps[key].assign(state[f'{key}_good_steps'])

    def _shard(self, loss_fn, takes, variables, args, rnd, pl_value, reg, scale, loss_scale=None):
        # One shard's loss and gradients; pl_value: this shard's slot of pl_mean (a tensor).
        avgs = []
        extra = {} if reg is None else {'reg': reg}
        if 'rng' in takes:
            extra['rng'] = rnd
        cell = None
        if 'pl_mean' in takes:
            cell = extra['pl_mean'] = _StateCell(pl_value)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in variables])
            loss, stats = loss_fn(self._G_fn(rnd, avgs), self._D_fn(rnd), *args, **extra)
            loss = tf.reduce_mean(loss)
        scaled = loss * scale if scale != 1.0 else loss
        if loss_scale is not None:                 # float16: keep small gradients representable
            scaled = scaled * tf.convert_to_tensor(loss_scale)
        grads = tape.gradient(scaled, variables)
        grads = _zeros_for_none(grads, variables)
        out = dict(loss=loss, stats=stats)
        if avgs:                  # (empty tensors are not gathered: that crashes the collectives)
            out['avgs'] = tf.stack(avgs)
        return grads, out, (pl_value if cell is None else tf.convert_to_tensor(cell.value))

    def _rounds(self, body, rounds: int, pl_vec):
        """Runs body(r, pl_vec) -> (grads, out, pl_vec) for r < rounds; sums grads, stacks out.

        The gradients are summed in float64 (and all-reduced so): such sums of a few float32
        values are exact, hence independent of the order, so the update does not depend on how
        the shards are laid out. (A parameter without a real gradient, such as a bias before an
        instance norm, has rounding noise as gradient, which Adam's first steps scale up to the
        learning rate: a different summation order would show there.)
        """
        return run_rounds(body, rounds, pl_vec, tf.float64)

    # Per replica ----------------------------------------------------------------------------
    def _D_replica(self, data, lod, seed, reals_seed, reg, scale, rounds, mbg, slot_rounds, phase):
        reals_u8, labels, first = data['reals'], data['labels'], data['first']

        def body(r, pl_vec):
            s = first + r
            x = process_reals(reals_u8[r * mbg:(r + 1) * mbg], lod, self.mirror_augment,
                              ShardRandom(reals_seed, s), self.drange_data, self.drange_net,
                              self.resolution)
            rnd = ShardRandom(seed, s)
            latents = rnd.normal([mbg, self.latent_size])
            y = labels[r * mbg:(r + 1) * mbg]
            return self._shard(self.D_loss, self.D_loss_takes, self.D_vars, (latents, x, y), rnd,
                               None, reg, scale, self.loss_scale.get('D'))[:2] + (pl_vec,)

        with tf2_layers.static_lod_phase(phase):     # per replica: each traces in its own thread
            return self._rounds(body, rounds, tf.zeros([0], tf.float32))[:2]

    def _G_replica(self, data, lod, seed, reg, scale, rounds, mbg, slot_rounds, phase):
        labels, first = data['labels'], data['first']
        pl_labels = data.get('pl_labels')

        def body(r, pl_vec):
            s = first + r
            rnd = ShardRandom(seed, s)
            latents = rnd.normal([mbg, self.latent_size])
            slot = s // slot_rounds
            pl_value = tf.gather(pl_vec, slot) if self.pl_mean is not None else None
            extra = {}
            if pl_labels is not None:
                extra['pl_labels'] = pl_labels[r * mbg:(r + 1) * mbg]
            grads, out, pl_value = self._shard(
                functools.partial(self.G_loss, **extra), self.G_loss_takes, self.G_vars,
                (latents, labels[r * mbg:(r + 1) * mbg]), rnd, pl_value, reg, scale,
                self.loss_scale.get('G'))
            if self.pl_mean is not None:
                pl_vec = tf.tensor_scatter_nd_update(pl_vec, [[slot]], [pl_value])
            return grads, out, pl_vec

        pl_vec = tf.convert_to_tensor(self.pl_mean) if self.pl_mean is not None else tf.zeros([0])
        with tf2_layers.static_lod_phase(phase):
            grads, out, pl_vec = self._rounds(body, rounds, pl_vec)
        if self.pl_mean is not None:
            out['pl_vec'] = pl_vec[None]
        return grads, out

    # Per phase (cross-replica) --------------------------------------------------------------
    def _finish(self, key, opt, variables, per_grads, per_out, lrate, shards):
        st = self.strategy
        divisor = float(shards)
        if key in self.loss_scale:
            divisor = divisor * tf.cast(tf.convert_to_tensor(self.loss_scale[key]), tf.float64)
        grads = [tf.cast(st.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) / divisor, v.dtype)
                 for g, v in zip(per_grads, variables)]
        ok = self._finite(grads)
        if ok:
            opt.learning_rate.assign(lrate)
            opt.apply_gradients(zip(grads, variables))
        if key in self.loss_scale:
            self._adjust_loss_scale(key, ok)
        out = tf.nest.map_structure(lambda t: st.gather(t, axis=0), per_out)
        if self.dlatent_beta is not None and 'avgs' in out:     # G ran in this phase
            avgs = tf.reshape(out['avgs'], [-1, self.dlatent_avg.shape[0]])
            beta = self.dlatent_beta
            self.dlatent_avg.assign(tf.foldl(lambda acc, b: b + (acc - b) * beta, avgs,
                                             initializer=tf.convert_to_tensor(self.dlatent_avg)))
        return ok, out

    def _D_phase(self, data, lod, lrate, seed, reals_seed, reg=None, scale=1.0, rounds=1, mbg=1,
                 slot_rounds=1, shards=1, phase=None):
        self._set_lod(lod)
        per_grads, per_out = self.strategy.run(
            self._D_replica,
            args=(data, lod, seed, reals_seed, reg, scale, rounds, mbg, slot_rounds, phase))
        return self._finish('D', self.D_opt, self.D_vars, per_grads, per_out, lrate, shards)

    def _G_phase(self, data, lod, lrate, seed, reg=None, scale=1.0, rounds=1, mbg=1, slot_rounds=1,
                 shards=1, phase=None):
        self._set_lod(lod)
        per_grads, per_out = self.strategy.run(
            self._G_replica, args=(data, lod, seed, reg, scale, rounds, mbg, slot_rounds, phase))
        ok, out = self._finish('G', self.G_opt, self.G_vars, per_grads, per_out, lrate, shards)
        if self.pl_mean is not None:
            # Each slot's final value comes from the replica that ran it.
            vecs = out.pop('pl_vec')                       # [replicas, slots]
            slots = int(self.pl_mean.shape[0])
            owner = [j * slot_rounds // rounds for j in range(slots)]
            self.pl_mean.assign(tf.gather_nd(vecs, [[o, j] for j, o in enumerate(owner)]))
        return ok, out

    def _adjust_loss_scale(self, key, ok):
        scale, good = self.loss_scale[key], self.good_steps[key]
        if ok:
            good.assign_add(1)
            if good >= self.LOSS_SCALE_GROWTH_STEPS:
                scale.assign(scale * 2.0)
                good.assign(0)
        else:
            scale.assign(tf.maximum(scale * 0.5, 1.0))
            good.assign(0)


# ------------------------------------------------------------------------------------------------
# Small helpers of the loop.

def latent_size_of(G) -> int:
    """Length of z for a G model (from its mapping network's input)."""
    return int(networks_stylegan.resolved_kwargs(G.mapping)['latent_size'])


def _open_dataset(dataset_args: dict, random_seed: int, cur_nimg: int,
                  reals_augment_args: Optional[dict] = None) -> TFRecordDataset:
    """The training set, seeded from (random_seed, cur_nimg): re-opened at every network snapshot
    so that a run resumed from that snapshot reads the same data order (and, with
    `reals_augment_args`, the same augmentations of the reals) as the uninterrupted run."""
    seed = int(np.random.SeedSequence([int(random_seed), int(cur_nimg)]).generate_state(1)[0] >> 1)
    augment_fn = None
    if reals_augment_args is not None:
        kwargs = dict(reals_augment_args)
        augment_fn = _call_by_name(kwargs.pop('func_name'), seed=seed, **kwargs)
    return TFRecordDataset(**dataset_args, seed=seed, augment_fn=augment_fn)


def build_func(func_name: str) -> Callable:
    """A top-level build function by its official name, from the network registries."""
    try:
        module = checkpoint.module_for_build_func(func_name, version=4)
    except checkpoint.CheckpointError as e:
        raise ValueError(f'unknown network build function {func_name!r}: {e}') from e
    return checkpoint.network_kind(module, func_name).build


def step_phases(loop_order: str, D_repeats: int) -> Tuple[str, ...]:
    """The official order of one minibatch's work, as data.

    Phases: 'G' / 'D' (an update), 'G_reg' / 'D_reg' (a lazy regulariser update, run only when
    due), 'Gs' (the moving average), 'count' (the minibatch counts as shown to D).
    StyleGAN (v1): D_repeats times [D (its regulariser after the first), Gs, count], then G.
    StyleGAN2: count, G, G_reg, Gs, D, D_reg.
    """
    if loop_order == 'v2':
        return ('count', 'G', 'G_reg', 'Gs', 'D', 'D_reg')
    phases = []
    for i in range(D_repeats):
        phases += ['D'] + (['D_reg'] if i == 0 else []) + ['Gs', 'count']
    return tuple(phases + ['G', 'G_reg'])


def lazy_regularization_opt_args(opt_args: dict, reg_interval: Optional[int]) -> Tuple[dict, float]:
    """Optimizer kwargs and learning-rate factor for lazy regularisation (StyleGAN2, spec 6.7).

    Regularising every `reg_interval` minibatches as extra steps means (interval + 1) updates per
    interval, so the official code rescales with mb_ratio = interval / (interval + 1):
    lr *= mb_ratio, beta1 **= mb_ratio, beta2 **= mb_ratio. None: no change (factor 1).
    """
    if reg_interval is None:
        return dict(opt_args), 1.0
    if int(reg_interval) != reg_interval or reg_interval < 1:
        raise ValueError(f'reg_interval {reg_interval!r}: must be a positive integer or None')
    mb_ratio = reg_interval / (reg_interval + 1)
    out = dict(opt_args)
    for key in ('beta1', 'beta2'):
        if key in out:
            out[key] = out[key] ** mb_ratio
    return out, mb_ratio


def regularization_due(running_mb_counter: int, reg_interval: Optional[int]) -> bool:
    """Whether the lazy regulariser runs at this minibatch (counter before the increment)."""
    return reg_interval is not None and running_mb_counter % reg_interval == 0


def _loss_reg_arg(loss_func: Callable, reg_interval: Optional[int], label: str) -> Optional[str]:
    """`reg` for the main loss steps: 'none' with lazy regularisation, else None (the default)."""
    if reg_interval is None:
        return None
    if 'reg' not in inspect.signature(loss_func).parameters:
        raise ValueError(f'{label}_reg_interval {reg_interval}: lazy regularisation needs a loss '
                         f'with a `reg` argument (training.loss.G_logistic_ns_pathreg, '
                         f'D_logistic_r1); {loss_func.__name__} has none')
    return 'none'


def _loss_runtime_kwargs(loss_func: Callable, state_vars: Dict[str, tf.Variable],
                         rng: tf.random.Generator) -> dict:
    """The state variables (e.g. pl_mean) and, if the loss takes one, the training rng."""
    kwargs = dict(state_vars)
    if 'rng' in inspect.signature(loss_func).parameters:
        kwargs['rng'] = rng
    return kwargs


def _build_networks(G_args: dict, D_args: dict, training_set: TFRecordDataset):
    data_kwargs = dict(num_channels=training_set.shape[0], resolution=training_set.resolution,
                       label_size=training_set.label_size)
    G_kwargs, D_kwargs = dict(G_args), dict(D_args)
    G_func = build_func(G_kwargs.pop('func_name'))
    D_func = build_func(D_kwargs.pop('func_name'))
    G = G_func(name='G', **data_kwargs, **G_kwargs)
    D = D_func(name='D', **data_kwargs, **D_kwargs)
    return G, D, checkpoint.clone(G, name='Gs')


def _check_networks(G, D, training_set: TFRecordDataset, source: str) -> None:
    want = dict(num_channels=training_set.shape[0], resolution=training_set.resolution,
                label_size=training_set.label_size)
    for net in (G, D):
        have = {k: networks_stylegan.resolved_kwargs(net)[k] for k in want}
        if have != want:
            raise ValueError(f'{source}: network {net.name} was built for {have}, but the dataset '
                             f'{training_set.tfrecord_dir} has {want}')


def _make_optimizer(opt_args: dict, variables: list, name: str):
    kwargs = dict(opt_args)
    # The learning rate is a variable that the schedule sets before every update.
    return _call_by_name(kwargs.pop('func_name'), learning_rate=1.0,
                                         variables=variables, opt_name=name, **kwargs)


def disable_fragile_graph_rewrite() -> None:
    """Turns off Grappler's dependency optimizer and remapper for this process.

    With the dependency optimizer, the second-order gradient of the R1 penalty through the
    networks' nested `tf.cond` (progressive growing) fails at run time from 8x8 on with
    "AlreadyExistsError: Resource __per_step_0/.../AddN_*/tmp_var" on TensorFlow 2.21 (CPU): an
    accumulator inside a branch function that runs twice per step gets the same per-step name
    twice. Without this one pass the graphs run, and no slower.

    The remapper (with oneDNN on) fails on every D and G gradient graph ("remapper failed:
    INVALID_ARGUMENT: Mutation::Apply error: fanout '.../LeakyReluGrad' exist for missing node
    '.../add'": it fuses a bias add into an activation whose gradient still reads it) and then
    leaves the graph as it was, after spending up to 2 s per lod phase and printing an
    error line a user takes for a failure. Off, those graphs are the same and the log is clean
    (docs/performance.md "The remapper").
    """
    tf.config.optimizer.set_experimental_options({'dependency_optimization': False, 'remapping': False})


MIXED_PRECISION = ('bfloat16', 'float16')


def check_mixed_precision(mixed_precision: Optional[str], distribute_args: Optional[dict],
                          G_args: dict) -> None:
    """Refuses a mixed_precision request the loop cannot honour, naming why."""
    if mixed_precision is None:
        return
    if mixed_precision not in MIXED_PRECISION:
        raise ValueError(f'mixed_precision {mixed_precision!r}: expected one of {", ".join(MIXED_PRECISION)}')
    if distribute_args is None:
        raise ValueError('mixed_precision runs in the tf.distribute steps: give distribute_args '
                         "(one device: {'gpus': 1} or {'cpu_devices': 1})")
    if G_args.get('func_name') != 'G_main':
        raise ValueError(f'mixed_precision: only the StyleGAN2 networks (G_main) compute in 16 bits; '
                         f'{G_args.get("func_name")} (StyleGAN v1) keeps float32 constants in its layers')


def _lod_phase_changed(lod: float, prev_lod: float) -> bool:
    return math.floor(lod) != math.floor(prev_lod) or math.ceil(lod) != math.ceil(prev_lod)


def _memory_gb() -> Tuple[float, Optional[float]]:
    """(peak resident CPU memory, peak GPU:0 memory or None) in GiB."""
    import resource
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20    # KiB on Linux
    gpu = None
    if tf.config.list_physical_devices('GPU'):
        gpu = tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2 ** 30
    return cpu, gpu


def _check_finite(name: str, value: float, cur_nimg: int, lod: float, last_pkl: Optional[str],
                  run_dir: str) -> None:
    if math.isfinite(value):
        return
    where = (f'the last complete snapshot is {last_pkl} (continue from it with '
             f'run_training.py --resume {run_dir})' if last_pkl else 'no snapshot had been written yet')
    raise TrainingDivergedError(
        f'{name} is {value} at kimg {cur_nimg / 1000:.3f} (lod {lod:.2f}); training stopped. '
        f'{where}. Consider a lower learning rate or a different seed.')


def _generator_from_state(state: np.ndarray, alg) -> tf.random.Generator:
    return tf.random.Generator.from_state(state.astype(np.int64), alg)


# ------------------------------------------------------------------------------------------------
# The training loop.

def training_loop(
    run_dir: str,                           # Run directory (created by the launcher); every output goes here.
    G_args: dict,                           # Generator: {'func_name': build function in networks_stylegan, **its kwargs}.
    D_args: dict,                           # Discriminator: likewise.
    G_opt_args: dict,                       # G optimizer: {'func_name': factory, **kwargs}; learning rate comes from the schedule.
    D_opt_args: dict,                       # D optimizer: likewise.
    G_loss_args: dict,                      # G loss: {'func_name': function in loss.py, **its extra kwargs}.
    D_loss_args: dict,                      # D loss: likewise (e.g. r1_gamma).
    dataset_args: dict,                     # TFRecordDataset kwargs (tfrecord_dir, resolution, max_label_size, ...); seed is set here.
    sched_args: dict,                       # training_schedule kwargs (schedule.py); missing ones take its official defaults.
    grid_args: Optional[dict] = None,       # Snapshot grid {'size': '1080p'|'4k'|'8k'|'COLSxROWS', 'layout': 'random'}. None: 4k, random.
    num_gpus: int = 1,                      # Devices the official minibatch is divided over (emulated by rounds on one device).
    total_kimg: float = 15000,              # Training length in thousands of real images shown to D.
    G_smoothing_kimg: float = 10.0,         # Half-life of the Gs moving average, in kimg; 0 = Gs is a copy of G.
    D_repeats: int = 1,                     # D updates per G update.
    minibatch_repeats: int = 4,             # Steps between evaluations of the schedule.
    v1_minibatches_per_call: int = 1,       # v1 on one device, at full resolution (lod 0), one round per minibatch: minibatches per compiled call (divides minibatch_repeats; the same weights to the bit).
    reset_opt_for_new_lod: bool = True,     # Reset the optimizers' state when floor(lod) or ceil(lod) changes.
    mirror_augment: bool = False,           # Flip each real image horizontally with probability 0.5.
    drange_net: Sequence[float] = (-1, 1),  # Dynamic range of the networks' images.
    image_snapshot_ticks: int = 1,          # Write fakes<kimg>.png every this many ticks (and at the end).
    network_snapshot_ticks: int = 10,       # Write a network snapshot every this many ticks (and at tick 1 and the end).
    random_seed: int = 1000,                # Seed of numpy and of the TF random stream (derived from numpy, as officially).
    resume_pkl: Optional[str] = None,       # Start from this (G, D, Gs) pickle with fresh optimizers. None: new networks.
    resume_kimg: float = 0.0,               # Progress assumed at the start with resume_pkl (schedule and file numbering).
    resume_time: float = 0.0,               # Training time in seconds assumed at the start with resume_pkl.
    resume_run: bool = False,               # Continue run_dir from its newest complete snapshot (exact resume). False: start.
    D_augment_args: Optional[dict] = None,  # {'class_name': ..., **kwargs}: callable applied to every image D sees. None: none.
    reals_augment_args: Optional[dict] = None,  # {'func_name': factory(seed=, **kwargs) -> dataset augment_fn} for the reals (albumentations). None: none.
    transfer_mismatched: bool = False,      # resume_pkl at another resolution/label size: copy the matching layers only (finetune.py). False: error.
    D_freeze_blocks: int = 0,               # FreezeD: keep the N highest-resolution blocks of D fixed (finetune.py defines the blocks).
    G_freeze_blocks: int = 0,               # FreezeG: keep the N lowest-resolution synthesis blocks of G fixed (4x4 first).
    G_freeze_mapping: bool = False,         # Keep G's mapping network fixed.
    loop_order: str = 'v1',                 # 'v1': per step D_repeats D updates (each + Gs update), then G. 'v2' (StyleGAN2): G, G reg, Gs update, D, D reg.
    G_reg_interval: Optional[int] = None,   # Lazy regularisation: G's regulariser as its own step every this many minibatches (StyleGAN2: 4). None: with the loss.
    D_reg_interval: Optional[int] = None,   # Likewise for D (StyleGAN2: 16). Lazy regularisation needs a loss with a `reg` argument.
    mixing_figure: bool = False,            # At the end, write style-mixing figures of the final snapshot into run_dir.
    metric_args: Optional[dict] = None,     # Metrics at every network snapshot: snapshot_metrics.SnapshotMetrics kwargs (names, inception, vgg16, lpips).
    mixed_precision: Optional[str] = None,  # 'bfloat16' or 'float16' (dynamic loss scaling) compute; variables and snapshots stay float32. Needs distribute_args and StyleGAN2 networks. None: float32.
    distribute_args: Optional[dict] = None, # tf.distribute layout (training/distribute.py): {'gpus'|'cpu_devices': N, 'workers': [...], 'worker_index': i}. None: one device, rounds in Python (the original loop).
) -> Dict[str, Any]:
    """Trains StyleGAN (v1) or StyleGAN2 as the official `training_loop`s; see the module docstring.

    Returns:
        Summary dict: `final_pkl`, `kimg`, `ticks`, `run_dir`.

    Raises:
        TrainingDivergedError: when a loss becomes NaN or Inf (the snapshots on disk are kept).
    """
    start_time = time.time()
    # The strategy first: splitting the CPU and joining a cluster must precede other TF ops.
    strategy = distribute.get_strategy(distribute_args) if distribute_args is not None else None
    layout = distribute.layout_of(distribute_args)
    if strategy is not None and num_gpus % layout.num_replicas != 0:
        raise ValueError(f'num_gpus {num_gpus}: the minibatch preset must be for a multiple of the '
                         f'{layout.num_replicas} replicas')
    is_chief = layout.is_chief        # only the chief writes files
    check_mixed_precision(mixed_precision, distribute_args, G_args)
    disable_fragile_graph_rewrite()
    if loop_order not in ('v1', 'v2'):
        raise ValueError(f"loop_order {loop_order!r}: expected 'v1' or 'v2'")
    if loop_order == 'v2' and D_repeats != 1:
        raise ValueError(f'D_repeats {D_repeats}: the StyleGAN2 loop order has one D update per step')
    if v1_minibatches_per_call < 1 or minibatch_repeats % v1_minibatches_per_call:
        raise ValueError(f'v1_minibatches_per_call {v1_minibatches_per_call}: expected a divisor '
                         f'of minibatch_repeats ({minibatch_repeats})')
    sched_args = normalize_sched_args(sched_args)
    grid_args = dict(size='4k', layout='random') if grid_args is None else grid_args
    if grid_args['layout'] != 'random':
        raise ValueError(f"grid layout {grid_args['layout']!r}: only 'random' is supported")
    total_nimg = int(round(total_kimg * 1000))
    np_rng = np.random.RandomState(random_seed)
    keras.utils.set_random_seed(random_seed)     # weight initialisation (numpy, TF and Keras seeds)
    latest = find_latest_snapshot(run_dir) if resume_run else None
    state = ResumeState.maybe_from_arrays(latest[1] if latest is not None else None)

    # Progress counters (restored below when resuming).
    cur_nimg = state.cur_nimg if state is not None else int(round(resume_kimg * 1000))
    cur_tick = state.cur_tick if state is not None else 0
    # Minibatches done in this run; decides the lazy regularisation steps (saved for exact resume).
    running_mb_counter = state.running_mb_counter if state is not None else 0
    prev_lod = state.prev_lod if state is not None else -1.0
    elapsed0 = state.total_time if state is not None else float(resume_time)
    training_set = _open_dataset(dataset_args, random_seed, cur_nimg, reals_augment_args)
    drange_data = training_set.dynamic_range
    if sched_args.get('lod_initial_resolution') == 'full':     # no progressive growing (fine-tuning)
        sched_args['lod_initial_resolution'] = training_set.resolution

    # Networks and optimizers. Under a strategy, every variable is created in its scope (mirrored
    # on the replicas) and the optimizers are built there, before the first distributed step
    # (Keras #23085). The loop itself runs outside the scope: Keras then applies the all-reduced
    # gradients in cross-replica context through the strategy's own update.
    setup_scope = contextlib.ExitStack()
    if strategy is not None:
        setup_scope.enter_context(strategy.scope())
    if mixed_precision is not None:
        # Layers built now compute in 16 bits with float32 variables (Keras dtype policy).
        setup_scope.callback(keras.config.set_dtype_policy, keras.config.dtype_policy())
        keras.config.set_dtype_policy(f'mixed_{mixed_precision}')
    if resume_run and is_chief:
        # Statistics of ticks after the snapshot belong to work that is redone now.
        truncate_stats_file(run_dir, cur_nimg / 1000)
        if metric_args:
            SnapshotMetrics(run_dir, dataset_args['tfrecord_dir'], **metric_args).truncate(cur_nimg / 1000)
        if latest is None:
            print(f'{run_dir}: no complete snapshot yet; starting the run from the beginning')
    if latest is not None:
        print(f'Resuming {run_dir} from {latest[0]} (kimg {cur_nimg / 1000:.3f}, tick {cur_tick})')
        G, D, Gs = checkpoint.networks_from_pickle(latest[0])
        _check_networks(G, D, training_set, latest[0])
    elif resume_pkl is not None:
        print(f'Loading networks from {resume_pkl} (resume_kimg {resume_kimg})')
        G, D, Gs = finetune.networks_for_dataset(
            resume_pkl, dict(num_channels=training_set.shape[0], resolution=training_set.resolution,
                             label_size=training_set.label_size),
            transfer_mismatched, dataset_name=training_set.tfrecord_dir)
    else:
        G, D, Gs = _build_networks(G_args, D_args, training_set)
    G_vars, D_vars = finetune.select_trainable(G, D, D_freeze_blocks, G_freeze_blocks, G_freeze_mapping)
    G_opt_args, G_mb_ratio = lazy_regularization_opt_args(G_opt_args, G_reg_interval)
    D_opt_args, D_mb_ratio = lazy_regularization_opt_args(D_opt_args, D_reg_interval)
    G_opt = _make_optimizer(G_opt_args, G_vars, 'G_opt')
    D_opt = _make_optimizer(D_opt_args, D_vars, 'D_opt')
    if reals_augment_args is not None:
        from training.augment import LEAK_MESSAGE
        print(f'Warning: {LEAK_MESSAGE}')
    G_loss_kwargs, D_loss_kwargs = dict(G_loss_args), dict(D_loss_args)
    G_loss_func = _obj_by_name(G_loss_kwargs.pop('func_name'))
    D_loss_func = _obj_by_name(D_loss_kwargs.pop('func_name'))
    G_main_reg = _loss_reg_arg(G_loss_func, G_reg_interval, 'G')
    D_main_reg = _loss_reg_arg(D_loss_func, D_reg_interval, 'D')
    G_loss_state = loss_lib.make_state_variables(G_loss_func)     # e.g. pl_mean
    D_loss_state = loss_lib.make_state_variables(D_loss_func)
    if strategy is not None:
        # One value per official GPU (num_gpus slots), as NVIDIA keeps pl_mean per GPU.
        G_loss_state = {k: tf.Variable(tf.fill([num_gpus], v.numpy()), trainable=False, name=k)
                        for k, v in G_loss_state.items()}
        if D_loss_state:
            raise ValueError(f'{D_loss_func.__name__}: D loss state is not supported under tf.distribute')
    D_augment = None
    if D_augment_args is not None:
        aug_kwargs = dict(D_augment_args)
        D_augment = dnnlib.util.construct_class_by_name(class_name=aug_kwargs.pop('class_name'), **aug_kwargs)

    # Random streams, snapshot grid and restored state.
    latent_size = latent_size_of(G)
    grid = grid_shape(grid_args['size'], training_set.resolution)
    if state is not None:
        state.restore_np_rng(np_rng)
        rng = _generator_from_state(state.tf_rng_state, state.tf_rng_alg)
        restore_optimizer_arrays(G_opt, state.group('G_opt'), latest[0])
        restore_optimizer_arrays(D_opt, state.group('D_opt'), latest[0])
        grid_latents, grid_labels = state.grid_latents, state.grid_labels
        for group, variables in (('G_loss', G_loss_state), ('D_loss', D_loss_state)):
            saved = state.group(group)
            for key, var in variables.items():
                if key in saved:    # a scalar saved by the one-device loop fills every slot
                    var.assign(np.broadcast_to(saved[key], var.shape))
        if D_augment is not None and hasattr(D_augment, 'set_state'):
            D_augment.set_state(state.group('augment'))
    else:
        grid_reals, grid_labels = training_set.get_minibatch_np(grid[0] * grid[1])
        grid_latents = np_rng.randn(grid[0] * grid[1], latent_size).astype(np.float32)
        rng = tf.random.Generator.from_seed(int(np_rng.randint(1 << 31)))
        if is_chief:
            save_image_grid(grid_reals, os.path.join(run_dir, 'reals.png'), drange_data, grid)
    Gs_run = Network(Gs)
    snapshot_metrics = (SnapshotMetrics(run_dir, dataset_args['tfrecord_dir'], **metric_args)
                        if metric_args and is_chief else None)

    def render_grid(path: str, minibatch: int) -> None:
        if not is_chief:
            return
        images = Gs_run.run(grid_latents, grid_labels, is_validation=True, minibatch_size=minibatch)
        save_image_grid(np.asarray(images, np.float32), path, drange_net, grid)

    if state is None:
        render_grid(os.path.join(run_dir, 'fakes_init.png'), 8)
    if strategy is None:
        steps = TrainSteps(G, D, Gs, G_opt, D_opt,
                           functools.partial(G_loss_func, **G_loss_kwargs, **_loss_runtime_kwargs(G_loss_func, G_loss_state, rng)),
                           functools.partial(D_loss_func, **D_loss_kwargs, **_loss_runtime_kwargs(D_loss_func, D_loss_state, rng)),
                           rng, mirror_augment, drange_data, drange_net, D_augment, G_vars, D_vars)
    else:
        steps = ShardedSteps(strategy, G, D, Gs, G_opt, D_opt,
                             functools.partial(G_loss_func, **G_loss_kwargs),
                             functools.partial(D_loss_func, **D_loss_kwargs),
                             mirror_augment, drange_data, drange_net, D_augment, G_vars, D_vars,
                             pl_mean=G_loss_state.get('pl_mean'), mixed_precision=mixed_precision)
        if state is not None and mixed_precision == 'float16':
            steps.set_state(state.group('loss_scale'))
    setup_scope.close()
    stats = StatsCollector(run_dir if is_chief else None)
    last_pkl = latest[0] if latest is not None else None

    def snapshot_state() -> Dict[str, np.ndarray]:
        groups = dict(G_loss={k: v.numpy() for k, v in G_loss_state.items()},
                      D_loss={k: v.numpy() for k, v in D_loss_state.items()},
                      G_opt=optimizer_arrays(G_opt), D_opt=optimizer_arrays(D_opt))
        if D_augment is not None and hasattr(D_augment, 'get_state'):
            groups['augment'] = {k: np.asarray(v) for k, v in D_augment.get_state().items()}
        if isinstance(steps, ShardedSteps):
            groups['loss_scale'] = steps.state()
        return ResumeState(cur_nimg=cur_nimg, cur_tick=cur_tick, prev_lod=prev_lod, total_time=total_time,
                           running_mb_counter=running_mb_counter, tf_rng_state=rng.state.numpy(),
                           tf_rng_alg=int(rng.algorithm), np_rng=ResumeState.np_rng_arrays(np_rng),
                           grid_latents=grid_latents, grid_labels=grid_labels, groups=groups).to_arrays()

    # The results of a tick's phases stay tensors until the tick ends: one host sync per tick.
    pending = []

    def report_phase(label: str, ok, out) -> None:
        pending.append((label, ok, out, cur_nimg, ctx.sched.lod))

    def read_reports() -> None:
        for label, ok, out, nimg, lod in pending:
            losses = out['loss'].numpy()                     # [rounds or shards]
            bad = losses[~np.isfinite(losses)]
            _check_finite(f'Loss/{label}/loss', float(bad[0]) if bad.size else 0.0, nimg, lod,
                          last_pkl, run_dir)
            stats.report(f'Loss/{label}/loss', losses)
            for name, value in out['stats'].items():
                stats.report(name, value.numpy())
            name = f'Progress/{label}_update_skipped' if label in ('G', 'D') else f'Progress/{label}_skipped'
            stats.report(name, 0.0 if bool(ok) else 1.0)
        pending.clear()

    def update_ada(out) -> None:
        if D_augment is not None and hasattr(D_augment, 'update'):    # p follows D's overfitting
            D_augment.update(tf.reshape(out['stats']['Loss/scores/real'], [-1, 1]))

    # One minibatch's work, phase by phase (the order is data: step_phases). The context holds
    # what the schedule sets; the phases read it.
    ctx = EasyDict()
    last_reals = []

    def fetch_rounds():
        """The step's rounds of minibatch_gpu reals and labels, [rounds, n, ...], in read order."""
        batches = [training_set.get_minibatch_tf() for _round in range(ctx.rounds)]
        return tf.stack([b[0] for b in batches]), tf.stack([b[1] for b in batches])

    def random_label_rounds() -> dict:
        # Per round: its labels, then the path-length regulariser's own (the draw order).
        labels, pl_labels = [], []
        for _round in range(ctx.rounds):
            labels.append(training_set.get_random_labels_np(ctx.sched.minibatch_gpu))
            if steps.G_loss_takes_pl_labels:
                pl_labels.append(training_set.get_random_labels_np(ctx.sched.minibatch_gpu))
        out = {'labels': tf.constant(np.stack(labels))}
        if pl_labels:
            out['pl_labels'] = tf.constant(np.stack(pl_labels))
        return out

    def run_D():
        reals, labels = fetch_rounds()
        ok, out = steps.D_step(reals, labels, ctx.lod_t, ctx.D_lrate, reg=D_main_reg, phase=ctx.phase)
        # The official D_reg_op reads the last fetched minibatch again, as processed for the D
        # step (the same mirror flips).
        last_reals[:] = [out.pop('reals')[-1], labels[-1]]
        report_phase('D', ok, out)
        update_ada(out)

    def run_D_reg():
        ok, out = steps.D_step(*last_reals, ctx.lod_t, ctx.D_lrate, reg='only',
                               scale=float(D_reg_interval), phase=ctx.phase, repeat=ctx.rounds)
        out.pop('reals')
        report_phase('D_reg', ok, out)

    def run_G(reg, scale: float, label: str):
        ok, out = steps.G_step(lod=ctx.lod_t, lrate=ctx.G_lrate, reg=reg, scale=scale,
                               phase=ctx.phase, **random_label_rounds())
        report_phase(label, ok, out)

    def count_images():
        nonlocal cur_nimg
        cur_nimg += ctx.sched.minibatch

    def run_minibatches_v1(count: int):
        """`count` minibatches of step_phases('v1', 1), none with a regulariser due, as one
        compiled call; reals and labels read in the order of one minibatch at a time."""
        inputs = [(fetch_rounds(), random_label_rounds()) for _minibatch in range(count)]
        G_labels = {k: tf.stack([labels[k] for _, labels in inputs]) for k in inputs[0][1]}
        results = steps.minibatch_v1(
            tf.stack([reals for (reals, _), _ in inputs]),
            tf.stack([labels for (_, labels), _ in inputs]), ctx.lod_t, ctx.D_lrate, ctx.G_lrate,
            ctx.Gs_beta, G_labels['labels'], G_labels.get('pl_labels'), D_reg=D_main_reg,
            G_reg=G_main_reg, phase=ctx.phase)
        for D_ok, D_out, G_ok, G_out in results:
            report_phase('D', D_ok, D_out)
            count_images()
            report_phase('G', G_ok, G_out)

    run_phase = {'D': run_D, 'D_reg': run_D_reg,
                 'G': lambda: run_G(G_main_reg, 1.0, 'G'),
                 'G_reg': lambda: run_G('only', float(G_reg_interval or 1), 'G_reg'),
                 'Gs': lambda: steps.update_Gs(ctx.Gs_beta), 'count': count_images}

    # Under a strategy: one compiled call per phase for the whole minibatch. The host draws the
    # global minibatch (reals and labels in the order of the one-device loop, one step seed per
    # phase from the saved stream) and gives replica k its contiguous slice of shards.
    last_D = []

    def per_replica(arrays: Dict[str, tf.Tensor]):
        rounds, share = ctx.shard_kwargs['rounds'], ctx.shard_kwargs['rounds'] * ctx.sched.minibatch_gpu

        def value(vctx):
            k = vctx.replica_id_in_sync_group
            return dict({name: a[k * share:(k + 1) * share] for name, a in arrays.items()},
                        first=tf.constant(k * rounds, tf.int32))
        return strategy.experimental_distribute_values_from_function(value)

    def next_seed() -> tf.Tensor:
        return rng.make_seeds(1)[:, 0]                  # int64 [2]

    def sharded_D():
        images, labels = training_set.get_minibatch_tf()        # [minibatch, C, h, w]
        seed = next_seed()
        last_D[:] = [images, labels, seed]
        ok, out = steps.D_phase(per_replica({'reals': images, 'labels': labels}), ctx.lod_t,
                                ctx.D_lrate, seed, seed, reg=D_main_reg, **ctx.shard_kwargs)
        report_phase('D', ok, out)
        update_ada(out)

    def sharded_D_reg():
        # The regulariser sees the last D minibatch as processed for it (same mirror flips).
        images, labels, reals_seed = last_D
        ok, out = steps.D_phase(per_replica({'reals': images, 'labels': labels}), ctx.lod_t,
                                ctx.D_lrate, next_seed(), reals_seed, reg='only',
                                scale=float(D_reg_interval), **ctx.shard_kwargs)
        report_phase('D_reg', ok, out)

    def sharded_G(reg, scale: float, label: str):
        labels, pl_labels = [], []
        for _shard in range(ctx.shard_kwargs['shards']):      # the one-device loop's draw order
            labels.append(training_set.get_random_labels_np(ctx.sched.minibatch_gpu))
            if 'pl_labels' in steps.G_loss_takes:
                pl_labels.append(training_set.get_random_labels_np(ctx.sched.minibatch_gpu))
        arrays = {'labels': tf.constant(np.concatenate(labels))}
        if pl_labels:
            arrays['pl_labels'] = tf.constant(np.concatenate(pl_labels))
        ok, out = steps.G_phase(per_replica(arrays), ctx.lod_t, ctx.G_lrate, next_seed(), reg=reg,
                                scale=scale, **ctx.shard_kwargs)
        report_phase(label, ok, out)

    if strategy is not None:
        run_phase.update(D=sharded_D, D_reg=sharded_D_reg,
                         G=lambda: sharded_G(G_main_reg, 1.0, 'G'),
                         G_reg=lambda: sharded_G('only', float(G_reg_interval or 1), 'G_reg'))
    phases = step_phases(loop_order, D_repeats)
    # v1 on one device: a minibatch with no lazy regulariser due is one compiled call, unless an
    # adaptive augmentation must update its p between the D and the G step.
    fuse_v1 = (strategy is None and phases == step_phases('v1', 1)
               and not (D_augment is not None and hasattr(D_augment, 'update')))
    tracer = PhaseTracer(steps) if fuse_v1 else None
    # The traces ahead of a graph of several minibatches also instantiate it
    # (TrainSteps.trace_minibatch_v1) by running it once on stand-ins of the variables: seconds
    # the loop's first call would wait. Not for one minibatch per call (about a second, which on
    # the thread slows the current phase's ticks as much as it saves; issue 20), and not on a
    # GPU, where that run's memory would add to training's.
    warm_up_ahead = not tf.config.list_logical_devices('GPU')
    cur_signature = None

    def schedule_at(nimg: int):
        return training_schedule(nimg, training_set.resolution_log2, num_gpus, **sched_args)

    def signature_of(s) -> tuple:
        return v1_step_signature(s, s.rounds * num_gpus, minibatches_per_call(s))

    def minibatches_per_call(s) -> int:
        # At full resolution only: a graph of k minibatches takes about k times as long to trace
        # and longer still to instantiate, seconds that the demo's 2-kimg phases before it would
        # not win back; the last phase is where a run spends its time (issue 20). And with one
        # round per minibatch only: with several, Grappler sums some gradients of the rounds'
        # while loop in another order inside a larger graph (last bits; tests/test_training_loop.py).
        return v1_minibatches_per_call if s.lod == 0 and s.rounds * num_gpus == 1 else 1

    def step_trace_args(s) -> Tuple[tuple, dict]:
        """minibatch_v1's TensorSpecs and Python arguments under schedule `s`, as
        run_minibatches_v1 calls it for a whole group."""
        specs = v1_step_specs(training_set, s, s.rounds * num_gpus, steps.G_loss_takes_pl_labels,
                              minibatches_per_call(s))
        return specs, dict(D_reg=D_main_reg, G_reg=G_main_reg, phase=tf2_layers.lod_phase_key(s.lod))

    def trace_next_phase(sched) -> None:
        """At the first evaluation of a phase: its own trace done (here if no thread did it, so
        that the two traces do not compete), then the next phase's started on the thread."""
        nonlocal cur_signature
        signature = signature_of(sched)
        if signature == cur_signature:
            return
        cur_signature = signature
        tracer.wait(signature)
        specs, kwargs = step_trace_args(sched)
        steps.trace_minibatch_v1(specs, **kwargs)      # nothing to do when the thread traced it
        nxt = next_phase_schedule(cur_nimg, total_nimg, schedule_at, signature_of, minibatch_repeats)
        if nxt is not None:
            specs, kwargs = step_trace_args(nxt)
            tracer.submit(signature_of(nxt), specs, **kwargs,
                          warm_up=warm_up_ahead and minibatches_per_call(nxt) > 1)

    # Main loop ------------------------------------------------------------------------------
    print(f'Training for {total_kimg} kimg from kimg {cur_nimg / 1000:.3f}...')
    tick_start_nimg = cur_nimg
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    while cur_nimg < total_nimg:
        # Schedule, optimizer reset, data pipeline for this lod.
        sched = schedule_at(cur_nimg)
        if reset_opt_for_new_lod and _lod_phase_changed(sched.lod, prev_lod):
            optimizers.reset_optimizer_state(G_opt)
            optimizers.reset_optimizer_state(D_opt)
        prev_lod = sched.lod
        # Under a strategy the host reads the whole minibatch at once and slices it.
        training_set.configure(sched.minibatch if strategy is not None else sched.minibatch_gpu, sched.lod)
        Gs_beta = 0.5 ** (sched.minibatch / (G_smoothing_kimg * 1000.0)) if G_smoothing_kimg > 0 else 0.0
        # Lazy regularisation (lr already scaled by mb_ratio): the official G_reg_op / D_reg_op
        # share the Adam state with the main step and see the regulariser x interval.
        ctx.update(sched=sched, rounds=sched.rounds * num_gpus, lod_t=tf.constant(sched.lod, tf.float32),
                   Gs_beta=tf.constant(Gs_beta, tf.float32),
                   G_lrate=tf.constant(sched.G_lrate * G_mb_ratio, tf.float32),
                   D_lrate=tf.constant(sched.D_lrate * D_mb_ratio, tf.float32))
        # Shards of the minibatch: num_gpus official GPUs x their rounds, split over the replicas.
        shards = sched.rounds * num_gpus
        ctx.phase = tf2_layers.lod_phase_key(sched.lod)
        ctx.shard_kwargs = dict(rounds=shards // layout.num_replicas, mbg=sched.minibatch_gpu,
                                slot_rounds=sched.rounds, shards=shards, phase=ctx.phase)
        if tracer is not None:
            trace_next_phase(sched)

        grouped = 0         # fused v1 minibatches not run yet: minibatches_per_call(sched) per call
        for _repeat in range(minibatch_repeats):
            due = {'G_reg': regularization_due(running_mb_counter, G_reg_interval),
                   'D_reg': regularization_due(running_mb_counter, D_reg_interval)}
            running_mb_counter += 1
            if fuse_v1 and not any(due.values()):
                grouped += 1
                if grouped == minibatches_per_call(sched):
                    run_minibatches_v1(grouped)
                    grouped = 0
                continue
            if grouped:     # a regulariser due: the group so far first (a call of its own size)
                run_minibatches_v1(grouped)
                grouped = 0
            for phase in phases:
                if due.get(phase, True):
                    run_phase[phase]()
        if grouped:
            run_minibatches_v1(grouped)

        # Once per tick: report, image grid, snapshot.
        done = cur_nimg >= total_nimg
        if cur_nimg < tick_start_nimg + sched.tick_kimg * 1000 and not done:
            continue
        read_reports()
        cur_tick += 1
        tick_kimg = (cur_nimg - tick_start_nimg) / 1000.0
        tick_start_nimg = cur_nimg
        tick_end_time = time.time()
        tick_time = tick_end_time - tick_start_time
        total_time = tick_end_time - start_time + elapsed0
        sec_per_kimg = tick_time / tick_kimg
        cpu_mem, gpu_mem = _memory_gb()
        for name, value in [('Progress/tick', cur_tick), ('Progress/kimg', cur_nimg / 1000.0),
                            ('Progress/lod', sched.lod), ('Progress/minibatch', sched.minibatch),
                            ('Progress/minibatch_gpu', sched.minibatch_gpu),
                            ('Progress/G_lrate', sched.G_lrate), ('Progress/D_lrate', sched.D_lrate),
                            ('Timing/total_sec', total_time), ('Timing/sec_per_tick', tick_time),
                            ('Timing/sec_per_kimg', sec_per_kimg), ('Timing/maintenance_sec', maintenance_time),
                            ('Timing/total_hours', total_time / 3600.0),
                            ('Timing/total_days', total_time / 86400.0),
                            ('Resources/peak_cpu_mem_gb', cpu_mem)]:
            stats.report(name, value)
        if gpu_mem is not None:
            stats.report('Resources/peak_gpu_mem_gb', gpu_mem)
        if D_augment is not None and hasattr(D_augment, 'p'):
            stats.report('Progress/augment_p', float(D_augment.p))
        eta = max(total_nimg - cur_nimg, 0) / 1000.0 * sec_per_kimg     # at the last tick's speed
        print(f'tick {cur_tick:<5d} kimg {cur_nimg / 1000.0:<8.1f} lod {sched.lod:<5.2f} '
              f'minibatch {sched.minibatch:<4d} time {format_time(total_time):<12s} '
              f'sec/tick {tick_time:<7.1f} sec/kimg {sec_per_kimg:<7.2f} '
              f'maintenance {maintenance_time:<6.1f} cpumem {cpu_mem:<5.2f} '
              + (f'gpumem {gpu_mem:<5.2f} ' if gpu_mem is not None else '')
              + f'eta {format_time(eta)}', flush=True)
        stats.flush(cur_nimg / 1000.0, extra={'tick': cur_tick})
        if cur_tick % image_snapshot_ticks == 0 or done:
            render_grid(os.path.join(run_dir, f'fakes{cur_nimg // 1000:06d}.png'), sched.minibatch_gpu)
        if cur_tick % network_snapshot_ticks == 0 or done or cur_tick == 1:
            if is_chief:
                last_pkl = write_snapshot(run_dir, cur_nimg // 1000, (G, D, Gs), snapshot_state())
                if snapshot_metrics is not None:
                    snapshot_metrics.evaluate(Gs_run, cur_nimg / 1000.0, last_pkl, stats)
            training_set.close()
            training_set = _open_dataset(dataset_args, random_seed, cur_nimg, reals_augment_args)
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time

    # Finish ---------------------------------------------------------------------------------
    if tracer is not None:
        tracer.close()
    stats.close()
    training_set.close()
    final_pkl = os.path.join(run_dir, 'network-final.pkl')
    if last_pkl is not None and is_chief:
        legacy_pickle.save(tuple(checkpoint.network_states(G, D, Gs)), final_pkl)
    if mixing_figure and last_pkl is not None and is_chief:
        from editing import mixing
        figures = mixing.write_style_mixing_figure(final_pkl, run_dir, log=None)
        print('Style-mixing figures: ' + ', '.join(figures))
    print(f'Done: kimg {cur_nimg / 1000.0:.1f}, {cur_tick} ticks; final networks {final_pkl}')
    return dict(run_dir=run_dir, final_pkl=final_pkl, kimg=cur_nimg / 1000.0, ticks=cur_tick)
