"""legacy_tf.networks_stylegan: variable layout, structures, fused paths and options.

References: the official variable list of the 1024 px networks (shared/spec), the plain-NumPy
StyleGAN forward pass in tests/reference_sg1_numpy.py (written from the spec, no shared code),
hand-derived identities of the fused resampling convolutions, and NVIDIA's fixture outputs.
"""

import numpy as np
import pytest

from conftest import rel
from conftest import randomize_tflib_net as randomize
from fixture_checks import (assert_official_variables, assert_training_mode_dlatent_avg_and_mixing,
                            fixture_networks, fresh_tf_context, own_tflib_graph)  # noqa: F401

import tensorflow as tf  # noqa: E402

import legacy_tf  # noqa: E402
from legacy_tf import networks_stylegan as nets_v1  # noqa: E402
from legacy_tf import tflib  # noqa: E402

v1 = tf.compat.v1
TOL = 1e-4


own_graph = own_tflib_graph()     # this module's networks in a graph of their own


def layout(net):
    return [(n, v.shape.as_list(), bool(v.trainable)) for n, v in net.own_vars.items()]


# ------------------------------------------------------------------------------------------------
# Variable layout.

def test_variables_match_official_1024(fresh_tf_context):
    G = tflib.Network('G', func_name='G_style', num_channels=3, resolution=1024, label_size=0)
    D = tflib.Network('D', func_name='legacy_tf.networks_stylegan.D_basic', num_channels=3,
                      resolution=1024, label_size=0)
    assert_official_variables('sg1_ffhq1024_variables.txt', G.own_vars,
                              G.components.mapping.own_vars, G.components.synthesis.own_vars,
                              D.own_vars)
    count = lambda net: sum(int(np.prod(v.shape.as_list())) for v in net.trainables.values())
    assert count(G) == 26219627 and count(D) == 23087249      # spec 3.5
    assert G.input_shape == [None, 512] and G.output_shape == [None, 3, 1024, 1024]
    assert G.components.synthesis.input_shape == [None, 18, 512]
    assert G.components.mapping.static_kwargs == {'dlatent_broadcast': 18, 'num_channels': 3,
                                                   'resolution': 1024, 'label_size': 0}
    assert list(G.vars)[:3] == ['lod', 'dlatent_avg', 'G_synthesis/lod']


def test_option_variables():
    G = tflib.Network('G', func_name='G_style', num_channels=1, resolution=8, label_size=3,
                      latent_size=6, dlatent_size=5, mapping_fmaps=4, mapping_layers=2,
                      fmap_base=16, fmap_max=4, use_noise=False, use_styles=False,
                      const_input_layer=False)
    syn = layout(G.components.synthesis)
    assert not any('noise' in n or 'Noise' in n or 'StyleMod' in n for n, _, _ in syn)
    assert ('4x4/Dense/weight', [5, 64], True) in syn
    assert G.components.synthesis.input_shape == [None, 1, 5]
    mapping = layout(G.components.mapping)
    assert mapping[0] == ('LabelConcat/weight', [3, 6], True)
    assert mapping[1] == ('Dense0/weight', [12, 4], True)


# ------------------------------------------------------------------------------------------------
# Fused resampling convolutions (spec 3.3/3.4) through their identities.

def _var(name):
    scope = v1.get_variable_scope().name
    return next(v for v in v1.global_variables() if v.name == f'{scope}/{name}:0')


def _run_ops(build):
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as sess:
        out, assigns = build()
        sess.run(v1.global_variables_initializer())
        sess.run(assigns)
        return sess.run(out)


def _fused_and_plain(layer, x, w, w_plain):
    """``layer`` (4 maps, 3x3 kernel, gain 1, no wscale) on x with fused_scale=True and weight w,
    and with fused_scale=False and weight w_plain."""
    def build():
        kw = dict(gain=1.0, use_wscale=False)
        with v1.variable_scope('fused'):
            fused = layer(tf.constant(x), 4, 3, fused_scale=True, **kw)
            assign_f = _var('weight').assign(w)
        with v1.variable_scope('plain'):
            plain = layer(tf.constant(x), 4, 3, fused_scale=False, **kw)
            assign_p = _var('weight').assign(w_plain)
        return (fused, plain), [assign_f, assign_p]
    return _run_ops(build)


