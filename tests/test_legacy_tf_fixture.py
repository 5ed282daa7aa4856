"""legacy_tf against NVIDIA's outputs for the sg1_r64 fixture, pickle round trips, the example.

The reference outputs were computed by the official TF1 code (see the fixture README), so every
comparison here is against an independent source.
"""

import importlib
import os
import pickle

import numpy as np
import pytest

from conftest import TOL, fixture_path, rel
from fixture_checks import (GS_IMAGES, assert_discriminator_scores, assert_gs_images,
                            assert_instantaneous_g, assert_mapping_and_dlatent_avg,
                            assert_saved_pickle_equals_fixture, assert_style_mixing_dlatents,
                            assert_synthesis, assert_uint8_matches, d_images, fixture_networks,
                            own_tflib_graph, reference_outputs)

import tensorflow as tf  # noqa: E402

import legacy_tf  # noqa: E402
from dnnlib import legacy_pickle  # noqa: E402
from legacy_tf import tflib  # noqa: E402

own_graph = own_tflib_graph()     # this module's networks in a graph of their own
nets = fixture_networks('sg1_r64.pkl', legacy_tf.load_network)
ref = reference_outputs('sg1_r64_ref.npz')


def test_load_structure(nets):
    G, D, Gs = nets
    assert (G.name, D.name, Gs.name) == ('G', 'D', 'Gs')
    assert list(Gs.components) == ['synthesis', 'mapping']
    assert Gs.components.synthesis.name == 'G_synthesis'
    assert Gs.components.mapping.name == 'G_mapping'
    assert Gs.input_shape == [None, 32] and Gs.output_shape == [None, 3, 64, 64]
    assert Gs.input_names == ['latents_in', 'labels_in'] and Gs.output_names == ['images_out']
    assert D.input_names == ['images_in', 'labels_in'] and D.output_shape == [None, 1]
    assert Gs.components.mapping.static_kwargs['dlatent_broadcast'] == 10
    state = legacy_pickle.load(fixture_path('sg1_r64.pkl'))[2]
    assert list(Gs.vars) == list(state.all_variables())
    values = Gs.get_vars()
    for name, value in state.all_variables().items():
        np.testing.assert_array_equal(values[name], value)
    assert isinstance(Gs.get_var('lod'), np.floating) and Gs.get_var('lod') == 0


def test_mapping_and_truncation(nets, ref):
    _G, _D, Gs = nets
    z = ref['latents']
    assert_mapping_and_dlatent_avg(Gs, ref)
    # Truncation inside G_style equals the formula applied to the mapping output.
    w = Gs.components.mapping.run(z, None)
    avg = Gs.get_var('dlatent_avg')
    w07 = avg + (w - avg) * np.where(np.arange(10) < 8, 0.7, 1.0)[None, :, None]
    assert rel(w07, ref['dlatents_trunc07']) <= TOL


@pytest.mark.parametrize('key,kwargs', GS_IMAGES['sg1_r64'])    # with the default psi 0.7, cutoff 8
def test_gs_images(nets, ref, key, kwargs):
    assert_gs_images(nets[2], ref, key, kwargs)


def test_gs_float64_latents_and_minibatches(nets, ref):
    _G, _D, Gs = nets
    z64 = ref['latents'].astype(np.float64)
    out = Gs.run(z64, None, truncation_psi=0.7, randomize_noise=False, minibatch_size=3)
    assert rel(out, ref['images_psi07']) <= TOL


def test_synthesis_equals_psi1(nets, ref):
    assert_synthesis(nets[2], ref, 'dlatents', 'images_psi1')


def test_g_differs_from_gs(nets, ref):
    assert_instantaneous_g(nets[0], ref, apart=1e-2)


def test_uint8(nets, ref):
    _G, _D, Gs = nets
    fmt = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)
    out = Gs.run(ref['latents'], None, truncation_psi=0.7, randomize_noise=False,
                 output_transform=fmt)
    assert_uint8_matches(out, ref['images_psi07_uint8_nhwc'])


def test_style_mixing(nets, ref):
    _G, _D, Gs = nets
    mixed = assert_style_mixing_dlatents(Gs.components.mapping, ref)
    out = Gs.components.synthesis.run(mixed, randomize_noise=False)
    assert rel(out, ref['mix_images']) <= TOL
    u8 = Gs.components.synthesis.run(mixed, randomize_noise=False, output_transform=dict(
        func=legacy_tf.convert_images_to_uint8, nchw_to_nhwc=True))
    assert_uint8_matches(u8, ref['mix_images_uint8_nhwc'])


def test_discriminator(nets, ref):
    assert_discriminator_scores(nets[1], ref)


@pytest.mark.parametrize('lod,key', [(0.5, '0p5'), (1.0, '1p0'), (2.3, '2p3')])
def test_lod(nets, ref, lod, key):
    _G, D, Gs = nets
    try:
        Gs.set_var('lod', lod)
        D.set_var('lod', lod)
        images = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False)
        scores = D.run(d_images(ref), None)
    finally:
        Gs.set_vars({'lod': 0.0, 'G_synthesis/lod': 0.0})     # G's run copied lod into synthesis
        D.set_var('lod', 0.0)
    assert rel(images, ref[f'images_lod{key}']) <= TOL
    assert rel(scores, ref[f'D_scores_lod{key}']) <= TOL


def test_randomize_noise_changes_output(nets, ref):
    _G, _D, Gs = nets
    a = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=True)
    b = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=True)
    assert np.all(np.isfinite(a)) and rel(a, b) > 1e-4       # fresh noise per run
    assert rel(a, ref['images_psi1']) > 1e-4


