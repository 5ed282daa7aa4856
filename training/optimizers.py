"""Optimizers for training: the official Adam, AdamW and AdamP (Heo et al. 2021), all Keras 3.

`make_optimizer` is the one factory behind `--optimizer adam|adamw|adamp`. Defaults stay
official: Adam with beta1=0, beta2=0.99, epsilon=1e-8 (`tf.train.AdamOptimizer` of the
StyleGAN code). Keras' Adam uses the same "epsilon hat" form as TF1's Adam:
``w -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)``, and so does `AdamP`
here, so the three differ only in weight decay and AdamP's projection. The same formula, not the
same float32 rounding: TF1's kernel (`ResourceApplyAdam`) computes 1 - beta2 in float32 and keeps
beta^t in variables multiplied every step, Keras rounds the double 1 - beta2 and calls `pow`, so
their updates differ in the last bits of some elements (docs/performance.md, "The 64x64 ratio with
a longer baseline phase").

Keras 3 notes for the training loop:
* Build an optimizer on its variables (`opt.build(vars)`, or `make_optimizer(...,
  variables=vars)`) before the first `tf.function` or distributed step; building creates the
  slot variables, which must not happen inside a traced function.
* The learning rate is a variable: `opt.learning_rate = value` eagerly, or
  `opt.learning_rate.assign(value)` inside `tf.function`, changes it for the next step (the
  official schedule changes it per resolution).
* `reset_optimizer_state(opt)` zeroes moments and the step counter, as the official training
  does when `floor(lod)` or `ceil(lod)` changes.
"""
from typing import Optional, Sequence

import keras
import tensorflow as tf

OPTIMIZER_NAMES = ('adam', 'adamw', 'adamp')


