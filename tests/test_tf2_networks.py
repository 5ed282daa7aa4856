"""tf2 StyleGAN v1 networks: official variables, every structure option, fused resampling.

Checks against the official 1024 px variable list, hand-computed identities of the fused ops and
the independent plain-NumPy reference (tests/reference_sg1_numpy.py) for networks the fixture
does not cover (fused up/down-scaling at >= 128 px, no noise, const_input_layer=False, ...).
"""

import numpy as np
import pytest
import tensorflow as tf

import reference_sg1_numpy as R1
from conftest import rel, small_net_kwargs
from fixture_checks import assert_official_variables
from tf2 import checkpoint
from tf2 import layers as L
from tf2 import networks_stylegan as nets

TOL = 1e-4


def _randomize(model, seed=0):
    """Moves every variable away from its init so that every path matters."""
    rng = np.random.RandomState(seed)
    for name, v in model.official_variables().items():
        if name.endswith('lod'):
            continue
        v.assign(np.asarray(rng.randn(*v.shape), np.float32) * (0.3 if 'bias' in name else 1.0))


# ------------------------------------------------------------------------------------------------
# Variables.

def test_ffhq1024_variables_match_official_list():
    G = nets.G_style(name='G', num_channels=3, resolution=1024, label_size=0)
    D = nets.D_basic(name='D', num_channels=3, resolution=1024, label_size=0)
    assert_official_variables('sg1_ffhq1024_variables.txt', G.own_official_variables(),
                              G.mapping.own_official_variables(),
                              G.synthesis.own_official_variables(), D.own_official_variables())
    assert list(G.components) == ['synthesis', 'mapping']
    assert (G.synthesis.name, G.mapping.name) == ('G_synthesis', 'G_mapping')
    count = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_variables)  # noqa: E731
    assert count(G) == 26219627 and count(D) == 23087249
    # Keras sees exactly the same variables (no duplicates, none missing).
    assert {id(v) for v in G.variables} == {id(v) for v in G.official_variables().values()}
    assert len(G.variables) == len(G.official_variables())


def test_static_kwargs_recorded_like_official():
    G = nets.G_style(name='G', num_channels=3, resolution=32, label_size=0, fmap_base=64,
                     truncation_psi=0.5)
    assert G.static_kwargs == dict(num_channels=3, resolution=32, label_size=0, fmap_base=64,
                                   truncation_psi=0.5)
    # components get G_style's remaining kwargs; the mapping gets dlatent_broadcast first
    assert 'truncation_psi' not in G.synthesis.static_kwargs
    assert list(G.mapping.static_kwargs)[0] == 'dlatent_broadcast'
    assert G.mapping.static_kwargs['dlatent_broadcast'] == 8
    assert nets.resolved_kwargs(G)['latent_size'] == 512
    assert nets.resolved_kwargs(G)['truncation_psi'] == 0.5


@pytest.mark.parametrize('kwargs,present,absent', [
    (dict(use_noise=False), [], ['noise0', '4x4/Const/Noise/weight']),
    (dict(use_styles=False), [], ['4x4/Conv/StyleMod/weight']),
    (dict(const_input_layer=False), ['4x4/Dense/weight', '4x4/Dense/bias'], ['4x4/Const/const']),
    (dict(structure='fixed'), ['ToRGB_lod0/weight'], ['ToRGB_lod1/weight']),
])
def test_synthesis_options_variables(kwargs, present, absent):
    syn = nets.G_synthesis(resolution=16, fmap_base=32, fmap_max=8, dlatent_size=6, **kwargs)
    names = list(syn.own_official_variables())
    for n in present:
        assert n in names
    for n in absent:
        assert n not in names
    if kwargs.get('use_styles') is False:
        assert syn.input_shapes == [[None, 1, 6]]


# ------------------------------------------------------------------------------------------------
# Fused resampling identities (spec 3.3, 3.4).

def test_fused_downscale_equals_conv_then_average():
    rng = np.random.RandomState(1)
    x = tf.constant(rng.randn(2, 8, 8, 3), tf.float32)
    w = tf.constant(rng.randn(3, 3, 3, 5), tf.float32)
    fused = L.fused_conv2d_downscale2d(x, w, 'NHWC')
    plain = L.downscale2d(L.conv2d(x, w, 'NHWC'), 'NHWC')
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), atol=1e-5)