def test_agrees_with_tf2(nets, ref):
    tf2 = importlib.import_module('tf2')
    _G2, D2, Gs2 = tf2.load_network(fixture_path('sg1_r64.pkl'))
    _G, D, Gs = nets
    kw = dict(truncation_psi=0.7, randomize_noise=False)
    a = Gs.run(ref['latents'], None, **kw)
    b = np.asarray(Gs2.run(ref['latents'], None, **kw))
    assert rel(a, b) <= TOL
    imgs = d_images(ref)
    assert rel(D.run(imgs, None), np.asarray(D2.run(imgs, None))) <= TOL
    w = ref['dlatents']
    assert rel(Gs.components.synthesis.run(w, randomize_noise=False),
               np.asarray(Gs2.components.synthesis.run(w, randomize_noise=False))) <= TOL


# ------------------------------------------------------------------------------------------------
# Pickles.

def test_save_pkl_reproduces_the_file(nets, tmp_path):
    original, written = assert_saved_pickle_equals_fixture(legacy_tf.save_pkl, nets, 'sg1_r64.pkl',
                                                           tmp_path)
    assert written[0].version == 3
    assert written[0].build_module_src == original[0].build_module_src


def test_new_network_writes_placeholder_and_version3(tmp_path):
    D = tflib.Network('D', func_name='D_basic', num_channels=1, resolution=8, fmap_base=16,
                      fmap_max=8)
    path = tmp_path / 'd.pkl'
    tflib.save_pkl(D, str(path))
    state = legacy_pickle.load(str(path))
    assert state.version == 3 and state.build_func_name == 'D_basic'
    assert state.build_module_src == legacy_pickle.PLACEHOLDER_MODULE_SRC
    assert state.static_kwargs == {'num_channels': 1, 'resolution': 8, 'fmap_base': 16,
                                   'fmap_max': 8}
    assert list(state.variables) == list(D.own_vars)
    assert state.variables['lod'].shape == ()
    # Reading it back gives the same scores.
    images = np.random.RandomState(0).randn(4, 1, 8, 8)
    D2 = tflib.load_pkl(str(path))
    np.testing.assert_array_equal(D.run(images, None), D2.run(images, None))


def test_plain_pickle_round_trip(nets, ref):
    _G, _D, Gs = nets
    state = Gs.__getstate__()
    assert list(state) == list(legacy_pickle.STATE_KEYS)
    assert state['version'] == 3 and state['build_func_name'] == 'G_style'
    assert [n for n, _ in state['variables']] == ['lod', 'dlatent_avg']
    Gs2 = pickle.loads(pickle.dumps(Gs))
    assert Gs2.name == 'Gs' and Gs2.scope != Gs.scope
    out = Gs2.run(ref['latents'], None, truncation_psi=0.7, randomize_noise=False)
    assert rel(out, ref['images_psi07']) <= TOL


def test_bad_files(tmp_path):
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'not a pickle')
    with pytest.raises(legacy_pickle.PickleFormatError, match='bad.pkl'):
        legacy_tf.load_network(str(bad))

    state = legacy_pickle.load(fixture_path('sg1_r64.pkl'))[1]     # D
    renamed = legacy_pickle.NetworkState('D', 'D_unknown', state.static_kwargs, state.variables,
                                         version=3)
    legacy_pickle.save(renamed, str(tmp_path / 'unknown.pkl'))
    with pytest.raises(ValueError, match=r"unknown\.pkl.*D_unknown"):
        legacy_tf.load_network(str(tmp_path / 'unknown.pkl'))

    qualified = legacy_pickle.NetworkState('D', 'os.system', state.static_kwargs,
                                           state.variables, version=3)
    legacy_pickle.save(qualified, str(tmp_path / 'qualified.pkl'))
    with pytest.raises(ValueError, match='unqualified'):
        legacy_tf.load_network(str(tmp_path / 'qualified.pkl'))

    extra = dict(state.variables, **{'4x4/Extra/weight': np.zeros(3, np.float32)})
    legacy_pickle.save(legacy_pickle.NetworkState('D', 'D_basic', state.static_kwargs, extra,
                                                  version=3), str(tmp_path / 'extra.pkl'))
    with pytest.raises(ValueError, match=r'extra\.pkl.*4x4/Extra/weight'):
        legacy_tf.load_network(str(tmp_path / 'extra.pkl'))

    wrong = dict(state.variables, **{'4x4/Dense1/bias': np.zeros(2, np.float32)})
    legacy_pickle.save(legacy_pickle.NetworkState('D', 'D_basic', state.static_kwargs, wrong,
                                                  version=3), str(tmp_path / 'shape.pkl'))
    with pytest.raises(ValueError, match=r'4x4/Dense1/bias.*shape'):
        legacy_tf.load_network(str(tmp_path / 'shape.pkl'))


# ------------------------------------------------------------------------------------------------
# The official example.

def test_pretrained_example(tmp_path, capsys):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'examples'))
    try:
        example = importlib.import_module('pretrained_example')
    finally:
        sys.path.pop(0)
    out = tmp_path / 'results' / 'example.png'
    assert example.main([fixture_path('sg1_r64.pkl'), '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'G_synthesis/64x64/Conv1' in text and 'Total' in text and 'wrote' in text
    from PIL import Image
    with Image.open(out) as im:
        assert im.size == (64, 64) and im.mode == 'RGB'
        pixels = np.asarray(im)
    assert pixels.std() > 1.0
    assert not [p for p in os.listdir(out.parent) if p.endswith('.tmp')]
    assert example.main([str(tmp_path / 'missing.pkl'), '--out', str(tmp_path / 'x.png')]) == 1
    assert not (tmp_path / 'x.png').exists()
