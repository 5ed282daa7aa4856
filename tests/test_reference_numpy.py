"""The plain-NumPy references (tests/reference_sg*_numpy.py) reproduce NVIDIA's fixture outputs.

They are the independent oracle for networks the fixtures do not cover, so they are checked here
first against every fixture key they can compute.
"""

import numpy as np
import pytest

import reference_sg1_numpy as R1
import reference_sg2_numpy as R2
from conftest import fixture_path, rel
from dnnlib import legacy_pickle

TOL = 1e-5


@pytest.fixture(scope='module')
def sg1():
    return legacy_pickle.load(fixture_path('sg1_r64.pkl')), np.load(fixture_path('sg1_r64_ref.npz'))


@pytest.fixture(scope='module')
def sg2():
    return legacy_pickle.load(fixture_path('sg2_r64.pkl')), np.load(fixture_path('sg2_r64_ref.npz'))


def test_sg1_generator(sg1):
    (G, _D, Gs), ref = sg1
    img, dl = R1.G_style(Gs, ref['latents'], 1.0)
    assert rel(dl, ref['dlatents']) < TOL and rel(img, ref['images_psi1']) < TOL
    img, dl = R1.G_style(Gs, ref['latents'], 0.7, 8)
    assert rel(dl, ref['dlatents_trunc07']) < TOL and rel(img, ref['images_psi07']) < TOL
    img, _ = R1.G_style(Gs, ref['latents'], 0.5, 10)
    assert rel(img, ref['images_psi05_cutoffall']) < TOL
    img, _ = R1.G_style(G, ref['latents'], 1.0)
    assert rel(img, ref['G_images_psi1']) < TOL
    syn = Gs.components['synthesis']
    assert rel(R1.synthesis(syn.variables, ref['mix_dlatents'], syn.static_kwargs), ref['mix_images']) < TOL


def test_sg1_discriminator_and_lod(sg1):
    (_G, D, Gs), ref = sg1
    imgs = np.concatenate([ref['images_psi1'], ref['images_psi1'][:, :, :, ::-1]])
    assert rel(R1.D_basic(D, imgs), ref['D_scores']) < TOL
    assert rel(R1.D_basic(D, imgs[:2]), ref['D_scores_first2']) < TOL
    syn = Gs.components['synthesis']
    mp = Gs.components['mapping']
    dl = R1.mapping(mp.variables, ref['latents'], mp.static_kwargs, 10)
    for lod, key in [(0.5, '0p5'), (1.0, '1p0'), (2.3, '2p3')]:
        assert rel(R1.synthesis(syn.variables, dl, syn.static_kwargs, lod), ref[f'images_lod{key}']) < TOL
        d_vars = dict(D.variables, lod=np.float32(lod))
        d_state = legacy_pickle.NetworkState('D', 'D_basic', D.static_kwargs, d_vars)
        assert rel(R1.D_basic(d_state, imgs), ref[f'D_scores_lod{key}']) < TOL


def test_sg2_generator_and_discriminator(sg2):
    (G, D, Gs), ref = sg2
    img, dl = R2.G_main(Gs, ref['latents'])
    assert rel(dl, ref['dlatents']) < TOL and rel(img, ref['images_psi1']) < TOL
    img, dl = R2.G_main(Gs, ref['latents'], 0.5)
    assert rel(dl, ref['dlatents_trunc05']) < TOL and rel(img, ref['images_psi05']) < TOL
    img, _ = R2.G_main(Gs, ref['latents'], 0.7, 8)
    assert rel(img, ref['images_psi07_cutoff8']) < TOL
    img, _ = R2.G_main(G, ref['latents'])
    assert rel(img, ref['G_images_psi1']) < TOL
    imgs = np.concatenate([ref['images_psi1'], ref['images_psi1'][:, :, :, ::-1]])
    assert rel(R2.D_stylegan2(D, imgs), ref['D_scores']) < TOL
    assert rel(R2.D_stylegan2(D, imgs[:2]), ref['D_scores_first2']) < TOL


def test_fused_identities_in_reference():
    """Spec 3.3/3.4. The fused up-conv is TF's conv2d_transpose (the adjoint of a strided
    correlation), so it equals nearest upsampling then a 3x3 correlation with the spatially
    *flipped* kernel; the fused down-conv equals the 3x3 conv then a 2x2 average exactly."""
    rng = np.random.RandomState(0)
    w = rng.randn(3, 3, 3, 4)
    x = rng.randn(2, 3, 5, 5)
    np.testing.assert_allclose(R1.fused_upconv(x, w),
                               R1.conv2d_same(R1.upscale2d(x), w[::-1, ::-1]), atol=1e-12)
    x = rng.randn(2, 3, 8, 8)
    np.testing.assert_allclose(R1.fused_conv_down(x, w), R1.downscale2d(R1.conv2d_same(x, w)), atol=1e-12)
