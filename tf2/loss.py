"""StyleGAN (v1) loss functions (spec 6.5), written against plain callables.

Every loss takes `G(latents, labels) -> images` and `D(images, labels) -> scores` as callables,
so the training loop passes its Keras models in training mode (and, for fine-tuning, a D wrapped
in a differentiable augmentation), while tests pass tiny hand-made functions.

Each loss returns `(loss, stats)`: the per-sample loss `[N, 1]` (the optimizer differentiates its
mean, as `tflib.Optimizer` did) and a dict of named per-sample tensors for reporting, under the
official autosummary names (`Loss/scores/real`, `Loss/scores/fake`, `Loss/r1_penalty`, ...).
Random inputs (latents, random labels) are drawn by the caller, which owns the random stream.
"""

from typing import Callable, Dict, Tuple

import tensorflow as tf

GFunc = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]   # (latents [N, Z], labels [N, L]) -> images [N, C, H, W]
DFunc = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]   # (images [N, C, H, W], labels [N, L]) -> scores [N, 1]
LossResult = Tuple[tf.Tensor, Dict[str, tf.Tensor]]


def _scores(D: DFunc, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    scores = tf.cast(D(images, labels), tf.float32)
    tf.debugging.assert_rank(scores, 2, message='D must return scores of shape [N, 1]')
    return scores


def _gradient_penalty(D: DFunc, images: tf.Tensor, labels: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Scores of `images` and sum over C, H, W of the squared gradient of sum(scores) w.r.t. them.

    The inner tape sits inside whatever tape the caller holds, so the penalty stays
    differentiable with respect to D's weights (second-order gradients).
    """
    images = tf.convert_to_tensor(images)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(images)
        scores = _scores(D, images, labels)                       # [N, 1]
        total = tf.reduce_sum(scores)
    grads = tf.cast(tape.gradient(total, images), tf.float32)     # [N, C, H, W]
    penalty = tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])     # [N]
    return scores, penalty[:, None]                               # [N, 1], [N, 1]


def G_logistic_saturating(G: GFunc, D: DFunc, latents: tf.Tensor, labels: tf.Tensor) -> LossResult:
    """G loss log(1 - sigmoid(D(G(z)))) = -softplus(D(G(z))) (the original GAN minimax loss)."""
    fake_scores = _scores(D, G(latents, labels), labels)
    return -tf.nn.softplus(fake_scores), {'Loss/scores/fake': fake_scores}


def G_logistic_nonsaturating(G: GFunc, D: DFunc, latents: tf.Tensor, labels: tf.Tensor) -> LossResult:
    """The official v1 G loss: softplus(-D(G(z))) = -log(sigmoid(D(G(z)))).

    Args:
        G: generator callable in training mode.
        D: discriminator callable.
        latents: [N, latent_size] z ~ N(0, 1).
        labels: [N, label_size] random dataset labels ([N, 0] without labels).

    Returns:
        (loss [N, 1], stats).
    """
    fake_scores = _scores(D, G(latents, labels), labels)
    return tf.nn.softplus(-fake_scores), {'Loss/scores/fake': fake_scores}


def D_logistic(G: GFunc, D: DFunc, latents: tf.Tensor, reals: tf.Tensor, labels: tf.Tensor) -> LossResult:
    """D loss softplus(D(fake)) + softplus(-D(real)) without a gradient penalty."""
    return D_logistic_simplegp(G, D, latents, reals, labels, r1_gamma=0.0, r2_gamma=0.0)


def D_logistic_simplegp(G: GFunc, D: DFunc, latents: tf.Tensor, reals: tf.Tensor, labels: tf.Tensor,
                        r1_gamma: float = 10.0, r2_gamma: float = 0.0) -> LossResult:
    """The official v1 D loss: logistic loss with the R1 (and optional R2) gradient penalty.

    loss = softplus(D(G(z))) + softplus(-D(x)) + r1_gamma/2 * |dD(x)/dx|^2 + r2_gamma/2 * |dD(G(z))/dG(z)|^2,
    with the penalty gradients taken of sum(scores) over the minibatch and summed over C, H, W.
    The fakes are generated with the *real* minibatch labels (as officially).

    Args:
        G: generator callable in training mode (its weights are not differentiated here).
        D: discriminator callable.
        latents: [N, latent_size] z ~ N(0, 1).
        reals: [N, C, H, W] processed real images (float, drange of the networks).
        labels: [N, label_size] labels of the reals.
        r1_gamma: weight of the R1 penalty on reals; 0 disables it.
        r2_gamma: weight of the R2 penalty on fakes; 0 disables it.

    Returns:
        (loss [N, 1], stats).
    """
    fakes = G(latents, labels)
    stats = {}
    if r1_gamma != 0.0:
        real_scores, r1_penalty = _gradient_penalty(D, reals, labels)
        stats['Loss/r1_penalty'] = r1_penalty
    else:
        real_scores = _scores(D, reals, labels)
    if r2_gamma != 0.0:
        fake_scores, r2_penalty = _gradient_penalty(D, fakes, labels)
        stats['Loss/r2_penalty'] = r2_penalty
    else:
        fake_scores = _scores(D, fakes, labels)
    loss = tf.nn.softplus(fake_scores) + tf.nn.softplus(-real_scores)   # [N, 1]
    if r1_gamma != 0.0:
        loss += r1_penalty * (r1_gamma * 0.5)
    if r2_gamma != 0.0:
        loss += r2_penalty * (r2_gamma * 0.5)
    stats['Loss/scores/real'] = real_scores
    stats['Loss/scores/fake'] = fake_scores
    return loss, stats
