"""legacy_tf.networks_stylegan2: official layout, NVIDIA's sg2_r64 outputs, other architectures.

References: the official 1024 px variable list (shared/spec), the outputs NVIDIA's code computed
for the sg2_r64 fixture, and the plain-NumPy StyleGAN2 forward pass in
tests/reference_sg2_numpy.py (written from the spec, no shared code) for everything the fixture
does not cover (the 'orig'/'resnet' generators, 'orig'/'skip' discriminators, fused_modconv=False,
labels, the progressive networks of configs b-d).
"""

import importlib
import pickle

import numpy as np
import pytest

from conftest import TOL, fixture_path, rel, small_net_kwargs
from conftest import randomize_tflib_net as randomize
from fixture_checks import (GS_IMAGES, assert_discriminator_scores, assert_gs_images,
                            assert_instantaneous_g, assert_mapping_and_dlatent_avg,
                            assert_official_variables, assert_saved_pickle_equals_fixture,
                            assert_style_mixing_dlatents, assert_synthesis,
                            assert_training_mode_dlatent_avg_and_mixing,
                            assert_uint8_matches, d_images, fixture_networks,
                            fresh_tf_context, own_tflib_graph, reference_outputs)  # noqa: F401

import tensorflow as tf  # noqa: E402

import legacy_tf  # noqa: E402
from dnnlib import legacy_pickle  # noqa: E402
from legacy_tf import networks_stylegan as nets_v1  # noqa: E402
from legacy_tf import networks_stylegan2 as nets_v2  # noqa: E402
from legacy_tf import tflib  # noqa: E402

import reference_sg2_numpy as R2  # noqa: E402

# Each test builds in a graph of its own (networks made before keep their graph).
own_graph = own_tflib_graph('function')


# ------------------------------------------------------------------------------------------------
# Variable layout of the default config-f networks (built, not run).

def test_variables_match_official_1024(fresh_tf_context):
    G = tflib.Network('G', func_name='G_main', num_channels=3, resolution=1024, label_size=0)
    D = tflib.Network('D', func_name='D_stylegan2', num_channels=3, resolution=1024,
                      label_size=0)
    assert_official_variables('sg2_configf1024_variables.txt', G.own_vars,
                              G.components.mapping.own_vars, G.components.synthesis.own_vars,
                              D.own_vars)
    count = lambda net: sum(int(np.prod(v.shape.as_list())) for v in net.trainables.values())
    assert count(G) == 30370060 and count(D) == 29012513      # spec 4.5
    assert G.build_func_name == 'G_main' and D.build_func_name == 'D_stylegan2'
    assert G.components.synthesis.build_func_name == 'G_synthesis_stylegan2'
    assert G.components.mapping._build_func is nets_v2.G_mapping
    assert G.input_shape == [None, 512] and G.output_shape == [None, 3, 1024, 1024]
    assert G.components.synthesis.input_shape == [None, 18, 512]
    assert G.components.mapping.static_kwargs == {'dlatent_broadcast': 18, 'num_channels': 3,
                                                   'resolution': 1024, 'label_size': 0}
    assert G.state_version == 4 and D.state_version == 4


# ------------------------------------------------------------------------------------------------
# NVIDIA's outputs for the sg2_r64 fixture.

nets = fixture_networks('sg2_r64.pkl', legacy_tf.load_network)
ref = reference_outputs('sg2_r64_ref.npz')


def test_load_structure(nets, ref):
    G, D, Gs = nets
    assert (G.name, D.name, Gs.name) == ('G', 'D', 'Gs')
    assert [n.build_func_name for n in nets] == ['G_main', 'D_stylegan2', 'G_main']
    assert list(Gs.components) == ['synthesis', 'mapping']
    assert Gs.components.synthesis.name == 'G_synthesis'
    # The mapping is resolved in its parent's module: StyleGAN2 math (spec 1.3).
    assert Gs.components.mapping._build_func is nets_v2.G_mapping
    assert tflib.resolve_build_func('G_mapping')[2] is nets_v1.G_mapping   # alone: v1 first
    assert Gs.input_shape == [None, 32] and Gs.output_shape == [None, 3, 64, 64]
    state = legacy_pickle.load(fixture_path('sg2_r64.pkl'))[2]
    assert list(Gs.vars) == list(state.all_variables())
    values = Gs.get_vars()
    for name, value in state.all_variables().items():
        np.testing.assert_array_equal(values[name], value)
    for k in range(9):
        np.testing.assert_array_equal(values[f'G_synthesis/noise{k}'], ref[f'noise_var_noise{k}'])
    np.testing.assert_array_equal(Gs.get_var('dlatent_avg'), ref['dlatent_avg'])


