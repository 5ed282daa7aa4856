"""training/loss.py on tiny hand-made G and D: values by hand, R1 by finite differences."""

import numpy as np
import pytest
import tensorflow as tf

from training import loss


def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


# A tiny "generator": latents [N, 4] -> images [N, 1, 2, 2] (2 * z), and a linear "discriminator".
W = np.array([[[0.5, -1.0], [0.25, 2.0]]], np.float32)     # [1, 2, 2]
B = 0.3


def G_lin(z, c):
    return tf.reshape(2.0 * z, [-1, 1, 2, 2])


def D_lin(x, c):
    return tf.reduce_sum(x * W, axis=[1, 2, 3])[:, None] + B


LATENTS = np.array([[0.1, -0.2, 0.3, 0.4], [1.0, 0.5, -0.5, 0.0]], np.float32)
REALS = np.array([[[[0.2, -0.4], [0.6, 0.1]]], [[[-1.0, 0.9], [0.0, 0.3]]]], np.float32)
NO_LABELS = np.zeros([2, 0], np.float32)


def _d_lin_np(x):
    return (x * W).sum(axis=(1, 2, 3))[:, None] + B


def test_G_logistic_nonsaturating_by_hand():
    fake_scores = _d_lin_np(2 * LATENTS.reshape(2, 1, 2, 2))
    value, stats = loss.G_logistic_nonsaturating(G_lin, D_lin, LATENTS, NO_LABELS)
    np.testing.assert_allclose(value.numpy(), softplus(-fake_scores), rtol=1e-6)
    np.testing.assert_allclose(stats['Loss/scores/fake'].numpy(), fake_scores, rtol=1e-6)
    assert value.shape == (2, 1)


def test_G_logistic_saturating_by_hand():
    fake_scores = _d_lin_np(2 * LATENTS.reshape(2, 1, 2, 2))
    value, _ = loss.G_logistic_saturating(G_lin, D_lin, LATENTS, NO_LABELS)
    np.testing.assert_allclose(value.numpy(), -softplus(fake_scores), rtol=1e-6)


def test_D_logistic_simplegp_by_hand():
    fake_scores = _d_lin_np(2 * LATENTS.reshape(2, 1, 2, 2))
    real_scores = _d_lin_np(REALS)
    r1 = float((W ** 2).sum())           # the gradient of a linear D w.r.t. its input is W
    for gamma in (0.0, 10.0, 3.5):
        value, stats = loss.D_logistic_simplegp(G_lin, D_lin, LATENTS, REALS, NO_LABELS, r1_gamma=gamma)
        want = softplus(fake_scores) + softplus(-real_scores) + gamma * 0.5 * r1
        np.testing.assert_allclose(value.numpy(), want, rtol=1e-6)
        np.testing.assert_allclose(stats['Loss/scores/real'].numpy(), real_scores, rtol=1e-6)
        assert ('Loss/r1_penalty' in stats) == (gamma != 0)
        if gamma:
            np.testing.assert_allclose(stats['Loss/r1_penalty'].numpy(), [[r1], [r1]], rtol=1e-6)
    value, stats = loss.D_logistic_simplegp(G_lin, D_lin, LATENTS, REALS, NO_LABELS, r1_gamma=0.0, r2_gamma=4.0)
    np.testing.assert_allclose(value.numpy(), softplus(fake_scores) + softplus(-real_scores) + 2.0 * r1, rtol=1e-6)
    no_gp, _ = loss.D_logistic(G_lin, D_lin, LATENTS, REALS, NO_LABELS)
    np.testing.assert_allclose(no_gp.numpy(), softplus(fake_scores) + softplus(-real_scores), rtol=1e-6)


# A tiny nonlinear D whose score also depends on the other samples (like minibatch stddev), so
# the R1 gradient of sum(scores) has cross-sample terms.
A = np.random.RandomState(1).randn(4, 3)
V = np.random.RandomState(2).randn(3)
U = np.random.RandomState(3).randn(4)


def _d_nonlin_np(x):                       # float64 reference, x [N, 1, 2, 2]
    f = x.reshape(len(x), 4)
    return (np.tanh(f @ A) @ V + 0.3 * np.sin(f.mean(axis=0) @ U))[:, None]


def _make_d_nonlin(a):
    def D(x, c):
        f = tf.reshape(tf.cast(x, tf.float64), [-1, 4])
        s = tf.linalg.matvec(tf.tanh(f @ a), V) + 0.3 * tf.sin(tf.reduce_sum(tf.reduce_mean(f, axis=0) * U))
        return s[:, None]
    return D


def test_r1_penalty_against_finite_differences():
    reals = REALS.astype(np.float64)
    eps = 1e-6
    grads = np.zeros_like(reals)
    for idx in np.ndindex(*reals.shape):
        plus, minus = reals.copy(), reals.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grads[idx] = (_d_nonlin_np(plus).sum() - _d_nonlin_np(minus).sum()) / (2 * eps)
    want_penalty = (grads ** 2).sum(axis=(1, 2, 3))
    D = _make_d_nonlin(tf.constant(A))
    _, stats = loss.D_logistic_simplegp(lambda z, c: tf.reshape(tf.cast(z, tf.float64), [-1, 1, 2, 2]), D,
                                        LATENTS, tf.constant(reals), NO_LABELS, r1_gamma=10.0)
    np.testing.assert_allclose(stats['Loss/r1_penalty'].numpy()[:, 0], want_penalty, rtol=1e-6)


def test_r1_penalty_is_differentiable_in_D_weights():
    """Second order: d(mean loss)/dA of the R1 term equals finite differences in A."""
    reals = tf.constant(REALS.astype(np.float64))
    a = tf.Variable(A)

    def r1_mean(a_value):
        _, stats = loss.D_logistic_simplegp(lambda z, c: tf.reshape(tf.cast(z, tf.float64), [-1, 1, 2, 2]),
                                            _make_d_nonlin(a_value), LATENTS, reals, NO_LABELS, r1_gamma=10.0)
        return tf.reduce_mean(stats['Loss/r1_penalty'])

    with tf.GradientTape() as tape:
        value = r1_mean(a)
    analytic = tape.gradient(value, a).numpy()
    eps = 1e-3                  # the loss works in float32 (as officially): a coarser step
    numeric = np.zeros_like(A)
    for idx in np.ndindex(*A.shape):
        plus, minus = A.copy(), A.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (r1_mean(tf.constant(plus)).numpy() - r1_mean(tf.constant(minus)).numpy()) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=2e-3)


def test_losses_work_inside_tf_function():
    f = tf.function(lambda z, x: loss.D_logistic_simplegp(G_lin, D_lin, z, x, NO_LABELS)[0])
    eager = loss.D_logistic_simplegp(G_lin, D_lin, LATENTS, REALS, NO_LABELS)[0]
    np.testing.assert_allclose(f(tf.constant(LATENTS), tf.constant(REALS)).numpy(), eager.numpy(), rtol=1e-6)


def test_bad_D_output_shape_is_reported():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=r'\[N, 1\]'):
        loss.G_logistic_nonsaturating(G_lin, lambda x, c: tf.reduce_sum(x, axis=[1, 2, 3]), LATENTS, NO_LABELS)