def test_fused_upscale_equals_nearest_then_conv():
    """The official transposed conv equals nearest x2 + 'SAME' conv with the flipped kernel."""
    rng = np.random.RandomState(2)
    x = tf.constant(rng.randn(2, 5, 5, 3), tf.float32)
    w = rng.randn(3, 3, 3, 4).astype(np.float32)
    fused = L.fused_upscale2d_conv2d(x, tf.constant(w), 'NHWC')
    plain = L.conv2d(L.upscale2d(x, 'NHWC'), tf.constant(w[::-1, ::-1]), 'NHWC')
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), atol=1e-5)
    # and it is exactly spec 3.3's out[2i+k-1] += x[i] * W4[k] (independent NumPy loop)
    ref = R1.fused_upconv(np.transpose(x.numpy(), [0, 3, 1, 2]).astype(np.float64), w)
    np.testing.assert_allclose(np.transpose(fused.numpy(), [0, 3, 1, 2]), ref, atol=1e-5)


@pytest.mark.parametrize('resample,size', [('up', 8), ('up', 16), ('up', 32),
                                           ('down', 16), ('down', 32), ('down', 64)])
def test_non_fused_resampling_runs_strided_from_32px_with_the_same_values(resample, size):
    """A non-fused Conv0_up / Conv1_down is nearest x2 + conv / conv + 2x2 average at every size;
    from 32 px on (the up-conv's output, the down-conv's input) it runs as one stride-2 conv."""
    rng = np.random.RandomState(7)
    x = tf.constant(rng.randn(2, size, size, 3), tf.float32)
    layer = L.Conv2d('Conv', 3, 3, 4, resample=resample)
    layer.weight.assign(rng.randn(3, 3, 3, 4))
    w = layer.runtime_weight()
    if resample == 'up':
        plain = L.conv2d(L.upscale2d(x, 'NHWC'), w, 'NHWC')
    else:
        plain = L.downscale2d(L.conv2d(x, w, 'NHWC'), 'NHWC')
    np.testing.assert_allclose(layer(x).numpy(), plain.numpy(), atol=1e-5)
    graph = tf.function(layer).get_concrete_function(x).graph
    op_types = {op.type for op in graph.get_operations()}
    strided = ('Conv2DBackpropInput' in op_types if resample == 'up' else 'AvgPool' not in op_types)
    assert strided == ((size * 2 if resample == 'up' else size) >= 32), op_types


def test_minibatch_stddev_groups_are_strided():
    rng = np.random.RandomState(3)
    x = rng.randn(8, 4, 2, 2).astype(np.float32)           # NCHW, N=8, group 4 -> M=2
    out = L.minibatch_stddev(tf.constant(x.transpose(0, 2, 3, 1)), 4, 1, 'NHWC').numpy()
    for i in range(8):
        members = x[i % 2::2]                                # sample i is in group i mod M
        expect = np.sqrt(members.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[i, :, :, -1], expect, rtol=1e-5)
    np.testing.assert_array_equal(out[..., :4], x.transpose(0, 2, 3, 1))


# ------------------------------------------------------------------------------------------------
# Against the independent NumPy reference (fused paths, options).

SMALL = small_net_kwargs()


def _gs_state(G):
    return checkpoint.state_from_model(G)


@pytest.mark.parametrize('resolution,extra', [
    (128, {}),                                             # fused up-conv at 128
    (128, dict(use_noise=False, const_input_layer=False, use_pixel_norm=True)),
    (32, dict(fused_scale=True)),                          # fused forced below 128
])
def test_generator_matches_numpy_reference(resolution, extra):
    G = nets.G_style(name='Gs', resolution=resolution, **SMALL, **extra)
    _randomize(G)
    state = _gs_state(G)
    z = np.random.RandomState(5).randn(2, 8)
    ref_img, ref_dl = R1.G_style(state, z, truncation_psi=0.7, truncation_cutoff=8)
    out = G(z, None, truncation_psi=0.7, truncation_cutoff=8, randomize_noise=False).numpy()
    assert rel(out, ref_img) <= TOL