def test_mapping(nets, ref):
    _G, _D, Gs = nets
    assert_mapping_and_dlatent_avg(Gs, ref)
    w = Gs.components.mapping.run(ref['latents'], None)
    avg = Gs.get_var('dlatent_avg')
    assert rel(avg + (w - avg) * np.float32(0.5), ref['dlatents_trunc05']) <= TOL


@pytest.mark.parametrize('key,kwargs', GS_IMAGES['sg2_r64'])
def test_gs_images(nets, ref, key, kwargs):
    assert_gs_images(nets[2], ref, key, kwargs)


def test_return_dlatents_and_validation(nets, ref):
    _G, _D, Gs = nets
    images, dlatents = Gs.run(ref['latents'], None, randomize_noise=False, return_dlatents=True)
    assert rel(images, ref['images_psi05']) <= TOL
    assert rel(dlatents, ref['dlatents_trunc05']) <= TOL
    # is_validation uses truncation_psi_val (None: no truncation), as for FID.
    out = Gs.run(ref['latents'], None, randomize_noise=False, is_validation=True)
    assert rel(out, ref['images_psi1']) <= TOL


def test_synthesis_and_fused_modconv(nets, ref):
    _G, _D, Gs = nets
    assert_synthesis(Gs, ref, 'dlatents', 'images_psi1')
    out = Gs.components.synthesis.run(ref['mix_dlatents'], randomize_noise=False,
                                      fused_modconv=False)
    assert rel(out, ref['mix_images']) <= TOL


def test_g_differs_from_gs(nets, ref):
    assert_instantaneous_g(nets[0], ref, apart=1e-2)


def test_uint8(nets, ref):
    _G, _D, Gs = nets
    fmt = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)
    out = Gs.run(ref['latents'], None, randomize_noise=False, output_transform=fmt)
    assert_uint8_matches(out, ref['images_psi05_uint8_nhwc'])


def test_style_mixing(nets, ref):
    _G, _D, Gs = nets
    mixed = assert_style_mixing_dlatents(Gs.components.mapping, ref)
    assert rel(Gs.components.synthesis.run(mixed, randomize_noise=False), ref['mix_images']) <= TOL


def test_discriminator(nets, ref):
    assert_discriminator_scores(nets[1], ref)


def test_randomize_noise(nets, ref):
    _G, _D, Gs = nets
    a = Gs.run(ref['latents'], None, truncation_psi=1.0)
    b = Gs.run(ref['latents'], None, truncation_psi=1.0)
    assert np.all(np.isfinite(a)) and rel(a, b) > 1e-4 and rel(a, ref['images_psi1']) > 1e-4


def test_training_mode_dlatent_avg_and_mixing(nets, ref):
    # No truncation in training, even the default.
    assert_training_mode_dlatent_avg_and_mixing(nets[0], ref['latents'])


def test_agrees_with_tf2(nets, ref):
    tf2 = importlib.import_module('tf2')
    _G2, D2, Gs2 = tf2.load_network(fixture_path('sg2_r64.pkl'))
    _G, D, Gs = nets
    z = ref['latents']
    for kw in (dict(), dict(truncation_psi=0.7, truncation_cutoff=8)):
        a = Gs.run(z, None, randomize_noise=False, **kw)
        b = np.asarray(Gs2.run(z, None, randomize_noise=False, **kw))
        assert rel(a, b) <= TOL
    imgs = d_images(ref)
    assert rel(D.run(imgs, None), np.asarray(D2.run(imgs, None))) <= TOL
    assert rel(Gs.components.mapping.run(z, None),
               np.asarray(Gs2.components.mapping.run(z, None))) <= TOL


# ------------------------------------------------------------------------------------------------
# Pickles (state version 4).

def test_save_pkl_reproduces_the_file(nets, tmp_path):
    _original, written = assert_saved_pickle_equals_fixture(legacy_tf.save_pkl, nets,
                                                            'sg2_r64.pkl', tmp_path)
    assert [s.version for s in written] == [4, 4, 4]


