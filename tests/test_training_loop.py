"""training/training_loop.py: real-image processing, grids, a one-tick smoke run, exact resume, NaN stop.

The training runs use tiny networks on a tiny synthetic 8x8 dataset, with every official random
element on (style mixing, random noise inputs, mirror augment): all draws come from the loop's
saved random streams, so runs are bit-reproducible and a resumed run is compared with the
uninterrupted one exactly.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import NET, REPO_DIR, assert_same_training_state, load_pair, make_dataset, tiny_kwargs
from dnnlib import legacy_pickle
from training import training_loop as tl

@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp('data') / 'tiny8'))


@pytest.fixture(scope='module')
def reference_run(dataset_dir, tmp_path_factory):
    """An uninterrupted 1-kimg run: ticks end at 0.512 and 1.024 kimg (snapshots 000000, 000001)."""
    run_dir = str(tmp_path_factory.mktemp('runs') / '00000-reference')
    os.makedirs(run_dir)
    summary = tl.training_loop(run_dir=run_dir, **tiny_kwargs(dataset_dir, 1.0))
    return run_dir, summary


# ------------------------------------------------------------------------------------------------
# Pieces.

def test_process_reals_fade_and_upscale_by_hand():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.uint8).reshape(2, 1, 4, 4) * 8   # [N, C, 4, 4]
    rng = tf.random.Generator.from_seed(1)
    out = tl.process_reals(tf.constant(x), tf.constant(1.25), False, rng, [0, 255], [-1, 1], 8).numpy()
    f = x.astype(np.float64) * (2 / 255) - 1
    box = f.reshape(2, 1, 2, 2, 2, 2).mean(axis=(3, 5)).repeat(2, axis=2).repeat(2, axis=3)
    faded = f + (box - f) * 0.25
    want = faded.repeat(2, axis=2).repeat(2, axis=3)       # nearest x2 up to 8x8
    np.testing.assert_allclose(out, want, atol=1e-6)
    # Integer lod: no fade; lod 0 at full resolution: identity after the range change.
    out0 = tl.process_reals(tf.constant(x), tf.constant(0.0), False, rng, [0, 255], [-1, 1], 4).numpy()
    np.testing.assert_allclose(out0, f, atol=1e-6)


def test_process_reals_mirror_flips_whole_images():
    x = np.random.RandomState(0).randint(0, 255, size=[64, 3, 4, 4]).astype(np.uint8)
    out = tl.process_reals(tf.constant(x), tf.constant(0.0), True, tf.random.Generator.from_seed(3),
                           [0, 255], [-1, 1], 4).numpy()
    f = x * (2 / 255) - 1
    flipped = [np.allclose(o, fi[:, :, ::-1], atol=1e-6) for o, fi in zip(out, f)]
    kept = [np.allclose(o, fi, atol=1e-6) for o, fi in zip(out, f)]
    assert all(a or b for a, b in zip(flipped, kept))
    assert 16 < sum(flipped) < 48


def test_grid_shape():
    assert tl.grid_shape('4k', 1024) == (7, 4)
    assert tl.grid_shape('4k', 256) == (15, 8)
    assert tl.grid_shape('4k', 64) == (32, 32)
    assert tl.grid_shape('1080p', 1024) == (3, 2)
    assert tl.grid_shape('8x4', 64) == (8, 4)
    with pytest.raises(ValueError, match='grid size'):
        tl.grid_shape('huge', 64)


def test_save_image_grid(tmp_path):
    import PIL.Image
    images = np.stack([np.full([3, 2, 2], v, np.float32) for v in (-1.0, 0.0, 1.0)])
    path = str(tmp_path / 'g.png')
    tl.save_image_grid(images, path, [-1, 1], (2, 2))
    arr = np.asarray(PIL.Image.open(path))
    assert arr.shape == (4, 4, 3)
    # Empty cells hold 0 in the network range (mid-grey), as officially.
    assert arr[0, 0, 0] == 0 and arr[0, 2, 0] == 128 and arr[2, 0, 0] == 255 and arr[2, 2, 0] == 128


def test_optimizer_reset_points():
    # Official rule: reset whenever floor(lod) or ceil(lod) changes.
    assert tl._lod_phase_changed(7.0, -1.0)
    assert not tl._lod_phase_changed(7.0, 7.0)
    assert tl._lod_phase_changed(6.99, 7.0)          # a fade starts
    assert not tl._lod_phase_changed(6.5, 6.99)
    assert tl._lod_phase_changed(6.0, 6.01)          # the fade ends


def test_nonfinite_gradient_skips_the_update():
    from tf2 import checkpoint, networks_stylegan as nets
    from training import optimizers
    G = nets.G_style(num_channels=3, resolution=4, label_size=0, **NET)
    D = nets.D_basic(num_channels=3, resolution=4, label_size=0, fmap_base=32, fmap_max=8)
    Gs = checkpoint.clone(G, 'Gs')
    G_opt = optimizers.make_optimizer(variables=G.trainable_variables)
    D_opt = optimizers.make_optimizer(variables=D.trainable_variables)
    from training import loss
    steps = tl.TrainSteps(G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating, loss.D_logistic_simplegp,
                          tf.random.Generator.from_seed(0), False, [0, 255], [-1, 1])
    before = [v.numpy().copy() for v in D.trainable_variables]
    grads = [tf.ones_like(v) for v in D.trainable_variables]
    grads[3] = grads[3] * np.nan
    assert not bool(steps.apply_D(grads, tf.constant(0.01)))
    assert int(D_opt.iterations.numpy()) == 0
    assert D_opt.variables[-1].numpy() == np.float32(0.99)       # TF1's beta2_power: untouched
    for b, v in zip(before, D.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())
    assert bool(steps.apply_D([tf.ones_like(v) for v in D.trainable_variables], tf.constant(0.01)))
    assert int(D_opt.iterations.numpy()) == 1
    assert D_opt.variables[-1].numpy() == np.float32(np.float32(0.99) * np.float32(0.99))
    assert not np.array_equal(before[0], D.trainable_variables[0].numpy())


def test_restore_optimizer_arrays_of_a_state_saved_with_keras_adam():
    # Training states written before `--optimizer adam` was TF1's arithmetic lack the two beta
    # powers; they resume with the powers TF1 would have after the saved number of steps.
    from training import optimizers
    rs = np.random.RandomState(3)
    var = keras.Variable(rs.randn(4, 3).astype(np.float32))
    keras_opt = keras.optimizers.Adam(0.01, 0.0, 0.99, 1e-8, name='D_opt')
    for _ in range(6):
        keras_opt.apply_gradients([(tf.constant(rs.randn(4, 3).astype(np.float32)), var)])
    saved = tl.optimizer_arrays(keras_opt)
    opt = optimizers.make_optimizer(variables=[keras.Variable(var.numpy())], opt_name='D_opt')
    tl.restore_optimizer_arrays(opt, saved, 'old state')
    for key, value in saved.items():
        np.testing.assert_array_equal(opt.variables[int(key[:4])].numpy(), value)
    power = np.float32(0.99)
    for _ in range(6):
        power = np.float32(power * np.float32(0.99))
    assert opt.variables[-1].path == 'D_opt/beta_2_power' and opt.variables[-1].numpy() == power
    with pytest.raises(ValueError, match='saved optimizer variables'):
        tl.restore_optimizer_arrays(opt, dict(list(saved.items())[:3]), 'broken state')


def _tiny_steps(res=8, sgd=False):
    """TrainSteps on tiny progressive networks with every random element of training on; with
    sgd=True plain SGD, whose step shows the gradients linearly (Adam's first step is about
    +-lr whatever the gradient, even for gradients that are only rounding noise)."""
    from tf2 import checkpoint, networks_stylegan as nets
    from training import loss, optimizers
    G = nets.G_style(num_channels=3, resolution=res, label_size=0, **NET)
    D = nets.D_basic(num_channels=3, resolution=res, label_size=0, fmap_base=32, fmap_max=8)
    Gs = checkpoint.clone(G, 'Gs')
    make = ((lambda v: _built(keras.optimizers.SGD(0.01), v)) if sgd
            else (lambda v: optimizers.make_optimizer(variables=v)))
    G_opt, D_opt = make(G.trainable_variables), make(D.trainable_variables)
    return tl.TrainSteps(G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating, loss.D_logistic_simplegp,
                         tf.random.Generator.from_seed(5), True, [0, 255], [-1, 1])


def _built(opt, variables):
    opt.build(variables)
    return opt


def _copy_state(src, dst):
    for a, b in zip(src.G.variables + src.D.variables, dst.G.variables + dst.D.variables):
        b.assign(a)
    dst.rng.reset(src.rng.state)


@pytest.mark.parametrize('lod', [0.5, 1.0])
def test_compiled_rounds_equal_the_per_round_pieces(lod):
    """D_step / G_step (the rounds inside one compiled call) do what the readable sequence does:
    prepare_reals + D_grads per round, the float32 sum in round order, the mean, apply; the
    training stream is drawn in the same order (same mirror flips, same final generator state).
    Both run in the static lod phase (tests/test_lod_phase.py compares it with tf.cond). With
    SGD at lr 0.01 a weight differs by lr x its gradient's difference: atol 1e-5 allows rounding
    noise of 1e-3 in a gradient (the noise of gradients that are zero in exact arithmetic, such
    as a bias before an instance norm, reaches 1e-4) and catches a wrong sum or mean."""
    from tf2 import layers as L
    fast, ref = _tiny_steps(sgd=True), _tiny_steps(sgd=True)
    _copy_state(fast, ref)
    rounds, n, lr, phase = 3, 2, 0.01, L.lod_phase_key(lod)
    rng = np.random.RandomState(0)
    h = 8 // 2 ** int(np.floor(lod))
    reals = tf.constant(rng.randint(0, 256, [rounds, n, 3, h, h]), tf.uint8)
    labels = tf.zeros([rounds, n, 0])
    lod_t, lrate = tf.constant(lod, tf.float32), tf.constant(lr)

    def D_round(r):
        x = ref.prepare_reals(reals[r], lod_t)
        loss, _, grads = ref.D_grads(x, labels[r], lod_t, phase=phase)
        np.testing.assert_array_equal(out['reals'][r].numpy(), x.numpy())
        return loss, grads

    ok, out = fast.D_step(reals, labels, lod_t, lrate, phase=phase)
    _assert_same_update(ok, out, D_round, rounds, ref.apply_D, lrate, fast.D_vars, ref.D_vars)
    ok, out = fast.G_step(labels, lod_t, lrate, phase=phase)
    _assert_same_update(ok, out, lambda r: ref.G_grads(labels[r], lod_t, phase=phase)[::2],
                        rounds, ref.apply_G, lrate, fast.G_vars, ref.G_vars)
    np.testing.assert_array_equal(fast.rng.state.numpy(), ref.rng.state.numpy())


def _copy_all(src, dst):
    _copy_state(src, dst)
    for a, b in zip(src.Gs.variables, dst.Gs.variables):
        b.assign(a)


@pytest.mark.parametrize('lod', [0.0, 0.5])
def test_one_call_minibatch_equals_the_three_calls(lod):
    """minibatch_v1 (the loop's one compiled call for k v1 minibatches, here 2) is D_step,
    update_Gs and G_step in that order, minibatch after minibatch: the same losses, the same G, D
    and Gs weights and the same training stream state. With plain SGD (see _tiny_steps: Adam
    turns the rounding noise of gradients that are zero in exact arithmetic, such as a bias
    before an instance norm, into +-lr steps, and the two graphs round differently) at lr 0.01
    and 0.02 an update missing, doubled or out of order moves weights far beyond atol 1e-5;
    test_minibatches_in_one_call_equal_one_call_each_to_the_bit compares with Adam to the bit."""
    from tf2 import layers as L
    fused, ref = _tiny_steps(sgd=True), _tiny_steps(sgd=True)
    _copy_all(fused, ref)
    rounds, n, phase = 2, 2, L.lod_phase_key(lod)
    rng = np.random.RandomState(1)
    h = 8 // 2 ** int(np.floor(lod))
    lod_t, D_lr, G_lr, beta = (tf.constant(x, tf.float32) for x in (lod, 0.01, 0.02, 0.9))
    labels = tf.zeros([rounds, n, 0])
    reals = tf.constant(rng.randint(0, 256, [2, rounds, n, 3, h, h]), tf.uint8)
    results = fused.minibatch_v1(reals, tf.stack([labels] * 2), lod_t, D_lr, G_lr, beta,
                                 tf.stack([labels] * 2), phase=phase)
    assert len(results) == 2
    for (D_ok, D_out, G_ok, G_out), minibatch in zip(results, reals):
        ok, out = ref.D_step(minibatch, labels, lod_t, D_lr, phase=phase)
        ref.update_Gs(beta)
        ok2, out2 = ref.G_step(labels, lod_t, G_lr, phase=phase)
        assert bool(D_ok) and bool(G_ok) and bool(ok) and bool(ok2) and 'reals' not in D_out
        np.testing.assert_allclose(D_out['loss'].numpy(), out['loss'].numpy(), rtol=1e-5)
        np.testing.assert_allclose(G_out['loss'].numpy(), out2['loss'].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(fused.rng.state.numpy(), ref.rng.state.numpy())
    for net in ('G', 'D', 'Gs'):
        for a, b in zip(getattr(fused, net).variables, getattr(ref, net).variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5, err_msg=f'{net} {a.name}')
    assert int(fused.G_opt.iterations.numpy()) == int(ref.G_opt.iterations.numpy()) == 2


def _all_state(steps):
    return [v.numpy() for v in steps.G.variables + steps.D.variables + steps.Gs.variables
            + steps.G_opt.variables + steps.D_opt.variables + [steps.rng.state]]


def _assert_bitwise_equal(arrays_a, arrays_b):
    assert len(arrays_a) == len(arrays_b)
    differing = [i for i, (a, b) in enumerate(zip(arrays_a, arrays_b))
                 if a.dtype != b.dtype or a.shape != b.shape
                 or not np.array_equal(np.atleast_1d(a).view(np.uint8), np.atleast_1d(b).view(np.uint8))]
    assert not differing, differing


def _minibatches(steps, reals, lod, phase, k):
    """reals [m, rounds, n, C, h, w] through minibatch_v1, k minibatches per call."""
    rounds, n = int(reals.shape[1]), int(reals.shape[2])
    labels = tf.zeros([k, rounds, n, 0])
    args = tuple(tf.constant(x, tf.float32) for x in (lod, 0.01, 0.02, 0.9))
    for i in range(0, int(reals.shape[0]), k):
        steps.minibatch_v1(reals[i:i + k], labels, *args, labels, phase=phase)


@pytest.mark.parametrize('lod', [0.0, 0.5])
def test_minibatches_in_one_call_equal_one_call_each_to_the_bit(lod):
    """Four minibatches of one round as one compiled call (the demo's v1_minibatches_per_call at
    full resolution) and as four calls leave every weight, Adam slot, beta power and the training
    stream bit for bit the same: the demo's documented FIDs rest on it. (With several rounds per
    minibatch the sums differ in the last bits, and the loop does not group: see
    test_minibatches_per_call_at_full_resolution_give_the_same_run.)"""
    from tf2 import layers as L
    grouped, single = _tiny_steps(), _tiny_steps()
    _copy_all(grouped, single)
    h = 8 // 2 ** int(np.floor(lod))
    reals = tf.constant(np.random.RandomState(2).randint(0, 256, [4, 1, 4, 3, h, h]), tf.uint8)
    _minibatches(grouped, reals, lod, L.lod_phase_key(lod), 4)
    _minibatches(single, reals, lod, L.lod_phase_key(lod), 1)
    _assert_bitwise_equal(_all_state(grouped), _all_state(single))


def _demo_steps():
    """TrainSteps on the demo's networks at 64x64 (training_options.DEMO_NETWORK), as the demo
    trains them, with the same initial state every time (seeded)."""
    from tf2 import checkpoint, networks_stylegan as nets
    from training import loss, optimizers
    from training.training_options import DEMO_NETWORK
    keras.utils.set_random_seed(11)
    G = nets.G_style(num_channels=3, resolution=64, label_size=0, **DEMO_NETWORK)
    D = nets.D_basic(num_channels=3, resolution=64, label_size=0, fmap_base=DEMO_NETWORK['fmap_base'],
                     fmap_max=DEMO_NETWORK['fmap_max'])
    Gs = checkpoint.clone(G, 'Gs')
    G_opt = optimizers.make_optimizer(variables=G.trainable_variables)
    D_opt = optimizers.make_optimizer(variables=D.trainable_variables)
    return tl.TrainSteps(G, D, Gs, G_opt, D_opt, loss.G_logistic_nonsaturating,
                         lambda *a: loss.D_logistic_simplegp(*a, r1_gamma=10.0),
                         tf.random.Generator.from_seed(5), True, [0, 255], [-1, 1])


def test_the_demo_at_64x64_four_minibatches_per_call_to_the_bit(monkeypatch):
    """The demo's own case: its networks at full resolution (lod 0, 4 images, one round), four
    minibatches in one call against one per call, to the bit. And why tl._minibatch_scope exists:
    without it Grappler adds some gradients of the later minibatches in another order (it sorts
    the inputs of the additions it rewrites by op name: D_9 before D_11 by number, D_11 first as
    text) and these networks' weights differ in the last bits (the tiny ones have too few ops to
    show it)."""
    import contextlib
    from tf2 import layers as L
    reals = tf.constant(np.random.RandomState(3).randint(0, 256, [4, 1, 4, 3, 64, 64]), tf.uint8)
    phase = L.lod_phase_key(0.0)
    single = _demo_steps()
    _minibatches(single, reals, 0.0, phase, 1)
    grouped = _demo_steps()
    _minibatches(grouped, reals, 0.0, phase, 4)
    _assert_bitwise_equal(_all_state(grouped), _all_state(single))
    monkeypatch.setattr(tl, '_minibatch_scope', lambda i: contextlib.nullcontext())
    unscoped = _demo_steps()
    _minibatches(unscoped, reals, 0.0, phase, 4)
    with pytest.raises(AssertionError):
        _assert_bitwise_equal(_all_state(unscoped), _all_state(single))


def test_next_phase_schedule_follows_the_demo_schedule():
    """The phase the loop traces ahead is the schedule's next one, at the loop's evaluation
    points (from 0 in steps of 4 minibatches of the schedule's minibatch), for the demo's
    growing: 8x8, fade to 16, 16, fade to 32 at 8 images, 32, fade to 64, 64; none after it."""
    from training.schedule import training_schedule
    from training.training_options import PRESETS
    sched_args, total = dict(PRESETS['demo']['sched']), 40000

    def schedule_at(nimg):
        return training_schedule(nimg, 6, 1, **sched_args)

    def signature(s):
        return tl.v1_step_signature(s, s.rounds)

    points, nimg = [], 0
    while nimg < total:
        points.append(nimg)
        nimg += 4 * schedule_at(nimg).minibatch
    firsts = [p for i, p in enumerate(points)
              if i == 0 or signature(schedule_at(p)) != signature(schedule_at(points[i - 1]))]
    phases = [signature(schedule_at(p)) for p in firsts]
    assert [k[0] for k in phases] == [3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0]
    assert [k[2] for k in phases] == [4, 4, 4, 8, 8, 4, 4]          # minibatch_dict={32: 8}
    assert [k[3] for k in phases] == [3, 2, 2, 1, 1, 0, 0]          # the file of floor(lod)
    for p in points[::5] + firsts:
        nxt = tl.next_phase_schedule(p, total, schedule_at, signature, minibatch_repeats=4)
        later = [f for f in firsts if f > p]
        if later:
            assert nxt == schedule_at(later[0]), p
        else:
            assert nxt is None, p


@pytest.mark.parametrize('minibatches', [1, 2])
def test_a_phase_traced_ahead_on_a_thread_is_not_traced_again(dataset_dir, minibatches):
    """trace_minibatch_v1 from v1_step_specs (what training's PhaseTracer runs on its thread)
    gives the trace that the loop's call with real tensors then runs: no second trace; its warm-up
    (the trace run once on zero stand-ins of the variables, so that TensorFlow instantiates the
    graph on that thread) leaves every real variable as it was; and the step it runs is the same
    to the bit as one traced and first run by the call itself."""
    import threading
    from dnnlib.util import EasyDict
    from tf2 import layers as L
    from training.dataset import TFRecordDataset
    ahead, called = _tiny_steps(), _tiny_steps()
    _copy_all(ahead, called)
    before = _all_state(ahead)
    data = TFRecordDataset(dataset_dir, seed=3)
    lod, rounds, mbg = 0.5, 2, 2
    sched = EasyDict(lod=lod, minibatch_gpu=mbg, rounds=rounds)
    phase = L.lod_phase_key(lod)
    specs = tl.v1_step_specs(data, sched, rounds, pl_labels=False, minibatches=minibatches)
    warmed = []
    thread = threading.Thread(target=lambda: warmed.append(ahead.trace_minibatch_v1(
        specs, phase=phase, D_reg=None, G_reg=None, warm_up=True)))
    thread.start()
    thread.join()
    assert warmed == [True] and ahead.minibatch_v1_tracing_count() == 1
    _assert_bitwise_equal(_all_state(ahead), before)
    data.configure(mbg, lod)
    inputs = []
    for _minibatch in range(minibatches):           # as the loop fetches them
        batches = [data.get_minibatch_tf() for _ in range(rounds)]
        inputs.append((tf.stack([b[0] for b in batches]), tf.stack([b[1] for b in batches]),
                       np.stack([data.get_random_labels_np(mbg) for _ in range(rounds)])))
    args = ((tf.stack([x[0] for x in inputs]), tf.stack([x[1] for x in inputs]))
            + tuple(tf.constant(x, tf.float32) for x in (lod, 0.01, 0.02, 0.9))
            + (tf.constant(np.stack([x[2] for x in inputs])), None))
    outs = [steps.minibatch_v1(*args, D_reg=None, G_reg=None, phase=phase) for steps in (ahead, called)]
    assert ahead.minibatch_v1_tracing_count() == 1 and called.minibatch_v1_tracing_count() == 1
    assert len(outs[0]) == minibatches
    np.testing.assert_array_equal(outs[0][-1][1]['loss'].numpy(), outs[1][-1][1]['loss'].numpy())
    _assert_bitwise_equal(_all_state(ahead), _all_state(called))


def _assert_same_update(ok, out, round_fn, rounds, apply, lrate, fast_vars, ref_vars):
    """The reference: round_fn(r) -> (loss, grads) for each round, the float32 sum in round order,
    the mean, apply; then the compiled step's (ok, out) and weights must agree with it."""
    total, losses = None, []
    for r in range(rounds):
        loss, grads = round_fn(r)
        losses.append(float(loss))
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
    assert bool(ok) and bool(apply([g / rounds for g in total], lrate))
    np.testing.assert_allclose(out['loss'].numpy(), losses, rtol=1e-6)
    for a, b in zip(fast_vars, ref_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Whole runs.

def test_smoke_run_writes_loadable_official_snapshots(reference_run, tmp_path):
    run_dir, summary = reference_run
    assert summary['ticks'] == 2 and summary['kimg'] == 1.024
    for name in ('reals.png', 'fakes_init.png', 'fakes000000.png', 'fakes000001.png', 'stats.jsonl',
                 'network-snapshot-000000.pkl', 'training-state-000000.npz',
                 'network-snapshot-000001.pkl', 'network-final.pkl'):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert any(n.startswith('events.out.tfevents') for n in os.listdir(run_dir))
    assert not [n for n in os.listdir(run_dir) if '.tmp' in n]

    # The official (G, D, Gs) format, readable by dnnlib.legacy_pickle and tf2.load_network.
    pkl = os.path.join(run_dir, 'network-snapshot-000001.pkl')
    G, D, Gs = legacy_pickle.load(pkl)
    assert (G.name, D.name, Gs.name) == ('G', 'D', 'Gs')
    assert G.build_func_name == 'G_style' and D.build_func_name == 'D_basic'
    assert G.static_kwargs['resolution'] == 8 and G.static_kwargs['latent_size'] == 8
    assert float(G.variables['lod']) == 0.0
    assert np.any(G.variables['dlatent_avg'] != 0)          # tracked in training mode
    import tf2
    _, _, Gs_net = tf2.load_network(pkl)
    images = Gs_net.run(np.random.RandomState(0).randn(2, 8), None, truncation_psi=1.0)
    assert images.shape == (2, 3, 8, 8) and np.all(np.isfinite(images))
    import legacy_tf
    _, _, Gs_legacy = legacy_tf.load_network(pkl)
    legacy = Gs_legacy.run(np.random.RandomState(0).randn(2, 8), None, truncation_psi=1.0,
                           randomize_noise=False)
    np.testing.assert_allclose(legacy, Gs_net.run(np.random.RandomState(0).randn(2, 8), None,
                                                  truncation_psi=1.0, randomize_noise=False),
                               atol=2e-3)

    # Gs is a moving average of G: close to G but not equal.
    g, gs = G.all_variables(), Gs.all_variables()
    diffs = [np.abs(g[k] - gs[k]).max() for k in g if k.endswith('weight')]
    assert max(diffs) > 0

    # stats.jsonl: one line per tick with finite losses and the progress fields.
    lines = [json.loads(l) for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert [l['tick'] for l in lines] == [1, 2]
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake',
                'Loss/r1_penalty', 'Progress/lod', 'Timing/sec_per_kimg'):
        assert np.isfinite(lines[-1][key]), key

    # The snapshot feeds the mixing library.
    from editing import mixing
    figures = mixing.write_style_mixing_figure(pkl, str(tmp_path), schemes=('coarse',), log=None)
    assert figures and all(os.path.isfile(f) for f in figures)


class _TracerLog:
    """What the loop asks of its PhaseTracer: the steps it traces for, the signatures submitted
    ahead and, per phase reached, whether its trace was warmed up (None: not traced ahead)."""

    def __init__(self):
        self.steps, self.signatures, self.warmed = [], [], []

    def tracer_class(self):
        log = self

        class Recording(tl.PhaseTracer):
            def __init__(self, steps):
                super().__init__(steps)
                log.steps.append(steps)

            def submit(self, signature, specs, **kwargs):
                log.signatures.append(signature)
                super().submit(signature, specs, **kwargs)

            def wait(self, signature):
                log.warmed.append(super().wait(signature))
                return log.warmed[-1]
        return Recording


def test_training_traces_each_next_phase_ahead_with_the_same_result(reference_run, dataset_dir,
                                                                  tmp_path, monkeypatch):
    """The tiny run grows 4x4 -> fade -> 8x8: the loop traces the fade and the 8x8 phase on the
    tracer's thread before it reaches them, each phase's step is traced once, and a run whose
    phases are all traced by the loop's own calls ends with the same snapshots to the bit."""
    log = _TracerLog()
    Recording = log.tracer_class()
    monkeypatch.setattr(tl, 'PhaseTracer', Recording)
    ahead = str(tmp_path / 'ahead')
    os.makedirs(ahead)
    tl.training_loop(run_dir=ahead, **tiny_kwargs(dataset_dir, 1.0))
    all_steps = log.steps
    assert [signature[0] for signature in log.signatures] == [0.5, 0.0]
    assert log.warmed == [None, False, False]   # one minibatch per call: traced ahead, not warmed up
    assert all_steps[0].minibatch_v1_tracing_count() == 3 and len(all_steps[0]._minibatch_v1_by_phase) == 3

    monkeypatch.setattr(Recording, 'submit', lambda self, *a, **k: None)     # nothing ahead
    inline = str(tmp_path / 'inline')
    os.makedirs(inline)
    tl.training_loop(run_dir=inline, **tiny_kwargs(dataset_dir, 1.0))
    assert all_steps[1].minibatch_v1_tracing_count() == 3
    for kimg in (0, 1):
        assert_same_training_state(ahead, inline, kimg)
        assert_same_training_state(reference_run[0], inline, kimg)


def test_minibatches_per_call_at_full_resolution_give_the_same_run(reference_run, dataset_dir,
                                                                    tmp_path, monkeypatch):
    """With v1_minibatches_per_call 2 the tiny run's 8x8 phase (its full resolution) runs two
    minibatches per compiled call, the 4x4 phase and the fade-in one: the snapshots are those of
    one minibatch per call to the bit. 4 does not divide minibatch_repeats 6: an error."""
    log = _TracerLog()
    monkeypatch.setattr(tl, 'PhaseTracer', log.tracer_class())
    run_dir = str(tmp_path / 'grouped')
    os.makedirs(run_dir)
    tl.training_loop(run_dir=run_dir, **tiny_kwargs(dataset_dir, 1.0, v1_minibatches_per_call=2))
    assert [(s[0], s[-1]) for s in log.signatures] == [(0.5, 1), (0.0, 2)]  # (lod phase, per call)
    assert log.warmed == [None, False, True]    # the 2-minibatch graph instantiated ahead
    for kimg in (0, 1):
        assert_same_training_state(reference_run[0], run_dir, kimg)
    with pytest.raises(ValueError, match='v1_minibatches_per_call 4'):
        tl.training_loop(run_dir=str(tmp_path / 'bad'), **tiny_kwargs(
            dataset_dir, 1.0, v1_minibatches_per_call=4, minibatch_repeats=6))


def test_runs_are_reproducible_and_resume_is_exact(reference_run, dataset_dir, tmp_path):
    """Resume from the kimg-0.5 snapshot (mid fade-in) after a simulated kill mid-snapshot."""
    ref_dir, _ = reference_run
    run_dir = str(tmp_path / '00001-resumed')
    shutil.copytree(ref_dir, run_dir)
    # What a kill during the second snapshot can leave: its sidecar renamed but the pickle not
    # (here: a pickle of that name with other content), plus a temporary file.
    os.remove(os.path.join(run_dir, 'network-final.pkl'))
    with open(os.path.join(run_dir, 'network-snapshot-000001.pkl'), 'wb') as f:
        f.write(open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb').read())
    with open(os.path.join(run_dir, 'network-snapshot-000002.pkl.tmp-123'), 'wb') as f:
        f.write(b'partial')

    latest = tl.find_latest_snapshot(run_dir)
    assert latest is not None and latest[0].endswith('network-snapshot-000000.pkl')
    assert int(latest[1]['cur_nimg']) == 512 and int(latest[1]['cur_tick']) == 1
    assert 0 < float(latest[1]['prev_lod']) < 1                 # mid fade-in

    summary = tl.training_loop(run_dir=run_dir, resume_run=True, **tiny_kwargs(dataset_dir, 1.0))
    assert summary['ticks'] == 2
    assert_same_training_state(ref_dir, run_dir, 1)
    lines = [json.loads(l) for l in open(os.path.join(run_dir, 'stats.jsonl'))]
    assert [l['tick'] for l in lines] == [1, 2]      # the lost tick's line was replaced, not doubled


def test_resume_continues_past_the_old_end(reference_run, dataset_dir, tmp_path):
    ref_dir, _ = reference_run
    run_dir = str(tmp_path / '00002-longer')
    shutil.copytree(ref_dir, run_dir)
    summary = tl.training_loop(run_dir=run_dir, resume_run=True, **tiny_kwargs(dataset_dir, 1.5))
    assert summary['ticks'] == 3 and summary['kimg'] == 1.536
    state = load_pair(run_dir, 1)[1]
    assert int(state['cur_nimg']) == 1536 and int(state['cur_tick']) == 3   # name 000001 reused by tick 3


def test_nan_loss_stops_with_message_and_keeps_snapshot(reference_run, dataset_dir, tmp_path):
    ref_dir, _ = reference_run
    run_dir = str(tmp_path / '00003-nan')
    shutil.copytree(ref_dir, run_dir)
    before = {n: open(os.path.join(run_dir, n), 'rb').read() for n in os.listdir(run_dir)
              if n.startswith(('network-', 'training-state-'))}
    kwargs = tiny_kwargs(dataset_dir, 2.0, D_loss_args=dict(func_name='training.loss.D_logistic_simplegp',
                                                            r1_gamma=float('nan')))
    with pytest.raises(tl.TrainingDivergedError, match=r'Loss/D/loss is nan at kimg 1\.024.*network-snapshot-000001\.pkl'):
        tl.training_loop(run_dir=run_dir, resume_run=True, **kwargs)
    after = {n: open(os.path.join(run_dir, n), 'rb').read() for n in os.listdir(run_dir)
             if n.startswith(('network-', 'training-state-'))}
    assert after == before


# ------------------------------------------------------------------------------------------------
# A real kill -9 of a training process, then resume in a new process: the short version runs in
# CI (one tiny 4x4 network, no growing, two snapshots); the slow one kills the growing 8x8 run
# with R1 of the tests above at a random moment of its second tick.

DRIVER = """
import json, sys
from training import training_loop as tl
kwargs = json.loads(sys.argv[1])
tl.training_loop(**kwargs)
"""


def kill_and_resume(kwargs, max_delay, meanwhile=None):
    """Starts training_loop(**kwargs) in a process, SIGKILLs it up to `max_delay` seconds after its
    first complete snapshot, checks that it died mid-run, and resumes the run in a new process.
    `meanwhile()` runs in this process while a thread watches the child (e.g. the reference run)."""
    import threading
    env = dict(os.environ, PYTHONPATH=REPO_DIR, TF_CPP_MIN_LOG_LEVEL='2')
    run_dir = kwargs['run_dir']
    proc = subprocess.Popen([sys.executable, '-c', DRIVER, json.dumps(kwargs)], cwd=REPO_DIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = os.path.join(run_dir, 'training-state-000000.npz')
    watched = {}

    def watch():
        deadline = time.time() + 600
        while not os.path.isfile(first) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        watched['alive_after_first_snapshot'] = proc.poll() is None
        time.sleep(np.random.uniform(0.0, max_delay))  # somewhere in the second tick (or its snapshot)
        proc.kill()                                    # SIGKILL
        watched['returncode'] = proc.wait()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        if meanwhile is not None:
            meanwhile()
    finally:
        watcher.join()
    assert watched['alive_after_first_snapshot'], 'the training process ended before its first snapshot'
    assert watched['returncode'] == -signal.SIGKILL, 'the training process finished before the kill'
    assert not os.path.isfile(os.path.join(run_dir, 'network-final.pkl'))
    latest = tl.find_latest_snapshot(run_dir)
    assert latest is not None and int(latest[1]['cur_nimg']) in (512, 1024)
    resumed = subprocess.run([sys.executable, '-c', DRIVER, json.dumps(dict(kwargs, resume_run=True))],
                             cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming' in resumed.stdout


def short_kill_kwargs(dataset_dir, run_dir):
    """One tiny 4x4 network trained from the 8x8 dataset's 4x4 file: no growing and no R1, so a
    single cheap step is traced; two ticks of 0.512 kimg, a snapshot after each."""
    return tiny_kwargs(dataset_dir, 1.024, run_dir=run_dir,
                       dataset_args=dict(tfrecord_dir=dataset_dir, resolution=4),
                       sched_args=dict(lod_initial_resolution=4, minibatch_base=8, tick_kimg_base=0.512,
                                       tick_kimg_dict={}),
                       D_loss_args=dict(func_name='training.loss.D_logistic_simplegp', r1_gamma=0.0),
                       grid_args=dict(size='2x1', layout='random'), image_snapshot_ticks=10)


def test_sigkill_then_resume_matches_uninterrupted_run_short(dataset_dir, tmp_path):
    """Exact resume after a real kill -9, in CI: the killed and resumed run equals an
    uninterrupted one bit for bit (networks, Adam states, counters, random streams)."""
    ref_dir, run_dir = str(tmp_path / '00000-reference'), str(tmp_path / '00001-killed')
    os.makedirs(ref_dir)
    os.makedirs(run_dir)
    kwargs = short_kill_kwargs(dataset_dir, run_dir)
    summaries = []
    kill_and_resume(kwargs, max_delay=0.3,      # the uninterrupted reference runs meanwhile
                    meanwhile=lambda: summaries.append(tl.training_loop(**dict(kwargs, run_dir=ref_dir))))
    assert summaries[0]['ticks'] == 2 and os.path.isfile(tl.snapshot_paths(ref_dir, 1)[0])
    assert_same_training_state(ref_dir, run_dir, 1)


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(reference_run, dataset_dir, tmp_path):
    ref_dir, _ = reference_run
    run_dir = str(tmp_path / '00004-killed')
    os.makedirs(run_dir)
    kill_and_resume(dict(tiny_kwargs(dataset_dir, 1.0), run_dir=run_dir), max_delay=1.0)
    assert_same_training_state(ref_dir, run_dir, 1)


def test_stats_collector_and_truncation(tmp_path):
    from training.stats import StatsCollector, truncate_stats_file
    stats = StatsCollector(str(tmp_path), tensorboard=False)
    stats.report('Loss/a', 1.0)
    stats.report('Loss/a', np.array([2.0, 3.0]))       # every element counts: mean of 1, 2, 3
    stats.report('Loss/b', np.float32(5.0))
    assert stats.flush(1.5, extra={'tick': 1}) == {'Loss/a': 2.0, 'Loss/b': 5.0}
    stats.report('Loss/a', float('nan'))
    stats.flush(3.0, extra={'tick': 2})
    assert np.isnan(stats.mean('Loss/a'))              # cleared by flush
    path = tmp_path / 'stats.jsonl'
    lines = [json.loads(l) for l in open(path)]
    assert lines[0]['kimg'] == 1.5 and lines[0]['tick'] == 1 and lines[0]['Loss/b'] == 5.0
    assert lines[1]['Loss/a'] is None                  # NaN written as null (valid JSON)
    with open(path, 'a') as f:
        f.write('{"kimg": 4.0, "tick": 3, "Loss/a"')   # a line cut short by a kill
    truncate_stats_file(str(tmp_path), 2.0)
    assert [json.loads(l)['tick'] for l in open(path)] == [1]


def test_pre_move_module_names_still_resolve():
    # Keyword dicts written before the training modules left tf2/ name them 'tf2.loss.X'.
    from training import loss, optimizers
    assert tl._obj_by_name('tf2.loss.D_logistic_r1') is loss.D_logistic_r1
    assert tl._obj_by_name('training.loss.D_logistic_r1') is loss.D_logistic_r1
    assert tl._obj_by_name('tf2.optimizers.make_optimizer') is optimizers.make_optimizer
