"""Optimizers for training: the official Adam, AdamW and AdamP (Heo et al. 2021), all Keras 3.

`make_optimizer` is the one factory behind `--optimizer adam|adamw|adamp`. Defaults stay
official: Adam with beta1=0, beta2=0.99, epsilon=1e-8 (`tf.train.AdamOptimizer` of the
StyleGAN code). `--optimizer adam` builds `TF1Adam`: TF1's Adam arithmetic to the bit (its fused
`ResourceApplyAdam` kernel, beta powers kept in variables). Keras' Adam, AdamW and `AdamP` use
the same "epsilon hat" formula,
``w -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)``, so the three differ
only in weight decay and AdamP's projection; but Keras rounds the double 1 - beta2 and calls
`pow`, so its updates differ from TF1's in the last bits of some elements (docs/performance.md,
"TF1's Adam becomes --optimizer adam").

Keras 3 notes for the training loop:
* Build an optimizer on its variables (`opt.build(vars)`, or `make_optimizer(...,
  variables=vars)`) before the first `tf.function` or distributed step; building creates the
  slot variables, which must not happen inside a traced function.
* The learning rate is a variable: `opt.learning_rate = value` eagerly, or
  `opt.learning_rate.assign(value)` inside `tf.function`, changes it for the next step (the
  official schedule changes it per resolution).
* `reset_optimizer_state(opt)` puts moments, step counter and beta powers back to their
  initial values, as the official training does when `floor(lod)` or `ceil(lod)` changes.
"""
from typing import Dict, Optional, Sequence

import keras
import numpy as np
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


class TF1Adam(keras.optimizers.Adam):
    """Adam with the arithmetic of TF1's `tf.train.AdamOptimizer`, bit for bit.

    The official code trains with TF1's Adam, whose update is one fused `ResourceApplyAdam` kernel
    per variable: m += (g - m) * (1 - beta1), v += (g^2 - v) * (1 - beta2),
    w -= lr * sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + epsilon), with 1 - beta
    computed in float32 and beta^t kept in two variables that start at beta and are multiplied by
    beta after every apply. Keras' Adam has the same formula but other roundings (the double
    1 - 0.99 rounded to 0.01f where TF1 has 1 - 0.99f = 0.0099999905; `pow(beta, t)` where TF1
    multiplies), so its weights drift from the official ones in the last bits. This class keeps
    Keras' moment slots and step counter and adds the two power variables after them; it is also
    about 2 % faster per 64x64 demo step (one kernel per variable where Keras runs several).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.0, beta_2=0.99, epsilon=1e-8, name='TF1Adam',
                 **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         name=name, **kwargs)
        if self.amsgrad or self.weight_decay:
            raise ValueError('TF1Adam has neither amsgrad nor weight decay (TF1 Adam had neither)')

    def build(self, var_list):
        """Keras' moment slots, then beta1_power and beta2_power (TF1's names)."""
        if self.built:
            return
        super().build(var_list)
        # Updated once per apply, outside the per-replica update, like Keras' step counter.
        def power(beta, name):
            return self.add_variable((), initializer=keras.initializers.Constant(beta),
                                     dtype='float32', aggregation='only_first_replica', name=name)
        self._beta_1_power = power(self.beta_1, 'beta_1_power')
        self._beta_2_power = power(self.beta_2, 'beta_2_power')

    def update_step(self, gradient, variable, learning_rate):
        """One `ResourceApplyAdam`: TF1's `_resource_apply_dense` with float32 hyper-parameters."""
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.cast(self._beta_1_power.value, dtype),
            beta2_power=tf.cast(self._beta_2_power.value, dtype),
            lr=tf.cast(learning_rate, dtype), beta1=tf.constant(self.beta_1, dtype),
            beta2=tf.constant(self.beta_2, dtype), epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False)

    def _powers(self):
        """(power variable, its beta) for beta1 and beta2."""
        return ((self._beta_1_power, self.beta_1), (self._beta_2_power, self.beta_2))

    def apply(self, grads, trainable_variables=None):
        """Keras' apply, then TF1's `_finish`: both powers times their beta."""
        result = super().apply(grads, trainable_variables)
        for power, beta in self._powers():
            power.assign(power * tf.constant(beta, tf.float32))
        return result

    def reset_beta_powers(self) -> None:
        """Back to the initial beta1, beta2 (TF1's initializers; the lod-phase reset)."""
        for power, beta in self._powers():
            power.assign(beta)

    def beta_powers_after(self, steps: int) -> Dict[str, np.ndarray]:
        """The two power variables' values after `steps` applies: beta multiplied into a float32
        `steps` times, as `apply` does (for training states saved before the powers existed).
        TensorFlow's CPU kernels flush subnormal results to zero, so products below float32's
        smallest normal number become 0 here too (numpy alone would keep them)."""
        tiny = np.finfo(np.float32).tiny
        values = {}
        for power, beta in self._powers():
            beta32 = value = np.float32(beta)
            for _ in range(int(steps)):
                if value == 0:      # every later product is 0 too
                    break
                value = np.float32(value * beta32)
                if abs(value) < tiny:
                    value = np.float32(0)
            values[power.path] = np.array(value, np.float32)
        return values


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
        name: 'adam' (official: `TF1Adam`), 'adamw' (Keras AdamW, decoupled decay) or
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
        opt = TF1Adam(**common)
    elif name == 'adamw':
        opt = keras.optimizers.AdamW(weight_decay=float(weight_decay), **common)
    else:
        opt = AdamP(weight_decay=float(weight_decay), delta=float(delta),
                    wd_ratio=float(wd_ratio), nesterov=bool(nesterov), **common)
    if variables is not None:
        opt.build(list(variables))
    return opt


def reset_optimizer_state(opt: keras.optimizers.Optimizer) -> None:
    """Puts an optimizer's state back to its initial values; keeps its learning rate.

    The official training re-initialises Adam's variables whenever floor(lod) or ceil(lod)
    changes: moments and step counter to 0, `TF1Adam`'s beta powers to beta1, beta2. Works for
    every optimizer here (every variable but the learning rate is state). An unbuilt optimizer
    has no state: nothing happens. Usable eagerly and inside `tf.function`.
    """
    lr = opt.learning_rate
    for variable in opt.variables:
        if variable is lr:
            continue
        variable.assign(tf.zeros(variable.shape, variable.dtype))
    if isinstance(opt, TF1Adam) and opt.built:
        opt.reset_beta_powers()


def complete_saved_state(opt: keras.optimizers.Optimizer,
                         arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Adds `TF1Adam`'s beta powers to optimizer arrays saved without them.

    `arrays` are keyed '<index>:<variable path>' in `opt.variables` order. States saved when
    `--optimizer adam` was Keras' Adam have the same variables but the last two (the same slots,
    so the moments carry over); the powers follow from the saved step counter, as TF1's would
    have. Anything else is returned unchanged for the caller's count and shape checks.
    """
    variables = list(opt.variables)
    if not isinstance(opt, TF1Adam) or len(arrays) != len(variables) - 2 \
            or any(key.endswith('_power') for key in arrays):
        return arrays
    keys = sorted(arrays)
    step_index = next(i for i, v in enumerate(variables) if v is opt.iterations)
    powers = opt.beta_powers_after(int(arrays[keys[step_index]]))
    completed = dict(arrays)
    for index, path in enumerate(powers, start=len(keys)):
        completed[f'{index:04d}:{path}'] = powers[path]
    return completed