def test_fused_upconv_identity():
    """conv2d_transpose with the summed 4x4 kernel == nearest 2x upscale then 3x3 conv.

    From out[2i+k-1] += x[i] * W4[k] (spec 3.3), output 2j receives x[j-1]*w[2] and
    x[j]*(w[0]+w[1]), which is the SAME conv of the upscaled image with the kernel flipped
    spatially. So the identity holds with w[::-1, ::-1].
    """
    rnd = np.random.RandomState(1)
    x = rnd.randn(2, 5, 6, 3).astype(np.float32)      # NHWC
    w = rnd.randn(3, 3, 3, 4).astype(np.float32)
    fused, plain = _fused_and_plain(nets_v1._upscale2d_conv2d, x, w, w[::-1, ::-1])
    assert fused.shape == (2, 10, 12, 4)
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-5)


def test_fused_downconv_identity():
    """Stride-2 conv with 0.25 x the summed 4x4 kernel == 3x3 SAME conv then 2x2 average."""
    rnd = np.random.RandomState(2)
    x = rnd.randn(2, 8, 6, 3).astype(np.float32)
    w = rnd.randn(3, 3, 3, 4).astype(np.float32)
    fused, plain = _fused_and_plain(nets_v1._conv2d_downscale2d, x, w, w)
    assert fused.shape == (2, 4, 3, 4)
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Whole networks against the independent NumPy reference (fused paths at 128 px, options).

import reference_sg1_numpy as R1  # noqa: E402


@pytest.fixture(scope='module')
def nets128():
    kw = dict(num_channels=3, resolution=128, label_size=0, latent_size=8, dlatent_size=8,
              mapping_fmaps=8, mapping_layers=2, fmap_base=128, fmap_max=8)
    G = tflib.Network('G', func_name='G_style', **kw)
    D = tflib.Network('D', func_name='D_basic', **kw)
    randomize(G, 10)
    randomize(D, 11)
    return G, D


@pytest.mark.parametrize('lod', [0.0, 1.6])
def test_fused_128_generator_matches_reference(nets128, lod):
    G, _D = nets128
    z = np.random.RandomState(3).randn(2, 8)
    G.set_var('lod', lod)
    try:
        out = G.run(z, None, truncation_psi=0.7, truncation_cutoff=3, randomize_noise=False)
        state = G.to_state()
    finally:
        G.set_var('lod', 0.0)
    expected, _ = R1.G_style(state, z, truncation_psi=0.7, truncation_cutoff=3)
    assert out.shape == (2, 3, 128, 128)
    assert rel(out, expected) <= TOL


@pytest.mark.parametrize('lod', [0.0, 0.4, 2.0])
def test_fused_128_discriminator_matches_reference(nets128, lod):
    _G, D = nets128
    images = np.random.RandomState(4).randn(4, 3, 128, 128)
    D.set_var('lod', lod)
    try:
        out = D.run(images, None)
        state = D.to_state()
    finally:
        D.set_var('lod', 0.0)
    assert rel(out, R1.D_basic(state, images)) <= TOL


@pytest.mark.parametrize('options', [
    dict(use_noise=False, const_input_layer=False, use_pixel_norm=True, use_instance_norm=False),
    dict(use_styles=False, fused_scale=True),
])
def test_options_match_reference(options):
    kw = dict(num_channels=3, resolution=16, label_size=0, latent_size=8, dlatent_size=8,
              mapping_fmaps=8, mapping_layers=2, fmap_base=64, fmap_max=8, **options)
    G = tflib.Network('G', func_name='G_style', **kw)
    randomize(G, 5)
    z = np.random.RandomState(6).randn(3, 8)
    out = G.run(z, None, truncation_psi=1.0, randomize_noise=False)
    expected, _ = R1.G_style(G.to_state(), z, truncation_psi=1.0)
    assert rel(out, expected) <= TOL


