"""Caller-supplied random stream (``rng=tf.random.Generator``) of v1 and v2 generators.

The training loop saves its generator's state with each snapshot; after a resume, G must draw
the same per-layer noise, style-mixing z2, mixing coin and cutoff as the uninterrupted run. So:
two calls with generators of equal state give equal outputs (eagerly and in a tf.function),
different states give different outputs, and the generator's state advances.
"""

import numpy as np
import pytest
import tensorflow as tf

from conftest import small_net_kwargs
from tf2 import networks_stylegan as nets1
from tf2 import networks_stylegan2 as nets2

SMALL = small_net_kwargs(16)


def _randomized(build):
    G = build(**SMALL)
    rng = np.random.RandomState(0)
    for name, v in G.official_variables().items():
        if not name.endswith('lod'):
            v.assign(np.asarray(rng.randn(*v.shape), np.float32))
    return G


@pytest.fixture(scope='module', params=['v1', 'v2'])
def G(request):
    return _randomized(nets1.G_style if request.param == 'v1' else nets2.G_main)


def _z():
    return tf.constant(np.random.RandomState(3).randn(4, 8), tf.float32)


def _train_call(G, z, gen):
    # return_dlatents is a v2 option; v1 ignores unknown kwargs, so use the images for both.
    return G(z, None, is_training=True, style_mixing_prob=0.9, rng=gen)


def test_equal_generator_state_gives_equal_training_outputs(G):
    z = _z()
    a = _train_call(G, z, tf.random.Generator.from_seed(123)).numpy()
    b = _train_call(G, z, tf.random.Generator.from_seed(123)).numpy()
    c = _train_call(G, z, tf.random.Generator.from_seed(124)).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_restored_generator_state_continues_the_same_stream(G):
    """A generator restored from a saved state (as after a resume) reproduces the next draws."""
    z = _z()
    fn = tf.function(lambda z, gen: _train_call(G, z, gen))
    gen = tf.random.Generator.from_seed(7)
    fn(z, gen)                                      # some training steps before the snapshot
    saved = gen.state.numpy()
    first = [fn(z, gen).numpy() for _ in range(2)]
    resumed = tf.random.Generator.from_state(saved, gen.algorithm)
    again = [fn(z, resumed).numpy() for _ in range(2)]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert np.abs(first[0] - first[1]).max() > 1e-3     # the state advanced between calls


def test_synthesis_random_noise_from_generator(G):
    dl = tf.constant(np.random.RandomState(4).randn(2, G.num_layers, 8), tf.float32)
    a = G.synthesis(dl, randomize_noise=True, rng=tf.random.Generator.from_seed(5)).numpy()
    b = G.synthesis(dl, randomize_noise=True, rng=tf.random.Generator.from_seed(5)).numpy()
    c = G.synthesis(dl, randomize_noise=True, rng=tf.random.Generator.from_seed(6)).numpy()
    const = G.synthesis(dl, randomize_noise=False, rng=tf.random.Generator.from_seed(5)).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3 and np.abs(a - const).max() > 1e-3


def test_rng_none_keeps_global_random_behaviour(G):
    z = _z()
    a = _train_call(G, z, None).numpy()
    b = _train_call(G, z, None).numpy()
    assert a.shape == (4, 3, 16, 16) and np.abs(a - b).max() > 1e-3
