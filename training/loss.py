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


# ------------------------------------------------------------------------------------------------
# StyleGAN2 losses (spec 6.7), with lazy regularisation.
#
# `reg` chooses what a call computes, because with lazy regularisation the training loop takes
# separate optimizer steps for the main loss and for the regulariser (official G_reg_op /
# D_reg_op): 'none' = main loss only, 'only' = regulariser only (per sample, not yet multiplied
# by the interval), 'both' = their sum (official non-lazy mode: `loss += reg`).

REG_MODES = ('none', 'only', 'both')


def _check_reg_mode(reg: str) -> None:
    if reg not in REG_MODES:
        raise ValueError(f"loss: reg={reg!r}; expected one of {', '.join(REG_MODES)}")


def _combine(loss, reg):
    """loss [N, 1] and reg [M, 1] (M may differ) -> [N, 1] whose mean is mean(loss) + mean(reg)."""
    return loss + tf.reduce_mean(reg)


def D_logistic_r1(G: GFunc, D: DFunc, latents: tf.Tensor, reals: tf.Tensor, labels: tf.Tensor,
                  gamma: float = 10.0, reg: str = 'both') -> LossResult:
    """The official StyleGAN2 D loss: softplus(D(fake)) + softplus(-D(real)), R1 regulariser.

    reg term = gamma * 0.5 * sum over C, H, W of (d sum(D(reals)) / d reals)^2, per real image.
    On a regularisation-only call (reg='only') neither G nor D(fakes) runs.

    Args:
        G: generator callable in training mode.
        D: discriminator callable.
        latents: [N, latent_size] z ~ N(0, 1).
        reals: [N, C, H, W] processed real images.
        labels: [N, label_size] labels of the reals (the fakes use them too, as officially).
        gamma: R1 weight (config-f 10, config-e 100); 0 makes the regulariser 0.
        reg: 'none', 'only' or 'both' (see above).

    Returns:
        (loss [N, 1], stats).
    """
    _check_reg_mode(reg)
    stats = {}
    loss = penalty = None
    if reg != 'none':
        real_scores, penalty = _gradient_penalty(D, reals, labels)          # [N, 1], [N, 1]
        stats['Loss/r1_penalty'] = penalty
        penalty = penalty * (gamma * 0.5)
    else:
        real_scores = _scores(D, reals, labels)
    stats['Loss/scores/real'] = real_scores
    if reg != 'only':
        fake_scores = _scores(D, G(latents, labels), labels)
        stats['Loss/scores/fake'] = fake_scores
        loss = tf.nn.softplus(fake_scores) + tf.nn.softplus(-real_scores)   # [N, 1]
    if reg == 'none':
        return loss, stats
    if reg == 'only':
        return penalty, stats
    return loss + penalty, stats


def G_logistic_ns_pathreg(G: GFunc, D: DFunc, latents: tf.Tensor, labels: tf.Tensor,
                          pl_mean: tf.Variable = None, rng: tf.random.Generator = None,
                          reg: str = 'both', pl_minibatch_shrink: int = 2, pl_decay: float = 0.01,
                          pl_weight: float = 2.0, pl_labels: tf.Tensor = None) -> LossResult:
    """The official StyleGAN2 G loss: softplus(-D(G(z))) with path-length regularisation.

    Regulariser, on a batch of its own as officially: with pl_minibatch_shrink > 1, n = N // it
    fresh latents z ~ N(0, 1) from `rng` and the first n of `pl_labels` (random dataset labels
    drawn for it); with shrink 1, the main batch's latents and labels:
        images, w = G(z, return_dlatents=True)                  # w [n, L, D]
        pl_noise = N(0, 1) / sqrt(H * W)                        # same shape as images
        pl_grads = d sum(images * pl_noise) / d w
        pl_lengths = sqrt(mean over L of sum over D of pl_grads^2)     # [n]
        pl_mean <- pl_mean + pl_decay * (mean(pl_lengths) - pl_mean)   # assigned to the variable
        reg = (pl_lengths - pl_mean)^2 * pl_weight
    As officially, the penalty uses the updated pl_mean as a tensor (so a small part of the
    gradient flows through mean(pl_lengths)), and the variable is updated on every
    regularisation call. G is called as `G(latents, labels, return_dlatents=True)`.

    Args:
        G: generator callable in training mode; must accept `return_dlatents=True`.
        D: discriminator callable.
        latents: [N, latent_size] z ~ N(0, 1).
        labels: [N, label_size] random dataset labels.
        pl_mean: scalar float32 `tf.Variable` holding the running mean of the path lengths
            (created by the caller, see `make_state_variables`, and saved for resume). Needed
            unless reg='none'.
        rng: random stream for pl_noise; None uses global `tf.random`.
        reg: 'none', 'only' or 'both' (see above).
        pl_minibatch_shrink: the regulariser's batch is N // this.
        pl_decay: decay of the running mean pl_mean.
        pl_weight: weight of the regulariser.
        pl_labels: [N, label_size] random dataset labels for the regulariser's own batch
            (pl_minibatch_shrink > 1). None: `labels` (the same distribution, since those are
            random dataset labels too, and the only choice for unlabelled data).

    Returns:
        (loss [N, 1] (reg='only': [n, 1]), stats).
    """
    _check_reg_mode(reg)
    stats = {}
    loss = penalty = None
    if reg != 'only':
        fake_scores = _scores(D, G(latents, labels), labels)
        stats['Loss/scores/fake'] = fake_scores
        loss = tf.nn.softplus(-fake_scores)                                  # [N, 1]
    if reg != 'none':
        if pl_mean is None:
            raise ValueError('G_logistic_ns_pathreg: pl_mean (a scalar tf.Variable) is needed '
                             'for the path-length regulariser')
        penalty, pl_lengths = _path_length_penalty(
            G, latents, labels if pl_labels is None else pl_labels, pl_mean, rng,
            pl_minibatch_shrink, pl_decay)
        stats['Loss/pl_lengths'] = pl_lengths
        penalty = penalty * pl_weight                                        # [n, 1]
    if reg == 'none':
        return loss, stats
    if reg == 'only':
        return penalty, stats
    return _combine(loss, penalty), stats