def test_labels():
    kw = dict(num_channels=3, resolution=8, label_size=3, latent_size=8, dlatent_size=8,
              mapping_fmaps=8, mapping_layers=2, fmap_base=32, fmap_max=8)
    mapping = tflib.Network('G_mapping', func_name='G_mapping', dlatent_broadcast=4, **kw)
    D = tflib.Network('D', func_name='D_basic', **kw)
    randomize(mapping, 7)
    randomize(D, 8)
    rnd = np.random.RandomState(9)
    z, labels = rnd.randn(4, 8), rnd.randn(4, 3)
    # Mapping: concat(z, labels @ LabelConcat/weight), then the unlabeled math.
    values = mapping.get_vars()
    x = np.concatenate([z, labels @ values['LabelConcat/weight']], axis=1)
    expected = R1.mapping(values, x, mapping.static_kwargs, 4)
    assert rel(mapping.run(z, labels), expected) <= TOL
    assert rel(mapping.run(z, None), expected) > 1e-3
    # D: LabelSwitch sums the per-label scores weighted by the labels (linear in labels).
    images = rnd.randn(4, 3, 8, 8)
    eye = np.eye(3)
    per_label = [D.run(images, np.repeat(eye[k:k + 1], 4, axis=0))[:, 0] for k in range(3)]
    mixed = D.run(images, labels)[:, 0]
    assert rel(mixed, sum(labels[:, k] * per_label[k] for k in range(3))) <= TOL


# ------------------------------------------------------------------------------------------------
# Structures and training mode on the fixture.

fixture_nets = fixture_networks('sg1_r64.pkl', legacy_tf.load_network)


@pytest.mark.parametrize('lod', [0.0, 0.5, 1.0, 2.3, 3.0, 4.0])
def test_linear_equals_recursive(fixture_nets, lod):
    G, D, Gs = fixture_nets
    z = np.random.RandomState(1).randn(4, 32)
    images = np.random.RandomState(2).randn(4, 3, 64, 64)
    Gs.set_var('lod', lod)
    D.set_var('lod', lod)
    try:
        kw = dict(truncation_psi=1.0, randomize_noise=False)
        g_rec = Gs.run(z, None, **kw)
        g_lin = Gs.run(z, None, structure='linear', **kw)
        d_rec = D.run(images, None)
        d_lin = D.run(images, None, structure='linear')
    finally:
        Gs.set_vars({'lod': 0.0, 'G_synthesis/lod': 0.0})     # G's run copied lod into synthesis
        D.set_var('lod', 0.0)
    assert rel(g_rec, g_lin) <= 1e-5 and rel(d_rec, d_lin) <= 1e-5
    if lod >= 1.0:    # below full resolution the output is nearest-upscaled
        assert np.array_equal(g_rec[:, :, ::2, ::2], g_rec[:, :, 1::2, 1::2])


def test_training_mode_dlatent_avg_and_mixing(fixture_nets):
    G, _D, _Gs = fixture_nets
    z = np.random.RandomState(3).randn(4, 32)
    # Truncation is off in training even when asked for.
    assert_training_mode_dlatent_avg_and_mixing(G, z, truncation_psi=0.5)


def test_is_validation_disables_truncation(fixture_nets):
    _G, _D, Gs = fixture_nets
    z = np.random.RandomState(4).randn(2, 32)
    a = Gs.run(z, None, is_validation=True, randomize_noise=False)
    b = Gs.run(z, None, truncation_psi=1.0, randomize_noise=False)
    assert rel(a, b) <= 1e-6


def test_build_function_names():
    for func in ('D_basic', 'legacy_tf.networks_stylegan.D_basic',
                 'training.networks_stylegan.D_basic', nets_v1.D_basic):
        assert tflib.resolve_build_func(func)[1:] == ('D_basic', nets_v1.D_basic)
    assert tflib.resolve_build_func('G_mapping')[2] is nets_v1.G_mapping
    for bad in ('D_nonexistent', 'dense', '_conv2d', 'legacy_tf.networks_stylegan.np'):
        with pytest.raises(ValueError, match='unknown build function'):
            tflib.resolve_build_func(bad)
    with pytest.raises(ValueError, match='resolution'):
        tflib.Network('D', func_name='D_basic', num_channels=1, resolution=48)
    with pytest.raises(ValueError, match='structure'):
        tflib.Network('D', func_name='D_basic', num_channels=1, resolution=4, structure='fancy')
