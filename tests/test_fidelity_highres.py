"""Fidelity on every image of a batch, at every resolution from 4 to 1024 px, v1 and v2, tf2 and
legacy_tf, against the independent float64 NumPy references (tests/reference_sg*_numpy.py).

The networks are built to be numerically hard, like NVIDIA's released 1024 px ones at their top
layers: few feature maps at the highest resolutions (``fmap_base`` = 2 * resolution gives 4
channels at full size), a small ``fmap_max``, and biases shifted so that activations have a large
mean relative to their spread. A float32 reduction over H x W done carelessly in NHWC loses the
spread's digits there (about a million values per channel at 1024 px).

Tolerances are the README's: max|diff| <= 1e-4 of max|ref| per image (2e-4 at 1024 px), and the
uint8 output (``convert_images_to_uint8`` over the reference's value range) equal to the
reference's in all but 0.1 % of values.
"""

import numpy as np
import pytest
import tensorflow as tf

import reference_sg1_numpy as R1
import reference_sg2_numpy as R2
from conftest import rel, uint8_mismatch
from legacy_tf import tflib
from tf2 import checkpoint
from tf2 import networks_stylegan as nets_v1
from tf2 import networks_stylegan2 as nets_v2

RESOLUTIONS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]
UINT8_MISMATCH_MAX = 1e-3
SHIFT = 100.0          # large activation mean relative to spread (v1: style shift; v2: biases)
BATCH = 3


def tol(resolution):
    return 2e-4 if resolution >= 1024 else 1e-4


def to_uint8(images, drange):
    """NVIDIA's convert_images_to_uint8 arithmetic, NCHW kept: scale, +0.5, clip, truncate."""
    scale = 255 / (drange[1] - drange[0])
    images = np.asarray(images, np.float64) * scale + (0.5 - drange[0] * scale)
    return np.clip(images, 0, 255).astype(np.uint8)


def hard_weights(model, seed):
    """Random values for every variable; shifted biases give activations a large mean."""
    rng = np.random.RandomState(seed)
    for name, var in model.official_variables().items():
        if name.endswith('lod'):
            continue
        a = np.asarray(rng.randn(*var.shape))
        if name.endswith('StyleMod/bias'):                 # v1: [scale | shift] of the style
            half = var.shape[0] // 2
            a[:half] *= 0.3
            a[half:] += SHIFT
        elif name.endswith('/bias') and 'mapping' not in name and 'Dense' not in name:
            a = 0.3 * a + (SHIFT if 'ToRGB' not in name and 'FromRGB' not in name else 0.0)
        elif 'bias' in name:
            a *= 0.3
        var.assign(a.astype(np.float32))


def network_kwargs(resolution):
    return dict(num_channels=3, resolution=resolution, label_size=0, latent_size=8,
                dlatent_size=8, mapping_fmaps=8, mapping_layers=2, fmap_base=2 * resolution,
                fmap_max=16)


@pytest.fixture(scope='module', params=['v1', 'v2'])
def family(request):
    return request.param


def _generator_state(family, resolution):
    build = nets_v1.G_style if family == 'v1' else nets_v2.G_main
    G = build(name='Gs', **network_kwargs(resolution))
    hard_weights(G, seed=resolution)
    return G, checkpoint.state_from_model(G)


def _reference(family, state, z):
    if family == 'v1':
        return R1.G_style(state, z, truncation_psi=0.7, truncation_cutoff=8)[0]
    return R2.G_main(state, z, truncation_psi=0.7, truncation_cutoff=8)[0]


def _legacy_run(state, z):
    tflib.reset_tf()
    try:
        Gs = tflib.Network.from_state(state)
        return Gs.run(z, None, truncation_psi=0.7, truncation_cutoff=8, randomize_noise=False)
    finally:
        tflib.get_session().close()
        tflib.reset_tf()


@pytest.mark.parametrize('resolution', RESOLUTIONS)
def test_generator_every_image_matches_float64_reference(family, resolution):
    G, state = _generator_state(family, resolution)
    z = np.random.RandomState(resolution + 1).randn(BATCH, 8)
    ref = _reference(family, state, z)
    outputs = {
        'tf2': G(z, None, truncation_psi=0.7, truncation_cutoff=8, randomize_noise=False).numpy(),
        'legacy_tf': _legacy_run(state, z),
    }
    drange = (float(ref.min()), float(ref.max()))      # the images' own range, not [-1, 1]
    for impl, out in outputs.items():
        assert rel(out, ref) <= tol(resolution), f'{impl} {family} {resolution}px'
        frac = uint8_mismatch(to_uint8(out, drange), to_uint8(ref, drange))
        assert frac <= UINT8_MISMATCH_MAX, f'{impl} {family} {resolution}px: {frac:.4%} of uint8 values'


@pytest.mark.parametrize('resolution', [512, pytest.param(1024, marks=pytest.mark.slow)])
def test_discriminator_every_score_matches_float64_reference(family, resolution):
    kwargs = {k: v for k, v in network_kwargs(resolution).items()
              if k in ('num_channels', 'resolution', 'label_size', 'fmap_base', 'fmap_max')}
    build = nets_v1.D_basic if family == 'v1' else nets_v2.D_stylegan2
    D = build(name='D', **kwargs)
    hard_weights(D, seed=resolution + 2)
    state = checkpoint.state_from_model(D)
    images = np.random.RandomState(3).randn(4, 3, resolution, resolution) + 0.5
    ref = (R1.D_basic if family == 'v1' else R2.D_stylegan2)(state, images)
    tflib.reset_tf()
    try:
        legacy = tflib.Network.from_state(state).run(images, None)
    finally:
        tflib.get_session().close()
        tflib.reset_tf()
    for impl, out in (('tf2', D(images).numpy()), ('legacy_tf', legacy)):
        assert rel(out, ref) <= tol(resolution), f'{impl} {family} D {resolution}px'


def test_careless_nhwc_reduction_would_fail_this_suite():
    """The yardstick bites: a single float32 NHWC reduction over H x W of large-mean activations
    misses the float64 mean by far more than the tolerance this suite allows."""
    x = (np.random.RandomState(0).randn(1, 1024, 1024, 2) + SHIFT).astype(np.float32)
    careless = tf.reduce_mean(tf.constant(x), axis=[1, 2]).numpy()
    from tf2 import layers as L
    d, mean_d, _ = L.spatial_moments(tf.constant(x), 'NHWC')
    exact = x.astype(np.float64).mean(axis=(1, 2))       # of the very float32 values summed
    shift = x[:, 0, 0, :].astype(np.float64)
    assert np.abs(careless - exact).max() > 1e-4          # what NHWC float32 sums lose
    assert np.abs(mean_d.numpy()[:, 0, 0] - (exact - shift)).max() < 2e-6