def test_new_network_round_trip(tmp_path):
    kw = dict(num_channels=3, resolution=8, label_size=0, latent_size=6, dlatent_size=6,
              mapping_fmaps=6, mapping_layers=2, fmap_base=32, fmap_max=6)
    G = tflib.Network('G', func_name=nets_v2.G_main, **kw)
    D = tflib.Network('D', func_name='D_stylegan2', **kw)
    randomize(G, 1)
    randomize(D, 2)
    Gs = G.clone('Gs')
    path = tmp_path / 'net.pkl'
    tflib.save_pkl((G, D, Gs), str(path))
    states = legacy_pickle.load(str(path))
    assert [s.version for s in states] == [4, 4, 4]
    assert [s.build_func_name for s in states] == ['G_main', 'D_stylegan2', 'G_main']
    assert states[2].name == 'Gs' and list(states[2].components) == ['synthesis', 'mapping']
    assert states[2].components['mapping'].static_kwargs == dict(kw, dlatent_broadcast=4)
    assert states[0].build_module_src == legacy_pickle.PLACEHOLDER_MODULE_SRC
    assert np.ndim(states[2].components['synthesis'].variables['4x4/Conv/noise_strength']) == 0
    G2, D2, Gs2 = legacy_tf.load_network(str(path))
    z = np.random.RandomState(3).randn(3, 6)
    images = np.random.RandomState(4).randn(4, 3, 8, 8)
    np.testing.assert_array_equal(Gs.run(z, None, randomize_noise=False),
                                  Gs2.run(z, None, randomize_noise=False))
    np.testing.assert_array_equal(D.run(images, None), D2.run(images, None))
    # In-process pickling keeps the StyleGAN2 mapping.
    Gs3 = pickle.loads(pickle.dumps(Gs))
    assert Gs3.components.mapping._build_func is nets_v2.G_mapping
    assert Gs3.__getstate__()['version'] == 4
    np.testing.assert_array_equal(Gs.run(z, None, randomize_noise=False),
                                  Gs3.run(z, None, randomize_noise=False))


# ------------------------------------------------------------------------------------------------
# Architectures and options against the NumPy reference (random weights, 32 px).

SMALL = small_net_kwargs(32)


@pytest.fixture(scope='module')
def generators():
    nets = {}
    for arch in ('orig', 'skip', 'resnet'):
        G = tflib.Network('G', func_name='G_main', architecture=arch, **SMALL)
        randomize(G, {'orig': 10, 'skip': 11, 'resnet': 12}[arch])
        nets[arch] = G
    return nets


@pytest.mark.parametrize('fused_modconv', [True, False])
@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
def test_generator_matches_reference(generators, arch, fused_modconv):
    G = generators[arch]
    z = np.random.RandomState(3).randn(3, 8)
    out = G.run(z, None, truncation_psi=0.7, truncation_cutoff=3, randomize_noise=False,
                fused_modconv=fused_modconv)
    state = G.to_state()
    assert state.components['synthesis'].static_kwargs['architecture'] == arch
    expected, dlatents = R2.G_main(state, z, truncation_psi=0.7, truncation_cutoff=3)
    assert out.shape == (3, 3, 32, 32)
    assert rel(out, expected) <= TOL
    # Truncation on all rows (the G_main default) and the dlatents.
    out = G.run(z, None, randomize_noise=False, fused_modconv=fused_modconv)
    expected, _ = R2.G_main(state, z, truncation_psi=0.5)
    assert rel(out, expected) <= TOL


def test_generator_noise_strength_and_mod_bias_matter(generators):
    """The random values reach every path: zeroing them changes the output."""
    G = generators['skip']
    z = np.random.RandomState(5).randn(2, 8)
    base = G.run(z, None, truncation_psi=1.0, randomize_noise=False)
    for name in ('G_synthesis/16x16/Conv1/noise_strength', 'G_synthesis/8x8/ToRGB/mod_bias'):
        old = G.get_var(name)
        try:
            G.set_var(name, np.zeros_like(old))
            assert rel(G.run(z, None, truncation_psi=1.0, randomize_noise=False), base) > 1e-4
        finally:
            G.set_var(name, old)