def _path_length_penalty(G, latents, labels, pl_mean, rng, pl_minibatch_shrink, pl_decay):
    """(pl_lengths - updated pl_mean)^2 [n, 1] and pl_lengths [n, 1]; updates pl_mean."""
    latents = tf.convert_to_tensor(latents)
    labels = tf.convert_to_tensor(labels)
    n = tf.shape(latents)[0] // pl_minibatch_shrink if pl_minibatch_shrink > 1 else tf.shape(latents)[0]
    tf.debugging.assert_positive(n, message='G_logistic_ns_pathreg: the path-length batch '
                                            '(minibatch // pl_minibatch_shrink) is empty')
    if pl_minibatch_shrink > 1:
        # Its own latents, as the official loss draws: not the main batch's first n.
        shape = tf.stack([n, tf.shape(latents)[1]])
        pl_latents = rng.normal(shape) if rng is not None else tf.random.normal(shape)
    else:
        pl_latents = latents
    pl_labels = labels[:n]
    # Record the whole forward pass, so that the gradient w.r.t. the intermediate dlatents exists
    # even for callables without variables; it stays inside the caller's tape (second order).
    with tf.GradientTape() as tape:
        tape.watch(pl_latents)
        images, dlatents = G(pl_latents, pl_labels, return_dlatents=True)    # [n, C, H, W], [n, L, D]
        images = tf.cast(images, tf.float32)
        shape = tf.shape(images)
        noise = rng.normal(shape) if rng is not None else tf.random.normal(shape)
        noise = noise / tf.sqrt(tf.cast(shape[2] * shape[3], tf.float32))
        total = tf.reduce_sum(images * noise)
    pl_grads = tf.cast(tape.gradient(total, dlatents), tf.float32)          # [n, L, D]
    pl_lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(pl_grads), axis=2), axis=1))  # [n]
    old_mean = tf.convert_to_tensor(pl_mean)      # a variable, or the training loop's per-shard cell
    new_mean = old_mean + pl_decay * (tf.reduce_mean(pl_lengths) - old_mean)
    pl_mean.assign(new_mean)
    penalty = tf.square(pl_lengths - new_mean)                               # [n]
    return penalty[:, None], pl_lengths[:, None]


# Variables a loss keeps between steps: function name -> {keyword: initial value}. The training
# loop creates them (`make_state_variables`), passes them by keyword and saves them for resume.
STATE_VARIABLES = {'G_logistic_ns_pathreg': {'pl_mean': 0.0}}


def make_state_variables(loss_func: Callable) -> Dict[str, tf.Variable]:
    """The scalar float32 state variables `loss_func` takes by keyword (e.g. pl_mean), fresh."""
    init = STATE_VARIABLES.get(getattr(loss_func, '__name__', ''), {})
    return {name: tf.Variable(value, dtype=tf.float32, trainable=False, name=name)
            for name, value in init.items()}
