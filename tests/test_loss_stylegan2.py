"""training/loss.py StyleGAN2 losses on tiny hand-made G and D: values by hand (numpy), R1 and the
path-length gradient by finite differences."""

import numpy as np
import pytest
import tensorflow as tf

from training import loss


def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


RS = np.random.RandomState(0)
M = RS.randn(4, 6).astype(np.float32) * 0.5          # latents [N, 4] -> dlatents [N, 2, 3]
K = RS.randn(2, 3, 4).astype(np.float32) * 0.5       # dlatents -> images [N, 1, 2, 2]
WD = RS.randn(1, 2, 2).astype(np.float32)            # D weights
LATENTS = RS.randn(4, 4).astype(np.float32)
REALS = RS.randn(4, 1, 2, 2).astype(np.float32) * 0.5
NO_LABELS = np.zeros([4, 0], np.float32)


def g_np(z):
    w = (z @ M).reshape(-1, 2, 3)
    return np.tanh(np.einsum('nld,ldp->np', w, K)).reshape(-1, 1, 2, 2), w


def d_np(x):
    return (np.sin(x) * WD).sum(axis=(1, 2, 3))[:, None] + 0.1 * (x ** 2).sum(axis=(1, 2, 3))[:, None]


def make_G(kernel=None):
    kernel = K if kernel is None else kernel

    def G(z, c, return_dlatents=False):
        w = tf.reshape(tf.matmul(z, M), [-1, 2, 3])
        images = tf.reshape(tf.tanh(tf.einsum('nld,ldp->np', w, kernel)), [-1, 1, 2, 2])
        return (images, w) if return_dlatents else images
    return G


def D(x, c):
    return (tf.reduce_sum(tf.sin(x) * WD, axis=[1, 2, 3])[:, None]
            + 0.1 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None])


def G_forbidden(z, c, **kw):
    raise AssertionError('G must not run on a regularisation-only D call')


def r1_by_finite_differences(x, eps=1e-4):
    x = x.astype(np.float64)
    grads = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[1:]):
        for sign in (1, -1):
            xp = x.copy()
            xp[(slice(None),) + idx] += sign * eps
            grads[(slice(None),) + idx] += sign * d_np(xp)[:, 0] / (2 * eps)
    return (grads ** 2).sum(axis=(1, 2, 3))[:, None]


# ------------------------------------------------------------------------------------------------
# D_logistic_r1

def test_D_logistic_r1_modes_by_hand():
    fake_scores = d_np(g_np(LATENTS)[0])
    real_scores = d_np(REALS)
    main = softplus(fake_scores) + softplus(-real_scores)
    r1 = r1_by_finite_differences(REALS)
    G = make_G()
    for gamma in (10.0, 100.0):
        value, stats = loss.D_logistic_r1(G, D, LATENTS, REALS, NO_LABELS, gamma=gamma, reg='none')
        np.testing.assert_allclose(value.numpy(), main, rtol=1e-5)
        assert 'Loss/r1_penalty' not in stats
        value, stats = loss.D_logistic_r1(G_forbidden, D, LATENTS, REALS, NO_LABELS, gamma=gamma, reg='only')
        np.testing.assert_allclose(value.numpy(), gamma * 0.5 * r1, rtol=1e-4)
        np.testing.assert_allclose(stats['Loss/r1_penalty'].numpy(), r1, rtol=1e-4)
        value, stats = loss.D_logistic_r1(G, D, LATENTS, REALS, NO_LABELS, gamma=gamma)   # 'both'
        np.testing.assert_allclose(value.numpy(), main + gamma * 0.5 * r1, rtol=1e-4)
        np.testing.assert_allclose(stats['Loss/scores/real'].numpy(), real_scores, rtol=1e-5)
        np.testing.assert_allclose(stats['Loss/scores/fake'].numpy(), fake_scores, rtol=1e-5)
    with pytest.raises(ValueError, match='reg='):
        loss.D_logistic_r1(G, D, LATENTS, REALS, NO_LABELS, reg='lazy')