@pytest.mark.parametrize('resolution,extra', [(128, {}), (32, dict(fused_scale=True))])
def test_discriminator_matches_numpy_reference(resolution, extra):
    D = nets.D_basic(name='D', resolution=resolution, num_channels=3, fmap_base=64, fmap_max=8,
                     **extra)
    _randomize(D)
    images = np.random.RandomState(6).randn(4, 3, resolution, resolution)
    ref = R1.D_basic(checkpoint.state_from_model(D), images)
    assert rel(D(images).numpy(), ref) <= TOL


def test_lod_128_generator_and_discriminator_match_reference():
    G = nets.G_style(name='Gs', resolution=128, **SMALL)
    D = nets.D_basic(name='D', resolution=128, num_channels=3, fmap_base=64, fmap_max=8)
    _randomize(G)
    _randomize(D)
    G.lod.assign(1.6)
    D.lod.assign(1.6)
    z = np.random.RandomState(7).randn(2, 8)
    ref_img, _ = R1.G_style(_gs_state(G), z, truncation_psi=1.0)
    assert rel(G(z, None, truncation_psi=1.0, randomize_noise=False).numpy(), ref_img) <= TOL
    images = np.random.RandomState(8).randn(4, 3, 128, 128)
    ref = R1.D_basic(checkpoint.state_from_model(D), images)
    assert rel(D(images).numpy(), ref) <= TOL


# ------------------------------------------------------------------------------------------------
# Labels, noise, training mode.

