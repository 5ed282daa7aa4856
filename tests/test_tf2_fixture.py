"""tf2 StyleGAN v1 against NVIDIA's own outputs (fixture sg1_r64): every reference key.

Also checks that the eager path, the tf.function path and the NCHW data_format agree.
"""

import numpy as np
import pytest
import tensorflow as tf

import tf2
from conftest import TOL, fixture_path, rel, uint8_mismatch
from fixture_checks import (GS_IMAGES, UINT8_TOL, assert_discriminator_scores, assert_gs_images,
                            assert_instantaneous_g, assert_mapping_and_dlatent_avg,
                            assert_style_mixing_dlatents, assert_synthesis, assert_uint8_matches,
                            d_images)


@pytest.fixture(scope='module')
def nets():
    G, D, Gs = tf2.load_network(fixture_path('sg1_r64.pkl'))
    return G, D, Gs, np.load(fixture_path('sg1_r64_ref.npz'))


@pytest.fixture
def lod_reset(nets):
    yield
    G, D, Gs, _ = nets
    for net in (G, D, Gs):
        net.set_var('lod', 0.0)


def test_mapping_and_dlatent_avg(nets):
    G, D, Gs, ref = nets
    assert_mapping_and_dlatent_avg(Gs, ref)


@pytest.mark.parametrize('key,kwargs', GS_IMAGES['sg1_r64'])   # with the default psi 0.7, cutoff 8
def test_gs_truncation(nets, key, kwargs):
    G, D, Gs, ref = nets
    assert_gs_images(Gs, ref, key, kwargs)


def test_synthesis_of_dlatents_equals_psi1(nets):
    G, D, Gs, ref = nets
    assert_synthesis(Gs, ref, 'dlatents', 'images_psi1')


def test_instantaneous_G(nets):
    G, D, Gs, ref = nets
    assert_instantaneous_g(G, ref, apart=1e-2)   # G and Gs really differ


def test_uint8(nets):
    G, D, Gs, ref = nets
    out = Gs.run(ref['latents'], None, truncation_psi=0.7, randomize_noise=False,
                 output_transform=dict(func=tf2.convert_images_to_uint8, nchw_to_nhwc=True))
    assert_uint8_matches(out, ref['images_psi07_uint8_nhwc'])


def test_style_mixing(nets):
    G, D, Gs, ref = nets
    assert_style_mixing_dlatents(Gs.components.mapping, ref)
    assert_synthesis(Gs, ref, 'mix_dlatents', 'mix_images')
    u8 = Gs.components.synthesis.run(
        ref['mix_dlatents'], randomize_noise=False,
        output_transform=dict(func=tf2.convert_images_to_uint8, nchw_to_nhwc=True))
    assert uint8_mismatch(u8, ref['mix_images_uint8_nhwc']) <= UINT8_TOL


def test_discriminator(nets):
    G, D, Gs, ref = nets
    assert_discriminator_scores(D, ref)


@pytest.mark.parametrize('lod,key', [(0.5, '0p5'), (1.0, '1p0'), (2.3, '2p3')])
def test_lod(nets, lod_reset, lod, key):
    G, D, Gs, ref = nets
    Gs.set_var('lod', lod)
    D.set_var('lod', lod)
    out = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False)
    assert rel(out, ref[f'images_lod{key}']) <= TOL
    assert rel(D.run(d_images(ref), None), ref[f'D_scores_lod{key}']) <= TOL


def test_eager_equals_tf_function(nets, lod_reset):
    G, D, Gs, ref = nets
    z = tf.constant(ref['latents'], tf.float32)
    for lod in (0.0, 1.3):
        Gs.set_var('lod', lod)
        D.set_var('lod', lod)
        eager = Gs.model(z, None, truncation_psi=0.7, randomize_noise=False).numpy()
        graph = tf.function(lambda x: Gs.model(x, None, truncation_psi=0.7,
                                               randomize_noise=False))(z).numpy()
        np.testing.assert_allclose(graph, eager, rtol=0, atol=1e-5 * np.abs(eager).max())
        imgs = tf.constant(d_images(ref))
        eager_d = D.model(imgs).numpy()
        graph_d = tf.function(lambda x: D.model(x))(imgs).numpy()
        np.testing.assert_allclose(graph_d, eager_d, rtol=0, atol=1e-5 * np.abs(eager_d).max())


@pytest.mark.nchw       # conftest: runs in a oneDNN child process where this CPU lacks NCHW convs
def test_nchw_data_format_matches(nets):
    """The GPU layout option computes the same values (NCHW convs run on this CPU build)."""
    G, D, Gs, ref = nets
    _, D2, Gs2 = tf2.load_network(fixture_path('sg1_r64.pkl'), data_format='NCHW')
    out = Gs2.run(ref['latents'], None, truncation_psi=0.7, randomize_noise=False)
    assert rel(out, ref['images_psi07']) <= TOL
    assert rel(D2.run(d_images(ref), None), ref['D_scores']) <= TOL
