"""Static lod phases (tf2/layers.py static_lod_phase): the same numbers as the tf.cond structure.

Training traces its steps once per lod phase with the taken branches in Python. For every lod of
a phase, the images, scores, R1 gradient (w.r.t. the reals) and the gradient of the R1 penalty
w.r.t. D's variables (the double gradient that made the tf.cond trace slow) must match the
tf.cond graph, for v1 and for StyleGAN2's progressive config (revised synthesis + D_stylegan).
"""

import numpy as np
import pytest
import tensorflow as tf

from conftest import d_kwargs, small_net_kwargs
from tf2 import layers as L
from tf2 import networks_stylegan as nets
from tf2 import networks_stylegan2 as nets2

RES = 16                          # G levels 1..0, D levels 2..0
LODS = [0.0, 0.375, 1.0, 1.625, 2.0]
TOL = 1e-4                        # README, numerical fidelity


def _randomize(model, seed):
    rng = np.random.RandomState(seed)
    for name, v in model.official_variables().items():
        if not name.endswith('lod'):
            v.assign(np.asarray(rng.randn(*v.shape), np.float32) * 0.3)


def _build(kind, impl='ref'):
    # StyleGAN2 with impl='ref': TensorFlow cannot take R1's double gradient through the tf.cond
    # nest when the compiled ops' custom gradients sit inside it (cond_v2 _IfGrad assertion), so
    # the tf.cond reference is only computable with the reference ops.
    kw = small_net_kwargs(RES)
    if kind == 'v1':
        G, D = nets.G_style(**kw), nets.D_basic(**d_kwargs(kw))
    else:
        G = nets2.G_main(synthesis_func='G_synthesis_stylegan_revised', impl=impl, **kw)
        D = nets2.D_stylegan(impl=impl, **d_kwargs(kw))
    _randomize(G, 1)
    _randomize(D, 2)
    return G, D


_NETS = {}


@pytest.fixture(scope='module', params=['v1', 'stylegan2_revised'])
def networks(request):
    if request.param not in _NETS:
        _NETS[request.param] = _build(request.param)
    return _NETS[request.param]


_STEPS = {}


def _step(G, D, static):
    """One tf.function per (networks, phase key): the tf.cond one is traced once for all lods."""
    key = (id(G), None if static is None else L.lod_phase_key(static))
    if key not in _STEPS:
        _STEPS[key] = _make_step(G, D, static)
    return _STEPS[key]


def _scores_and_r1(D, reals):
    """D's scores of the reals and their gradient w.r.t. the reals (R1's), recorded on any tape
    around the call, so that an outer tape can differentiate the penalty (the double gradient)."""
    with tf.GradientTape() as inner:
        inner.watch(reals)
        scores = D(reals, None)
        total = tf.reduce_sum(scores)
    return scores, inner.gradient(total, reals)


def _make_step(G, D, static):
    """A function of (lod, latents, reals) -> fakes, scores, R1 grads, dR1/dD; one trace per key."""
    def run(lod, latents, reals):
        for net in (G, D):
            net.lod.assign(lod)
        with L.static_lod_phase(static):
            fakes = G(latents, None, is_training=True, randomize_noise=False)
            with tf.GradientTape() as outer:
                real_scores, r1_grads = _scores_and_r1(D, reals)
                penalty = tf.reduce_sum(tf.square(r1_grads))
            d_grads = outer.gradient(penalty, D.trainable_variables)
            # Variables off the taken path (FromRGB of other levels) get None without tf.cond;
            # training uses zeros for them (training_loop._zeros_for_none), and so does this.
            d_grads = [tf.zeros_like(v) if g is None else g
                       for g, v in zip(d_grads, D.trainable_variables)]
            fake_scores = D(fakes, None)
        return [fakes, real_scores, fake_scores, r1_grads] + d_grads
    return tf.function(run)


@pytest.mark.parametrize('lod', LODS)
def test_static_phase_matches_tf_cond(networks, lod):
    G, D = networks
    rng = np.random.RandomState(3)
    latents = tf.constant(rng.randn(4, 8), tf.float32)
    reals = tf.constant(rng.randn(4, 3, RES, RES), tf.float32)
    lod_t = tf.constant(lod, tf.float32)
    ref = _step(G, D, None)(lod_t, latents, reals)
    out = _step(G, D, lod)(lod_t, latents, reals)
    assert len(ref) == len(out)
    for i, (a, b) in enumerate(zip(ref, out)):
        a, b = a.numpy(), b.numpy()
        # The README's tolerance: images and R1 gradients image by image, scores and D's
        # gradients over the whole tensor (the graphs differ in kernel fusion, not in math).
        pairs = zip(a, b) if i in (0, 3) else [(a, b)]
        for j, (x, y) in enumerate(pairs):
            assert np.max(np.abs(x - y)) <= TOL * max(float(np.max(np.abs(x))), 1e-6), (lod, i, j)