@pytest.mark.parametrize('arch', ['orig', 'skip', 'resnet'])
def test_discriminator_matches_reference(arch):
    D = tflib.Network('D', func_name='D_stylegan2', architecture=arch, **SMALL)
    randomize(D, 20)
    images = np.random.RandomState(6).randn(8, 3, 32, 32)
    state = D.to_state()
    for n in (8, 2):
        assert rel(D.run(images[:n], None), R2.D_stylegan2(state, images[:n])) <= TOL
    names = list(D.own_vars)
    assert ('32x32/Skip/weight' in names) == (arch == 'resnet')
    assert ('16x16/FromRGB/weight' in names) == (arch == 'skip')


def test_resnet_g_and_skip_d_through_a_pickle(tmp_path):
    """An official-format pickle of the architectures the fixture lacks, read by load_network."""
    G = tflib.Network('G', func_name='G_main', architecture='resnet', **SMALL)
    D = tflib.Network('D', func_name='D_stylegan2', architecture='skip', **SMALL)
    randomize(G, 30)
    randomize(D, 31)
    path = tmp_path / 'resnet_skip.pkl'
    tflib.save_pkl((G, D, G.clone('Gs')), str(path))
    states = legacy_pickle.load(str(path))
    _G2, D2, Gs2 = legacy_tf.load_network(str(path))
    z = np.random.RandomState(7).randn(2, 8)
    expected, _ = R2.G_main(states[2], z, truncation_psi=1.0)
    assert rel(Gs2.run(z, None, truncation_psi=1.0, randomize_noise=False), expected) <= TOL
    images = np.random.RandomState(8).randn(4, 3, 32, 32)
    assert rel(D2.run(images, None), R2.D_stylegan2(states[1], images)) <= TOL


def test_labels_and_options():
    kw = dict(num_channels=1, resolution=8, label_size=3, latent_size=8, dlatent_size=8,
              mapping_fmaps=8, mapping_layers=3, fmap_base=32, fmap_max=8, mapping_lrmul=0.1)
    mapping = tflib.Network('G_mapping', func_name=nets_v2.G_mapping, dlatent_broadcast=4, **kw)
    D = tflib.Network('D', func_name='D_stylegan2', mbstd_group_size=2, **kw)
    randomize(mapping, 7)
    randomize(D, 8)
    rnd = np.random.RandomState(9)
    z, labels = rnd.randn(4, 8), rnd.randn(4, 3)
    values = mapping.get_vars()
    assert list(values)[0] == 'LabelConcat/weight'
    x = np.concatenate([z, labels @ values['LabelConcat/weight']], axis=1)
    assert rel(mapping.run(z, labels), R2.mapping(values, x, mapping.static_kwargs, 4)) <= TOL
    # D: Output has one score per label; they are summed weighted by the labels.
    images = rnd.randn(4, 1, 8, 8)
    eye = np.eye(3)
    per_label = [D.run(images, np.repeat(eye[k:k + 1], 4, axis=0))[:, 0] for k in range(3)]
    mixed = D.run(images, labels)[:, 0]
    assert rel(mixed, sum(labels[:, k] * per_label[k] for k in range(3))) <= TOL
    assert D.own_vars['Output/weight'].shape.as_list() == [8, 3]     # [nf(0), labels]
    state = D.to_state()
    v = state.variables
    no_label = legacy_pickle.NetworkState('D', 'D_stylegan2', dict(state.static_kwargs),
                                          dict(v), version=4)
    # Reference D with the label-0 column only, and group size 2.
    no_label.variables['Output/weight'] = v['Output/weight'][:, :1]
    no_label.variables['Output/bias'] = v['Output/bias'][:1]
    no_label.static_kwargs['mbstd_group_size'] = 2
    assert rel(per_label[0][:, None], R2.D_stylegan2(no_label, images)) <= TOL


def test_bad_arguments():
    with pytest.raises(ValueError, match='architecture'):
        tflib.Network('D', func_name='D_stylegan2', resolution=8, architecture='fancy')
    with pytest.raises(ValueError, match='nonlinearity'):
        tflib.Network('D', func_name='D_stylegan2', resolution=8, nonlinearity='gelu2')
    with pytest.raises(ValueError, match='synthesis_func'):
        tflib.Network('G', func_name='G_main', resolution=8, synthesis_func='os.system')
    with pytest.raises(ValueError, match='float32'):
        tflib.Network('D', func_name='D_stylegan2', resolution=8, dtype='float16')
    with pytest.raises(ValueError, match='structure'):
        tflib.Network('D', func_name='D_stylegan', resolution=8, structure='fancy')


# ------------------------------------------------------------------------------------------------
# Configs b-d: progressive growing with StyleGAN2 layers.

