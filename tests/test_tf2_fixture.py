"""tf2 StyleGAN v1 against NVIDIA's own outputs (fixture sg1_r64): every reference key.

Also checks that the eager path, the tf.function path and the NCHW data_format agree.
"""

import numpy as np
import pytest
import tensorflow as tf

import tf2
from conftest import fixture_path, rel, uint8_mismatch

TOL = 1e-4           # max|diff| / max|ref| required by the issue
UINT8_TOL = 0.001    # fraction of uint8 values allowed to differ (by one)


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


def _d_images(ref):
    imgs = ref['images_psi1']
    return np.concatenate([imgs, imgs[:, :, :, ::-1]])


def test_mapping_and_dlatent_avg(nets):
    G, D, Gs, ref = nets
    assert rel(Gs.components.mapping.run(ref['latents'], None), ref['dlatents']) <= TOL
    assert rel(Gs.get_var('dlatent_avg'), ref['dlatent_avg']) <= TOL


@pytest.mark.parametrize('key,kwargs', [
    ('images_psi1', dict(truncation_psi=1.0)),
    ('images_psi07', dict(truncation_psi=0.7)),
    ('images_psi05_cutoffall', dict(truncation_psi=0.5, truncation_cutoff=10)),
])
def test_gs_truncation(nets, key, kwargs):
    G, D, Gs, ref = nets
    out = Gs.run(ref['latents'], None, randomize_noise=False, **kwargs)
    assert out.shape == ref[key].shape and out.dtype == np.float32
    assert rel(out, ref[key]) <= TOL


def test_gs_default_truncation_is_psi07_cutoff8(nets):
    G, D, Gs, ref = nets
    assert rel(Gs.run(ref['latents'], None, randomize_noise=False), ref['images_psi07']) <= TOL


def test_synthesis_of_dlatents_equals_psi1(nets):
    G, D, Gs, ref = nets
    out = Gs.components.synthesis.run(ref['dlatents'], randomize_noise=False)
    assert rel(out, ref['images_psi1']) <= TOL


def test_instantaneous_G(nets):
    G, D, Gs, ref = nets
    out = G.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False)
    assert rel(out, ref['G_images_psi1']) <= TOL
    assert rel(out, ref['images_psi1']) > 1e-2   # G and Gs really differ


def test_uint8(nets):
    G, D, Gs, ref = nets
    out = Gs.run(ref['latents'], None, truncation_psi=0.7, randomize_noise=False,
                 output_transform=dict(func=tf2.convert_images_to_uint8, nchw_to_nhwc=True))
    expect = ref['images_psi07_uint8_nhwc']
    assert out.dtype == np.uint8 and out.shape == expect.shape
    assert uint8_mismatch(out, expect) <= UINT8_TOL
    assert np.abs(out.astype(int) - expect).max() <= 1


def test_style_mixing(nets):
    G, D, Gs, ref = nets
    mapping = Gs.components.mapping
    a = mapping.run(ref['mix_latents_A'], None)
    b = mapping.run(ref['mix_latents_B'], None)
    assert rel(a, ref['mix_dlatents_A']) <= TOL and rel(b, ref['mix_dlatents_B']) <= TOL
    mixed = b.copy()
    mixed[:, 0:4] = a[:, 0:4]
    assert rel(mixed, ref['mix_dlatents']) <= TOL
    images = Gs.components.synthesis.run(ref['mix_dlatents'], randomize_noise=False)
    assert rel(images, ref['mix_images']) <= TOL
    u8 = Gs.components.synthesis.run(
        ref['mix_dlatents'], randomize_noise=False,
        output_transform=dict(func=tf2.convert_images_to_uint8, nchw_to_nhwc=True))
    assert uint8_mismatch(u8, ref['mix_images_uint8_nhwc']) <= UINT8_TOL


def test_discriminator(nets):
    G, D, Gs, ref = nets
    imgs = _d_images(ref)
    assert rel(D.run(imgs, None), ref['D_scores']) <= TOL
    assert rel(D.run(imgs[:2], None), ref['D_scores_first2']) <= TOL


@pytest.mark.parametrize('lod,key', [(0.5, '0p5'), (1.0, '1p0'), (2.3, '2p3')])
def test_lod(nets, lod_reset, lod, key):
    G, D, Gs, ref = nets
    Gs.set_var('lod', lod)
    D.set_var('lod', lod)
    out = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False)
    assert rel(out, ref[f'images_lod{key}']) <= TOL
    assert rel(D.run(_d_images(ref), None), ref[f'D_scores_lod{key}']) <= TOL


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
        imgs = tf.constant(_d_images(ref))
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
    assert rel(D2.run(_d_images(ref), None), ref['D_scores']) <= TOL