def test_one_trace_serves_a_phase_and_has_no_cond(networks):
    G, D = networks
    latents = tf.zeros([4, 8])          # the shapes of the test above: no new traces
    reals = tf.zeros([4, 3, RES, RES])
    step = _step(G, D, 1.5)
    graph = step.get_concrete_function(tf.constant(1.5), latents, reals).graph
    op_types = {op.type for op in graph.get_operations()}
    assert not op_types & {'If', 'StatelessIf'}
    # Every lod of the phase (1, 2) runs through the phase-key graph and equals tf.cond's result.
    ref = _step(G, D, None)
    for lod in (1.25, 1.75):
        a = ref(tf.constant(lod), latents, reals)[0].numpy()
        b = step(tf.constant(lod), latents, reals)[0].numpy()
        assert np.max(np.abs(a - b)) <= TOL * np.max(np.abs(a))


@pytest.mark.parametrize('lod, key, g_branches, d_branches', [
    (0.0, 0.0, (0, False), (0, False)),
    (0.25, 0.5, (0, True), (0, True)),
    (1.0, 1.0, (1, False), (1, False)),
    (2.5, 2.5, (2, True), (2, True)),
    (3.0, 3.0, (2, True), (3, False)),       # 4x4 only: G's top level fades by lod - 2 = 1
    (1.0 + 1e-9, 1.0, (1, False), (1, False)),   # float32, as the graph compares
])
def test_phase_keys_and_branches(lod, key, g_branches, d_branches):
    assert L.lod_phase_key(lod) == key
    with L.static_lod_phase(lod):
        assert L.lod_branches(2) == g_branches and L.lod_branches(3) == d_branches
    assert L.lod_branches(2) is None


def test_static_phase_trains_stylegan2_with_compiled_ops():
    """The static phase is also what makes R1 of a progressive StyleGAN2 traceable with the
    compiled ops: same values as the reference ops' tf.cond graph."""
    if 'stylegan2_revised' not in _NETS:
        _NETS['stylegan2_revised'] = _build('stylegan2_revised')
    G_ref, D_ref = _NETS['stylegan2_revised']
    G, D = _build('stylegan2_revised', impl=None)
    for src, dst in ((G_ref, G), (D_ref, D)):
        for name, v in src.official_variables().items():
            dst.official_variables()[name].assign(v)
    rng = np.random.RandomState(4)
    latents = tf.constant(rng.randn(4, 8), tf.float32)
    reals = tf.constant(rng.randn(4, 3, RES, RES), tf.float32)
    lod = tf.constant(1.5)
    ref = _step(G_ref, D_ref, None)(lod, latents, reals)
    out = _step(G, D, 1.5)(lod, latents, reals)
    for a, b in zip(ref, out):
        assert np.max(np.abs(a.numpy() - b.numpy())) <= TOL * max(float(np.max(np.abs(a.numpy()))), 1e-6)


def test_summed_kernel_gradients_equal_the_reference_to_the_bit(monkeypatch):
    """The resampling convolutions' 4x4 kernel (tf2/layers.py _summed_4x4_kernel) has its own
    gradient (four 3x3 windows of the 4x4 gradient added, where the reference's graph pads four
    times, adds and crops) and the up-conv flips its kernel with tf.reverse (_flip_hw), whose
    gradient is cheaper than that of the reference's strided slice; every
    gradient of a compiled (Grappler-optimised) D step with R1 and of a G step must stay the
    reference's to the bit, or the deterministic demo's documented FIDs would change. At 32x32
    both G's up-conv and D's down-conv take the strided 4x4 form (STRIDED_RESAMPLE_MIN_SIZE)."""
    res = 32
    assert L.STRIDED_RESAMPLE_MIN_SIZE <= res
    kw = small_net_kwargs(res)
    G, D = nets.G_style(**kw), nets.D_basic(**d_kwargs(kw))
    _randomize(G, 4)
    _randomize(D, 5)
    rng = np.random.RandomState(6)
    latents = tf.constant(rng.randn(4, 8), tf.float32)
    reals = tf.constant(rng.randn(4, 3, res, res), tf.float32)
    # G without is_training and with fixed noise: no random op, so the two traces see the same
    # numbers.

    def grads():
        def run(latents, reals):
            with L.static_lod_phase(0.0):
                with tf.GradientTape() as outer:
                    real_scores, r1 = _scores_and_r1(D, reals)
                    fakes = G(latents, None, randomize_noise=False)
                    loss = (tf.reduce_sum(tf.square(r1)) + tf.reduce_sum(real_scores)
                            - tf.reduce_sum(D(fakes, None)))
                d_grads = outer.gradient(loss, D.trainable_variables)
                with tf.GradientTape() as tape:
                    fakes = G(latents, None, randomize_noise=False)
                    g_loss = tf.reduce_sum(tf.nn.softplus(-D(fakes, None)))
                g_grads = tape.gradient(g_loss, G.trainable_variables)
            return [g for g in d_grads + g_grads if g is not None]
        return [g.numpy() for g in tf.function(run)(latents, reals)]

    fast = grads()
    monkeypatch.setattr(L, '_summed_4x4_kernel', L._summed_4x4_kernel_reference)
    monkeypatch.setattr(L, '_flip_hw', L._flip_hw_reference)
    ref = grads()
    assert len(fast) == len(ref) > 0
    names = [v.path for v in D.trainable_variables + G.trainable_variables]
    differing = [i for i, (a, b) in enumerate(zip(fast, ref))
                 if not np.array_equal(a.view(np.uint32), b.view(np.uint32))]
    assert not differing, [names[i] for i in differing]