def _rename(values, mapping):
    """A copy of ``values`` with names rewritten by ``mapping(name)`` (None drops the name)."""
    out = {}
    for name, value in values.items():
        new = mapping(name)
        if new is not None:
            out[new] = value
    return out


def _revised_as_orig(values, res_log2, lod_level):
    """Revised synthesis variables as an 'orig' stylegan2 synthesis ending ``lod_level`` early."""
    final = 2 ** (res_log2 - lod_level)

    def mapping(name):
        if name.startswith('ToRGB_lod'):
            return f'{final}x{final}/ToRGB/' + name.split('/', 1)[1] \
                if name.startswith(f'ToRGB_lod{lod_level}/') else None
        return name
    return _rename(values, mapping)


def _nearest_up(x, factor):
    return x.repeat(factor, axis=2).repeat(factor, axis=3)


@pytest.fixture(scope='module')
def revised():
    G = tflib.Network('G', func_name='G_main', synthesis_func='G_synthesis_stylegan_revised',
                      **dict(SMALL, resolution=16))
    randomize(G, 40)
    return G


def test_revised_layout(revised):
    syn = revised.components.synthesis
    assert syn.build_func_name == 'G_synthesis_stylegan_revised'
    names = list(syn.own_vars)
    mod = ['weight', 'mod_weight', 'mod_bias']
    layer = lambda s: [f'{s}/{n}' for n in mod + ['noise_strength', 'bias']]
    torgb = lambda lod: [f'ToRGB_lod{lod}/{n}' for n in mod + ['bias']]
    expected = (['lod'] + [f'noise{k}' for k in range(5)] + ['4x4/Const/const'] +
                layer('4x4/Conv') + torgb(2) + layer('8x8/Conv0_up') + layer('8x8/Conv1') +
                torgb(1) + layer('16x16/Conv0_up') + layer('16x16/Conv1') + torgb(0))
    assert names == expected
    assert list(revised.own_vars) == ['lod', 'dlatent_avg']
    assert revised.static_kwargs['synthesis_func'] == 'G_synthesis_stylegan_revised'
    assert 'synthesis_func' not in syn.static_kwargs


@pytest.mark.parametrize('lod', [0.0, 0.5, 1.0, 1.7])
def test_revised_matches_reference(revised, lod):
    """lod 0: an 'orig' stylegan2 synthesis with ToRGB_lod0. Coarser levels: the same network
    stopped early with ToRGB_lod{l}, nearest-upsampled, blended by the fractional part."""
    G = revised
    z = np.random.RandomState(11).randn(2, 8)
    state = G.to_state()
    syn_vals = state.components['synthesis'].variables
    G.set_var('lod', lod)
    try:
        out = G.run(z, None, truncation_psi=1.0, randomize_noise=False)
        lin = G.run(z, None, truncation_psi=1.0, randomize_noise=False, structure='linear')
    finally:
        G.set_vars({'lod': 0.0, 'G_synthesis/lod': 0.0})
    assert rel(out, lin) <= 1e-5
    dl = R2.mapping(state.components['mapping'].variables, z,
                    state.components['mapping'].static_kwargs, 6)

    def level(lvl):
        # At 4x4 the 'skip' reference is the 4x4 block and its ToRGB ('orig' has no 4x4 ToRGB).
        kw = dict(state.components['synthesis'].static_kwargs, resolution=16 >> lvl,
                  architecture='skip' if lvl == 2 else 'orig')
        img = R2.synthesis(_revised_as_orig(syn_vals, 4, lvl), dl, kw)
        return _nearest_up(img, 2 ** lvl)
    lo = int(np.floor(lod))
    t = lod - lo
    expected = level(lo) if t == 0 else level(lo) + (level(lo + 1) - level(lo)) * t
    assert rel(out, expected) <= TOL


def test_revised_fixed_structure(revised):
    z = np.random.RandomState(12).randn(2, 8)
    a = revised.run(z, None, truncation_psi=1.0, randomize_noise=False, structure='fixed')
    b = revised.run(z, None, truncation_psi=1.0, randomize_noise=False)
    assert rel(a, b) <= 1e-5


@pytest.fixture(scope='module')
def d_progressive():
    D = tflib.Network('D', func_name='D_stylegan', **dict(SMALL, resolution=16))
    randomize(D, 41)
    return D