def test_D_logistic_r1_regulariser_is_differentiable_in_tf_function():
    # d(reg)/d(scale) for D_s(x) = D(s * x): reg(s) = gamma/2 |s D'(s x)|^2; finite differences in s.
    scale = tf.Variable(1.3)

    def D_scaled(x, c):
        return D(scale * x, c)

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            value, _ = loss.D_logistic_r1(G_forbidden, D_scaled, LATENTS, REALS, NO_LABELS, reg='only')
            total = tf.reduce_mean(value)
        return tape.gradient(total, scale)

    def reg_at(s, eps=1e-4):
        return np.mean(5.0 * r1_by_finite_differences(REALS * s) * s ** 2)

    want = (reg_at(1.3 + 1e-3) - reg_at(1.3 - 1e-3)) / 2e-3
    np.testing.assert_allclose(float(grad()), want, rtol=2e-3)


# ------------------------------------------------------------------------------------------------
# G_logistic_ns_pathreg

def pathreg_np(z, noise, pl_mean, shrink=2, decay=0.01, weight=2.0, kernel=None):
    """Hand-computed regulariser: the gradient of a linear-then-tanh synthesis is explicit."""
    kernel = K if kernel is None else kernel
    n = z.shape[0] // shrink
    w = (z[:n].astype(np.float64) @ M).reshape(-1, 2, 3)
    pre = np.einsum('nld,ldp->np', w, kernel)
    img = np.tanh(pre)
    noise = noise.reshape(n, 4) / np.sqrt(2 * 2)
    grads = np.einsum('np,ldp->nld', noise * (1 - img ** 2), kernel)           # [n, L, D]
    lengths = np.sqrt((grads ** 2).sum(axis=2).mean(axis=1))
    new_mean = pl_mean + decay * (lengths.mean() - pl_mean)
    return (lengths - new_mean) ** 2 * weight, lengths, new_mean


def same_noise(rng, shape, *more_shapes):
    # The loss draws with dynamic shapes (tensors), which give other numbers than a Python-list
    # shape from the same generator state. Several shapes: the draws in that order.
    copy = tf.random.Generator.from_state(rng.state.numpy(), rng.algorithm)
    draws = [copy.normal(tf.constant(sh)).numpy() for sh in (shape,) + more_shapes]
    return draws if more_shapes else draws[0]