def test_labels_in_mapping_and_discriminator():
    kw = dict(SMALL, label_size=3, resolution=8)
    G = nets.G_style(name='G', **kw)
    D = nets.D_basic(name='D', resolution=8, num_channels=3, label_size=3, fmap_base=64,
                     fmap_max=8)
    _randomize(G)
    _randomize(D)
    names = list(G.mapping.own_official_variables())
    assert names[0] == 'LabelConcat/weight' and G.mapping.own_official_variables()[
        'Dense0/weight'].shape == (16, 8)
    rng = np.random.RandomState(9)
    z, labels = rng.randn(4, 8).astype(np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    v = {k: np.float64(val.numpy()) for k, val in G.mapping.own_official_variables().items()}
    x = np.concatenate([z, labels @ v['LabelConcat/weight']], axis=1)
    x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
    for i in range(2):
        w = v[f'Dense{i}/weight'] * np.sqrt(2) / np.sqrt(v[f'Dense{i}/weight'].shape[0]) * 0.01
        x = R1.lrelu(x @ w + v[f'Dense{i}/bias'] * 0.01)
    out = G.mapping(z, labels).numpy()
    assert out.shape == (4, 4, 8)
    assert rel(out[:, 0], x) <= TOL and rel(out[:, 3], x) <= TOL
    # D: the score is the label-selected column of Dense1's output
    images = rng.randn(4, 3, 8, 8).astype(np.float32)
    columns = np.concatenate([D(images, np.eye(3, dtype=np.float32)[[j] * 4]).numpy()
                              for j in range(3)], axis=1)               # [4, 3]
    picked = D(images, labels).numpy()
    assert picked.shape == (4, 1)
    np.testing.assert_allclose(picked[:, 0], columns[np.arange(4), [0, 1, 2, 0]], rtol=1e-5)
    assert len(set(np.round(columns[0], 4))) == 3


def test_randomize_noise_and_noise_vars():
    G = nets.G_style(name='G', resolution=16, **SMALL)
    _randomize(G)
    z = np.random.RandomState(0).randn(2, 8).astype(np.float32)
    a = G(z, None, randomize_noise=True).numpy()
    b = G(z, None, randomize_noise=True).numpy()
    c = G(z, None, randomize_noise=False).numpy()
    d = G(z, None, randomize_noise=False).numpy()
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(c, d)
    G.synthesis.noise_vars[3].assign(np.zeros([1, 1, 8, 8], np.float32))
    assert not np.allclose(G(z, None, randomize_noise=False).numpy(), c)


def test_training_mode_updates_dlatent_avg_and_mixes_styles():
    G = nets.G_style(name='G', resolution=16, **SMALL)
    _randomize(G)
    G.dlatent_avg.assign(np.zeros(8, np.float32))
    z = np.random.RandomState(1).randn(4, 8).astype(np.float32)
    w0 = G.mapping(z).numpy()[:, 0].mean(axis=0)
    G(z, None, is_training=True, style_mixing_prob=None)
    np.testing.assert_allclose(G.dlatent_avg.numpy(), w0 * 0.005, rtol=1e-4, atol=1e-7)
    # style mixing with probability 1 changes the output vs. no mixing (noise off for both)
    tf.random.set_seed(0)
    mixed = G(z, None, is_training=True, style_mixing_prob=1.0, randomize_noise=False).numpy()
    plain = G(z, None, is_training=True, style_mixing_prob=0.0, randomize_noise=False).numpy()
    assert not np.allclose(mixed, plain)
    # training mode never truncates: equals psi=1 inference
    np.testing.assert_allclose(plain, G(z, None, truncation_psi=1.0,
                                        randomize_noise=False).numpy(), atol=1e-5)


def test_second_order_gradients_through_lod_conditions():
    """R1-style penalty (gradient of a gradient) works inside tf.function at a fractional lod."""
    D = nets.D_basic(name='D', resolution=8, num_channels=3, fmap_base=32, fmap_max=8)
    G = nets.G_style(name='G', resolution=8, **SMALL)
    D.lod.assign(0.5)
    G.lod.assign(0.5)
    reals = tf.constant(np.random.RandomState(0).randn(4, 3, 8, 8), tf.float32)
    z = tf.constant(np.random.RandomState(1).randn(4, 8), tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(reals)
                scores = tf.reduce_sum(D(reals))
            g = inner.gradient(scores, reals)
            penalty = tf.reduce_sum(tf.square(g))
            fake_loss = tf.reduce_mean(D(G(z, is_training=True)))
            loss = penalty + fake_loss
        return outer.gradient(loss, D.trainable_variables + G.trainable_variables)

    grads = step()
    used = [g for g in grads if g is not None]
    assert len(used) > len(grads) // 2
    assert all(np.isfinite(g.numpy()).all() for g in used)
    d_vars = D.official_variables()
    d_grads = {id(v): g for v, g in zip(D.trainable_variables, grads)}
    assert np.any(d_grads[id(d_vars['FromRGB_lod1/weight'])].numpy() != 0)  # lod blend uses it



def test_no_styles_matches_numpy_reference():
    G = nets.G_style(name='Gs', resolution=16, use_styles=False, **SMALL)
    _randomize(G)
    assert G.mapping.output_shapes == [[None, 1, 8]]
    z = np.random.RandomState(4).randn(2, 8)
    ref_img, _ = R1.G_style(_gs_state(G), z, truncation_psi=1.0)
    assert rel(G(z, None, truncation_psi=1.0, randomize_noise=False).numpy(), ref_img) <= TOL


def test_fixed_structure_equals_recursive_at_lod0():
    G = nets.G_style(name='G', resolution=16, **SMALL)
    D = nets.D_basic(name='D', resolution=16, num_channels=3, fmap_base=64, fmap_max=8)
    Gf = nets.G_style(name='G', resolution=16, structure='fixed', **SMALL)
    Df = nets.D_basic(name='D', resolution=16, num_channels=3, fmap_base=64, fmap_max=8,
                      structure='fixed')
    _randomize(G)
    _randomize(D)
    checkpoint.copy_vars(Gf, G)
    checkpoint.copy_vars(Df, D)
    z = np.random.RandomState(3).randn(2, 8).astype(np.float32)
    np.testing.assert_allclose(Gf(z, None, randomize_noise=False).numpy(),
                               G(z, None, randomize_noise=False).numpy(), atol=1e-5)
    images = np.random.RandomState(4).randn(4, 3, 16, 16).astype(np.float32)
    np.testing.assert_allclose(Df(images).numpy(), D(images).numpy(), rtol=1e-5, atol=1e-5)