def test_d_stylegan_layout(d_progressive):
    conv = lambda s: [f'{s}/weight', f'{s}/bias']
    expected = (['lod'] + conv('FromRGB_lod0') + conv('16x16/Conv0') + conv('16x16/Conv1_down') +
                conv('FromRGB_lod1') + conv('8x8/Conv0') + conv('8x8/Conv1_down') +
                conv('FromRGB_lod2') + conv('4x4/Conv') + conv('4x4/Dense0') + conv('Output'))
    assert list(d_progressive.own_vars) == expected


def _box_down(x, factor):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def _d_progressive_reference(state, images, lod):
    """D_stylegan from the reference's primitives: StyleGAN's linear structure (spec 3.4,
    lerp_clip of each block's output towards FromRGB of the box-downsampled image) with the
    StyleGAN2 layers and head (spec 4.5)."""
    v, kw = state.variables, state.static_kwargs
    rl = int(np.log2(kw['resolution']))

    def conv(x, scope):
        w = v[f'{scope}/weight'].astype(np.float64)
        return R2.lrelu_act(R2.conv2d_same(x, w / np.sqrt(np.prod(w.shape[:3]))),
                            v[f'{scope}/bias'])

    def dense(x, scope):
        w = v[f'{scope}/weight'].astype(np.float64)
        return x @ (w / np.sqrt(w.shape[0])) + v[f'{scope}/bias']

    img = np.asarray(images, np.float64)
    x = conv(img, 'FromRGB_lod0')
    for r in range(rl, 2, -1):
        level = rl - r
        x = conv(x, f'{2 ** r}x{2 ** r}/Conv0')
        w = v[f'{2 ** r}x{2 ** r}/Conv1_down/weight'].astype(np.float64)
        x = R2.lrelu_act(R2.conv_downsample_2d(x, w / np.sqrt(np.prod(w.shape[:3]))),
                         v[f'{2 ** r}x{2 ** r}/Conv1_down/bias'])
        img = _box_down(img, 2)
        y = conv(img, f'FromRGB_lod{level + 1}')
        x = x + (y - x) * np.clip(lod - level, 0.0, 1.0)
    x = R2.minibatch_stddev(x, 4, 1)
    x = conv(x, '4x4/Conv').reshape(x.shape[0], -1)
    x = dense(x, '4x4/Dense0')
    x = np.where(x >= 0, x, 0.2 * x) * np.sqrt(2)
    return dense(x, 'Output')


@pytest.mark.parametrize('lod', [0.0, 0.5, 1.0, 1.3, 2.0])
def test_d_stylegan_matches_reference(d_progressive, lod):
    D = d_progressive
    images = np.random.RandomState(13).randn(4, 3, 16, 16)
    state = D.to_state()
    D.set_var('lod', lod)
    try:
        out = D.run(images, None)
        lin = D.run(images, None, structure='linear')
    finally:
        D.set_var('lod', 0.0)
    assert rel(out, lin) <= 1e-5
    assert rel(out, _d_progressive_reference(state, images, lod)) <= TOL
    if lod == 0:     # at lod 0 it is D_stylegan2 'orig' with FromRGB_lod0 as 16x16/FromRGB
        values = {('16x16/FromRGB/' + n.split('/', 1)[1]) if n.startswith('FromRGB_lod0/')
                  else n: a for n, a in state.variables.items()
                  if not n.startswith(('FromRGB_lod1', 'FromRGB_lod2')) and n != 'lod'}
        orig = legacy_pickle.NetworkState('D', 'D_stylegan2', dict(
            state.static_kwargs, architecture='orig'), values, version=4)
        assert rel(out, R2.D_stylegan2(orig, images)) <= TOL


def test_g_main_copies_lod_into_revised_synthesis(revised):
    G = revised
    z = np.random.RandomState(14).randn(2, 8)
    syn = G.components.synthesis
    dl = G.components.mapping.run(z, None)
    G.set_var('lod', 1.0)
    try:
        via_g = G.run(z, None, truncation_psi=1.0, randomize_noise=False)
        assert syn.get_var('lod') == 1.0
        direct = syn.run(dl, randomize_noise=False)
    finally:
        G.set_vars({'lod': 0.0, 'G_synthesis/lod': 0.0})
    assert rel(via_g, direct) <= 1e-5
    assert np.array_equal(via_g[:, :, ::2, ::2], via_g[:, :, 1::2, 1::2])