def test_G_logistic_ns_pathreg_by_hand():
    G = make_G()
    fake_scores = d_np(g_np(LATENTS)[0])
    value, stats = loss.G_logistic_ns_pathreg(G, D, LATENTS, NO_LABELS, reg='none')
    np.testing.assert_allclose(value.numpy(), softplus(-fake_scores), rtol=1e-5)
    assert 'Loss/pl_lengths' not in stats

    pl_mean = loss.make_state_variables(loss.G_logistic_ns_pathreg)['pl_mean']
    assert float(pl_mean.numpy()) == 0.0 and not pl_mean.trainable
    rng = tf.random.Generator.from_seed(5)
    mean = 0.0
    for _ in range(3):        # the running mean moves by pl_decay toward mean(pl_lengths) each call
        pl_z, noise = same_noise(rng, [2, 4], [2, 1, 2, 2])     # its own latents, then pl_noise
        want, lengths, mean = pathreg_np(pl_z, noise, mean, shrink=1)
        value, stats = loss.G_logistic_ns_pathreg(G, D, LATENTS, NO_LABELS, pl_mean=pl_mean, rng=rng, reg='only')
        assert value.shape == (2, 1)          # minibatch 4 // pl_minibatch_shrink 2
        np.testing.assert_allclose(value.numpy()[:, 0], want, rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(stats['Loss/pl_lengths'].numpy()[:, 0], lengths, rtol=1e-5)
        np.testing.assert_allclose(float(pl_mean.numpy()), mean, rtol=1e-5)

    # 'both': mean of the result = mean(main) + mean(reg); other shrink/decay/weight values.
    noise = same_noise(rng, [4, 1, 2, 2])
    want, _, new_mean = pathreg_np(LATENTS, noise, mean, shrink=1, decay=0.5, weight=3.0)
    value, _ = loss.G_logistic_ns_pathreg(G, D, LATENTS, NO_LABELS, pl_mean=pl_mean, rng=rng,
                                          pl_minibatch_shrink=1, pl_decay=0.5, pl_weight=3.0)
    np.testing.assert_allclose(float(tf.reduce_mean(value)), softplus(-fake_scores).mean() + want.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(pl_mean.numpy()), new_mean, rtol=1e-5)
    with pytest.raises(ValueError, match='pl_mean'):
        loss.G_logistic_ns_pathreg(G, D, LATENTS, NO_LABELS, reg='only')


def test_G_pathreg_draws_its_own_latents_and_labels():
    """With pl_minibatch_shrink > 1 the regulariser's batch is its own, as officially: fresh
    latents from the rng and the first n of pl_labels, not the main batch's first n."""
    seen = []

    def G(latents, labels, return_dlatents=False):
        seen.append((np.array(latents), np.array(labels)))
        w = tf.reshape(tf.matmul(tf.cast(latents, tf.float32), M.astype(np.float32)), [-1, 2, 3])
        img = tf.reshape(tf.tanh(tf.einsum('nld,ldp->np', w, K.astype(np.float32))), [-1, 1, 2, 2])
        return (img, w) if return_dlatents else img

    labels = np.eye(4, dtype=np.float32)
    pl_labels = np.eye(4, dtype=np.float32)[::-1].copy()
    rng = tf.random.Generator.from_seed(9)
    want_z = same_noise(rng, [2, 4])
    loss.G_logistic_ns_pathreg(G, lambda x, c: tf.reduce_sum(x, axis=[1, 2, 3])[:, None], LATENTS,
                               labels, pl_mean=tf.Variable(0.0), rng=rng, pl_labels=pl_labels)
    (main_z, main_c), (pl_z, pl_c) = seen
    np.testing.assert_array_equal(main_z, LATENTS)
    np.testing.assert_array_equal(main_c, labels)
    assert pl_z.shape == (2, 4) and not np.allclose(pl_z, LATENTS[:2])
    np.testing.assert_allclose(pl_z, want_z, rtol=1e-6)
    np.testing.assert_array_equal(pl_c, pl_labels[:2])
    # Shrink 1: the main batch itself (the official loss reuses its forward pass).
    seen.clear()
    loss.G_logistic_ns_pathreg(G, lambda x, c: tf.reduce_sum(x, axis=[1, 2, 3])[:, None], LATENTS,
                               labels, pl_mean=tf.Variable(0.0), rng=rng, pl_minibatch_shrink=1)
    np.testing.assert_array_equal(seen[1][0], LATENTS)


def test_G_pathreg_gradient_by_finite_differences_in_tf_function():
    # Second order: d mean(reg) / d kernel through pl_grads, compared with numpy finite differences.
    kernel = tf.Variable(K)
    G = make_G(kernel)
    pl_mean = tf.Variable(0.3)
    rng = tf.random.Generator.from_seed(9)
    pl_z, noise = same_noise(tf.random.Generator.from_seed(9), [2, 4], [2, 1, 2, 2])

    @tf.function
    def grad():
        pl_mean.assign(0.3)
        rng.reset_from_seed(9)
        with tf.GradientTape() as tape:
            value, _ = loss.G_logistic_ns_pathreg(G, D, LATENTS, NO_LABELS, pl_mean=pl_mean,
                                                  rng=rng, reg='only')
            total = tf.reduce_mean(value)
        return tape.gradient(total, kernel)

    got = grad().numpy()
    want = np.zeros_like(K, np.float64)
    eps = 1e-4
    for idx in np.ndindex(*K.shape):
        for sign in (1, -1):
            k = K.astype(np.float64).copy()
            k[idx] += sign * eps
            want[idx] += sign * pathreg_np(pl_z, noise, 0.3, shrink=1, kernel=k)[0].mean() / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