class AdamP(keras.optimizers.Optimizer):
    """AdamP: Adam whose update loses its radial part on scale-invariant weights.

    Heo et al. 2021, "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
    Scale-invariant Weights". Per step, for a weight w with gradient g:

    1. Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
       update u = m / (sqrt(v) + eps) (nesterov: (b1 m + (1-b1) g) / (sqrt(v) + eps)).
    2. Only for weights of rank >= 2: treat w as scale-invariant if the cosine similarity of w
       and g is small, first per output channel (the last axis in Keras/TF layouts: dense
       [in, out], conv [kh, kw, in, out]) -- max over channels of |cos| < delta / sqrt(elements
       per channel) -- else for the whole tensor -- |cos| < delta / sqrt(size). If so, remove
       the component of u along w (per channel or whole: u -= w_hat <w_hat, u>) and scale the
       weight decay by wd_ratio.
    3. Decoupled weight decay as in AdamW: w *= 1 - lr * weight_decay * ratio.
    4. w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * u (the TF1/Keras bias-correction form).

    Biases, scalars and vectors take the plain AdamW step. `exclude_from_weight_decay` works
    as in Keras.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.0, beta_2=0.99, epsilon=1e-8,
                 weight_decay=0.0, delta=0.1, wd_ratio=0.1, nesterov=False, name='AdamP',
                 **kwargs):
        """Args:
            learning_rate: Float (becomes an assignable variable) or a Keras schedule.
            beta_1, beta_2: Moment decay rates (official StyleGAN: 0 and 0.99).
            epsilon: Added to sqrt(v) ("epsilon hat", as Keras and TF1 Adam).
            weight_decay: Decoupled weight decay factor (per unit learning rate).
            delta: Cosine threshold factor for detecting scale invariance (paper: 0.1).
            wd_ratio: Weight-decay multiplier on projected weights (paper: 0.1).
            nesterov: Use the Nesterov momentum form of the update.
            name: Optimizer name.
            **kwargs: Other `keras.optimizers.Optimizer` arguments (clipnorm, ...).
        """
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name,
                         **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.delta = delta
        self.wd_ratio = wd_ratio
        self.nesterov = nesterov

    def build(self, var_list):
        """Creates the first and second moment slots."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ['momentum', 'velocity'])

    def _apply_weight_decay(self, variables):
        # Decay is applied in update_step, where the projection's wd_ratio is known.
        del variables

    def _project(self, w, g, u):
        """Returns (u with its radial part removed where w looks scale-invariant, decay ratio)."""
        eps = tf.cast(self.epsilon, w.dtype)
        delta = tf.cast(self.delta, w.dtype)
        channels = w.shape[-1]
        # Channel view: [elements per channel, channels].
        w_c, g_c, u_c = (tf.reshape(t, [-1, channels]) for t in (w, g, u))
        per_channel = tf.cast(tf.shape(w_c)[0], w.dtype)
        w_c_norm = tf.norm(w_c, axis=0, keepdims=True)
        cos_c = tf.abs(tf.reduce_sum(w_c * g_c, axis=0)) / (
            (w_c_norm[0] + eps) * (tf.norm(g_c, axis=0) + eps))
        channel_hit = tf.reduce_max(cos_c) < delta / tf.sqrt(per_channel)
        w_c_hat = w_c / (w_c_norm + eps)
        u_channel = tf.reshape(
            u_c - w_c_hat * tf.reduce_sum(w_c_hat * u_c, axis=0, keepdims=True), tf.shape(u))
        # Layer view: the whole tensor as one vector.
        w_norm = tf.norm(w)
        cos_l = tf.abs(tf.reduce_sum(w * g)) / ((w_norm + eps) * (tf.norm(g) + eps))
        layer_hit = cos_l < delta / tf.sqrt(tf.cast(tf.size(w), w.dtype))
        w_hat = w / (w_norm + eps)
        u_layer = u - w_hat * tf.reduce_sum(w_hat * u)
        projected = tf.where(channel_hit, u_channel, tf.where(layer_hit, u_layer, u))
        ratio = tf.where(channel_hit | layer_hit, tf.cast(self.wd_ratio, w.dtype),
                         tf.ones([], w.dtype))
        return projected, ratio

    def update_step(self, gradient, variable, learning_rate):
        """One AdamP step for one variable."""
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        g = tf.cast(gradient, dtype)
        w = tf.convert_to_tensor(variable)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        t = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]

        self.assign(m, beta_1 * m + (1 - beta_1) * g)
        self.assign(v, beta_2 * v + (1 - beta_2) * tf.square(g))
        m_t, v_t = tf.convert_to_tensor(m), tf.convert_to_tensor(v)
        denom = tf.sqrt(v_t) + tf.cast(self.epsilon, dtype)
        u = (beta_1 * m_t + (1 - beta_1) * g) / denom if self.nesterov else m_t / denom

        ratio = tf.ones([], dtype)
        if len(variable.shape) >= 2:  # static: projection only for matrices and kernels
            u, ratio = self._project(w, g, u)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            w = w * (1 - lr * tf.cast(self.weight_decay, dtype) * ratio)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, t)) / (1 - tf.pow(beta_1, t))
        self.assign(variable, w - alpha * u)

    def get_config(self):
        config = super().get_config()
        config.update({'beta_1': self.beta_1, 'beta_2': self.beta_2, 'epsilon': self.epsilon,
                       'delta': self.delta, 'wd_ratio': self.wd_ratio,
                       'nesterov': self.nesterov})
        return config


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def make_optimizer(name: str = 'adam', learning_rate: float = 0.001, beta1: float = 0.0,
                   beta2: float = 0.99, epsilon: float = 1e-8, weight_decay: float = 0.0, *,
                   delta: float = 0.1, wd_ratio: float = 0.1, nesterov: bool = False,
                   variables: Optional[Sequence] = None,
                   opt_name: Optional[str] = None) -> keras.optimizers.Optimizer:
    """Creates the optimizer chosen by `--optimizer`.

    Args:
        name: 'adam' (official; no weight decay), 'adamw' (Keras AdamW, decoupled decay) or
            'adamp' (`AdamP`).
        learning_rate: Initial learning rate; a variable afterwards (`opt.learning_rate = x`).
        beta1, beta2, epsilon: Adam hyper-parameters (official: 0, 0.99, 1e-8).
        weight_decay: Decoupled weight decay for adamw/adamp (0 makes them plain Adam / AdamP
            without decay); must be 0 for adam.
        delta, wd_ratio, nesterov: AdamP only (paper defaults 0.1, 0.1, off).
        variables: If given, the optimizer is built on them now (needed before the first
            `tf.function` step).
        opt_name: Keras name of the optimizer (e.g. 'G_opt'); defaults to the class name.

    Returns:
        A `keras.optimizers.Optimizer`.

    Raises:
        ValueError: Naming the bad argument.
    """
    _check(name in OPTIMIZER_NAMES, f'--optimizer must be one of {", ".join(OPTIMIZER_NAMES)}, '
                                    f'got {name!r}')
    _check(learning_rate > 0, f'learning rate must be > 0, got {learning_rate}')
    _check(0 <= beta1 < 1, f'beta1 must be in [0, 1), got {beta1}')
    _check(0 <= beta2 < 1, f'beta2 must be in [0, 1), got {beta2}')
    _check(epsilon > 0, f'epsilon must be > 0, got {epsilon}')
    _check(weight_decay >= 0, f'weight_decay must be >= 0, got {weight_decay}')
    _check(name != 'adam' or weight_decay == 0,
           f'weight_decay {weight_decay} needs --optimizer adamw or adamp; adam keeps the '
           'official update without weight decay')
    _check(delta >= 0 and 0 <= wd_ratio <= 1,
           f'AdamP needs delta >= 0 and wd_ratio in [0, 1], got {delta}, {wd_ratio}')
    common = dict(learning_rate=float(learning_rate), beta_1=float(beta1), beta_2=float(beta2),
                  epsilon=float(epsilon))
    if opt_name is not None:
        common['name'] = opt_name
    if name == 'adam':
        opt = keras.optimizers.Adam(**common)
    elif name == 'adamw':
        opt = keras.optimizers.AdamW(weight_decay=float(weight_decay), **common)
    else:
        opt = AdamP(weight_decay=float(weight_decay), delta=float(delta),
                    wd_ratio=float(wd_ratio), nesterov=bool(nesterov), **common)
    if variables is not None:
        opt.build(list(variables))
    return opt


def reset_optimizer_state(opt: keras.optimizers.Optimizer) -> None:
    """Zeroes an optimizer's moments and iteration count; keeps its learning rate.

    The official training resets Adam's state whenever floor(lod) or ceil(lod) changes. Works
    for Adam, AdamW and AdamP (every optimizer variable but the learning rate is state). An
    unbuilt optimizer has no state: nothing happens. Usable eagerly and inside `tf.function`.
    """
    lr = opt.learning_rate
    for variable in opt.variables:
        if variable is lr:
            continue
        variable.assign(tf.zeros(variable.shape, variable.dtype))
