"""Building blocks shared by the StyleGAN (v1) and StyleGAN2 Keras ports.

Two kinds of things live here:

* Keras layers whose variables carry the **official names and layouts** on purpose: the variable
  names are the checkpoint format (spec 1.3, 1.5). A layer is given its official scope (for
  example ``'8x8/Conv0_up'``); :meth:`OfficialLayer.official_variables` returns
  ``{'8x8/Conv0_up/weight': var, ...}``. Keras forbids ``/`` in layer and variable names, so the
  Keras name is the scope with ``/`` replaced by ``.``; the official name is kept beside it.
  Stored values keep the official layout (conv weights HWIO, dense ``[in, out]``), so the
  conversion to and from official pickles never reshapes.
* Stateless ops (resampling, normalisation, minibatch stddev, equalized-lr scaling) with an
  explicit ``data_format``: ``'NHWC'`` (default, the only layout that is fast on CPU) or
  ``'NCHW'`` (for GPUs). Networks accept NCHW at their boundary and convert once.

:class:`OfficialModel` is the base of every network: it owns the non-layer variables (``lod``,
``noiseN``, ...), collects all official variables in creation (= pickle) order, and records the
build function name and static kwargs that an official pickle stores.
"""

import collections
import contextlib
import math
import threading
from typing import Dict, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

DATA_FORMATS = ('NHWC', 'NCHW')


# ------------------------------------------------------------------------------------------------
# Layout helpers.

def check_data_format(data_format: str) -> str:
    """Returns ``data_format`` after checking it is ``'NHWC'`` or ``'NCHW'``."""
    if data_format not in DATA_FORMATS:
        raise ValueError(f'data_format must be one of {DATA_FORMATS}, got {data_format!r}')
    return data_format


def channel_axis(data_format: str) -> int:
    """Index of the channel axis of a 4-D tensor."""
    return 3 if data_format == 'NHWC' else 1


def spatial_axes(data_format: str) -> Sequence[int]:
    """Indices of the H and W axes of a 4-D tensor."""
    return (1, 2) if data_format == 'NHWC' else (2, 3)


def from_nchw(x: tf.Tensor, data_format: str) -> tf.Tensor:
    """NCHW (API layout) -> internal layout."""
    return tf.transpose(x, [0, 2, 3, 1]) if data_format == 'NHWC' else x


def to_nchw(x: tf.Tensor, data_format: str) -> tf.Tensor:
    """Internal layout -> NCHW (API layout)."""
    return tf.transpose(x, [0, 3, 1, 2]) if data_format == 'NHWC' else x


def channel_shape(c: int, data_format: str) -> list:
    """Broadcast shape of a per-channel vector against a 4-D tensor."""
    return [1, 1, 1, c] if data_format == 'NHWC' else [1, c, 1, 1]


# ------------------------------------------------------------------------------------------------
# Equalized learning rate (spec 2.1).

def weight_scales(shape: Sequence[int], gain: float, use_wscale: bool, lrmul: float):
    """Init std and runtime multiplier of an equalized-lr weight of official ``shape``.

    ``fan_in`` is the product of all but the last dimension (kh*kw*in for convs, in for dense).

    Returns:
        (init_std, runtime_coef): stored init ~ N(0, init_std); runtime weight = W * runtime_coef.
    """
    fan_in = float(np.prod(shape[:-1]))
    he_std = gain / np.sqrt(fan_in)
    if use_wscale:
        return float(1.0 / lrmul), float(he_std * lrmul)
    return float(he_std / lrmul), float(lrmul)


# ------------------------------------------------------------------------------------------------
# Elementwise and normalisation ops.

def leaky_relu(x: tf.Tensor, alpha: float = 0.2) -> tf.Tensor:
    """Official v1 leaky ReLU ``max(x, alpha*x)`` (one fused TF op; same values)."""
    return tf.nn.leaky_relu(x, alpha=alpha)


ACTIVATIONS = {'lrelu': leaky_relu, 'relu': tf.nn.relu}   # both with gain sqrt(2) in v1


def activation(name: str):
    """The v1 activation function of ``nonlinearity`` (``'lrelu'`` or ``'relu'``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f'unknown nonlinearity {name!r}; expected one of {sorted(ACTIVATIONS)}')
    return ACTIVATIONS[name]


def pixel_norm(x: tf.Tensor, axis: int, epsilon: float = 1e-8) -> tf.Tensor:
    """``x * rsqrt(mean(x^2 over channels) + eps)`` (spec 2.4)."""
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=axis, keepdims=True) + epsilon)


def spatial_mean(x: tf.Tensor, data_format: str) -> tf.Tensor:
    """Mean over H and W per sample and channel, keepdims, reduced W first and then H.

    Why two steps: in NHWC the spatial axes are not the innermost ones, and TensorFlow's CPU
    kernel then sums each channel sequentially in float32 over H*W values (a million at 1024 px),
    whose rounding error grows with the count. Two reductions of at most 1024 values each keep
    the error near that of NVIDIA's NCHW reduction, at no extra cost.
    """
    h_axis, w_axis = spatial_axes(data_format)
    return tf.reduce_mean(tf.reduce_mean(x, axis=w_axis, keepdims=True), axis=h_axis,
                          keepdims=True)


def spatial_moments(x: tf.Tensor, data_format: str):
    """Accurate float32 moments over H, W per sample and channel, for instance normalisation.

    Returns ``(d, mean_d, var)`` with ``d = x - x[pixel 0]`` (a per-channel shift),
    ``mean_d = mean(d)`` and ``var = mean((d - mean_d)^2)``, so ``x - mean(x) = d - mean_d``.
    Why the shift: activations may have a mean far larger than their spread; summing them in
    float32 then loses the spread's digits (the classic shifted-data variance algorithm). The
    shift cancels exactly in ``d - mean_d`` and in every gradient, so it needs no gradient.
    """
    shift = tf.stop_gradient(x[:, :1, :1, :] if data_format == 'NHWC' else x[:, :, :1, :1])
    d = x - shift
    mean_d = spatial_mean(d, data_format)
    var = spatial_mean(tf.math.squared_difference(d, mean_d), data_format)
    return d, mean_d, var


def instance_norm(x: tf.Tensor, data_format: str, epsilon: float = 1e-8) -> tf.Tensor:
    """v1 instance norm over H, W per sample and channel (spec 2.4), see ``spatial_moments``."""
    d, mean_d, var = spatial_moments(x, data_format)
    return (d - mean_d) * tf.math.rsqrt(var + epsilon)


def lerp(a, b, t):
    """``a + (b - a) * t`` (official ``tflib.lerp``)."""
    return a + (b - a) * t


def lerp_clip(a, b, t):
    """``a + (b - a) * clip(t, 0, 1)`` (official ``tflib.lerp_clip``)."""
    return a + (b - a) * tf.clip_by_value(t, 0.0, 1.0)


# ------------------------------------------------------------------------------------------------
# Convolution and resampling ops (official TF semantics: correlation, 'SAME' = TF padding rule).

def conv2d(x: tf.Tensor, w: tf.Tensor, data_format: str, strides: int = 1,
           padding: str = 'SAME') -> tf.Tensor:
    """Plain 2-D cross-correlation with an HWIO kernel."""
    return tf.nn.conv2d(x, w, strides=strides, padding=padding, data_format=data_format)


def upscale2d(x: tf.Tensor, data_format: str, factor: int = 2) -> tf.Tensor:
    """Nearest-neighbour upscaling by an integer ``factor``."""
    if factor == 1:
        return x
    h_axis, w_axis = spatial_axes(data_format)
    return tf.repeat(tf.repeat(x, factor, axis=h_axis), factor, axis=w_axis)


def downscale2d(x: tf.Tensor, data_format: str, factor: int = 2) -> tf.Tensor:
    """Box-filter downscaling (mean of ``factor x factor`` blocks)."""
    if factor == 1:
        return x
    return tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding='VALID',
                            data_format=data_format)


def blur_kernel(f: Sequence[float]) -> np.ndarray:
    """Normalised separable 2-D kernel ``outer(f, f) / sum`` from a 1-D filter (v1 ``blur2d``)."""
    f = np.asarray(f, dtype=np.float32)
    if f.ndim == 1:
        f = f[:, np.newaxis] * f[np.newaxis, :]
    if f.ndim != 2:
        raise ValueError(f'blur_filter must be 1-D or 2-D, got shape {f.shape}')
    return f / np.sum(f)


def blur2d(x: tf.Tensor, kernel: np.ndarray, data_format: str) -> tf.Tensor:
    """Depthwise correlation with a fixed 2-D ``kernel``, stride 1, 'SAME' zero padding."""
    c = x.shape[channel_axis(data_format)]
    k = np.tile(kernel[:, :, np.newaxis, np.newaxis], [1, 1, c, 1]).astype(np.float32)
    return tf.nn.depthwise_conv2d(x, tf.constant(k), strides=[1, 1, 1, 1], padding='SAME',
                                  data_format=data_format)


def _summed_4x4_kernel_reference(w: tf.Tensor) -> tf.Tensor:
    """Sum of the four 1-pixel shifts of a zero-padded 3x3 kernel -> 4x4 kernel (spec 3.3)."""
    w = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
    return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]


def _summed_4x4_kernel(w: tf.Tensor) -> tf.Tensor:
    """`_summed_4x4_kernel_reference` with a cheaper gradient, equal to it to the bit.

    The reference's gradient pads the 4x4 gradient four times to 5x5 (the gradients of its
    windows), sums the four and crops the 3x3 middle (the pad's gradient); its strided slices
    even have StridedSliceGrad, a slow CPU kernel. Every 3x3 element of that sum has all four
    windows in it, so the gradient is the sum of four 3x3 windows of the 4x4 gradient, added in
    the order the reference's compiled graph adds them (window order: Grappler's AddN takes the
    window gradients sorted by op name), so every gradient stays the reference's to the bit
    (tests/test_lod_phase.py). Only first-order gradients flow through the kernel: R1 differentiates
    twice with respect to the images, once with respect to the weights.
    """
    @tf.custom_gradient
    def summed(w):
        p = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])

        def window(dy: int, dx: int) -> tf.Tensor:
            return tf.slice(p, [dy, dx, 0, 0], [4, 4, -1, -1])

        def grad(dk):
            def window3(dy: int, dx: int) -> tf.Tensor:
                return tf.slice(dk, [dy, dx, 0, 0], [3, 3, -1, -1])
            return tf.add_n([window3(0, 0), window3(1, 0), window3(0, 1), window3(1, 1)])
        return window(1, 1) + window(0, 1) + window(1, 0) + window(0, 0), grad
    return summed(w)


def fused_upscale2d_conv2d(x: tf.Tensor, w: tf.Tensor, data_format: str) -> tf.Tensor:
    """Official fused ×2 upscale + 3x3 conv: stride-2 transposed conv with a 4x4 summed kernel.

    Args:
        x: input ``[N, H, W, I]`` (or NCHW).
        w: runtime weight ``[3, 3, I, O]`` (HWIO).

    Returns:
        ``[N, 2H, 2W, O]``. Equals nearest ×2 upscaling followed by a 3x3 'SAME' conv with the
        spatially flipped kernel (a transposed conv is the adjoint of a correlation).
    """
    w = _summed_4x4_kernel(tf.transpose(w, [0, 1, 3, 2]))   # [4, 4, O, I]
    shape = tf.shape(x)
    out_c = w.shape[2]
    if data_format == 'NHWC':
        out_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, out_c])
        strides = [1, 2, 2, 1]
    else:
        out_shape = tf.stack([shape[0], out_c, shape[2] * 2, shape[3] * 2])
        strides = [1, 1, 2, 2]
    return tf.nn.conv2d_transpose(x, w, out_shape, strides=strides, padding='SAME',
                                  data_format=data_format)


def fused_conv2d_downscale2d(x: tf.Tensor, w: tf.Tensor, data_format: str) -> tf.Tensor:
    """Official fused 3x3 conv + 2x2 box downscale: stride-2 conv with ``0.25 * summed`` kernel.

    Equals a 3x3 'SAME' conv followed by 2x2 averaging (spec 3.4).
    """
    w = _summed_4x4_kernel(w) * 0.25                           # [4, 4, I, O]
    return conv2d(x, w, data_format, strides=2, padding='SAME')


# A non-fused resampling conv (nearest x2 then 3x3 conv, or 3x3 conv then 2x2 average) is the
# same linear map as one stride-2 convolution with a 4x4 summed kernel, the official fused ops'
# arithmetic: for 'down' exactly theirs; for 'up' their transposed conv on the kernel flipped in H
# and W (the official fused up-conv, being a transposed conv, computes the flipped function).
# Per pixel of the lower resolution it does 16 multiply-adds where the plain pair does 36. Which
# form runs is a speed choice only: measured on a 2-core CPU (`python bench/bench_resample.py`,
# docs/performance.md) the strided form is up to 2.4x faster from 32 px on (the up-conv's output,
# the down-conv's input) and slower below, where the plain pair stays.
STRIDED_RESAMPLE_MIN_SIZE = 32


def strided_resample_pays(size: Optional[int], resample: str) -> bool:
    """Whether a non-fused ``resample`` conv on an input of ``size`` x ``size`` pixels runs as the
    strided conv (see above); an unknown (dynamic) size keeps the plain pair."""
    if size is None:
        return False
    return (size * 2 if resample == 'up' else size) >= STRIDED_RESAMPLE_MIN_SIZE


def _strided_by_size(x: tf.Tensor, resample: str, data_format: str, strided: Optional[bool]) -> bool:
    if strided is None:
        return strided_resample_pays(x.shape[spatial_axes(data_format)[0]], resample)
    return strided


def _flip_hw_reference(w: tf.Tensor) -> tf.Tensor:
    """A [kh, kw, ...] kernel flipped in H and W."""
    return w[::-1, ::-1]


def _flip_hw(w: tf.Tensor) -> tf.Tensor:
    """`_flip_hw_reference` as a reverse: the same values, and its gradient is a reverse too,
    where a strided slice's is the slow StridedSliceGrad (see _summed_4x4_kernel)."""
    return tf.reverse(w, [0, 1])


def upscale2d_conv2d(x: tf.Tensor, w: tf.Tensor, data_format: str,
                     strided: Optional[bool] = None) -> tf.Tensor:
    """Nearest x2 upscale then 3x3 'SAME' conv, computed as the faster of its two forms.

    The readable form is ``conv2d(upscale2d(x), w)``; the strided one is the official fused
    transposed conv on ``w`` flipped in H and W (``test_fused_upscale_equals_nearest_then_conv``).
    ``strided`` None picks by size (``strided_resample_pays``); True / False force a form.
    """
    if _strided_by_size(x, 'up', data_format, strided):
        return fused_upscale2d_conv2d(x, _flip_hw(w), data_format)
    return conv2d(upscale2d(x, data_format), w, data_format)


def conv2d_downscale2d(x: tf.Tensor, w: tf.Tensor, data_format: str,
                       strided: Optional[bool] = None) -> tf.Tensor:
    """3x3 'SAME' conv then 2x2 average, computed as the faster of its two forms.

    The readable form is ``downscale2d(conv2d(x, w))``; the strided one is the official fused
    stride-2 conv, which computes exactly this (spec 3.4). ``strided`` as in ``upscale2d_conv2d``.
    """
    if _strided_by_size(x, 'down', data_format, strided):
        return fused_conv2d_downscale2d(x, w, data_format)
    return downscale2d(conv2d(x, w, data_format), data_format)


def minibatch_stddev(x: tf.Tensor, group_size: int, num_new_features: int,
                     data_format: str) -> tf.Tensor:
    """Official minibatch standard deviation layer (spec 2.6), appended as the last channel(s).

    Sample ``i`` belongs to group ``i mod (N/G)``; the statistic is averaged over the
    channels of each feature group and over H, W.
    """
    # x: [N, H, W, C] (or NCHW)
    n = tf.shape(x)[0]
    g = tf.minimum(group_size, n)
    if data_format == 'NHWC':
        _, h, w, c = x.shape
        y = tf.reshape(x, [g, -1, h, w, num_new_features, c // num_new_features])
        reduce_axes = [1, 2, 4]          # of [M, H, W, n, C/n]
        tiled = [g, h, w, 1]
    else:
        _, c, h, w = x.shape
        y = tf.reshape(x, [g, -1, num_new_features, c // num_new_features, h, w])
        reduce_axes = [2, 3, 4]          # of [M, n, C/n, H, W]
        tiled = [g, 1, h, w]
    y = y - tf.reduce_mean(y, axis=0, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)
    y = tf.reduce_mean(y, axis=reduce_axes)                     # [M, n]
    y = tf.reshape(y, [-1, 1, 1, num_new_features] if data_format == 'NHWC'
                   else [-1, num_new_features, 1, 1])
    y = tf.tile(y, tiled)                                      # [N, H, W, n] (or NCHW)
    return tf.concat([x, y], axis=channel_axis(data_format))


# ------------------------------------------------------------------------------------------------
# Keras layers with official variable names.

def keras_name(scope: str) -> str:
    """Keras-legal layer name for an official scope (Keras forbids ``/``)."""
    return scope.replace('/', '.') if scope else 'root'


def _normal(std: float):
    return keras.initializers.RandomNormal(mean=0.0, stddev=float(std))


class OfficialLayer(keras.layers.Layer):
    """A Keras layer whose variables have official names ``<scope>/<local name>``.

    Variables are created in ``__init__`` (not lazily in ``build``) so that their creation order,
    which is the official pickle order, is fixed by construction order.
    """

    def __init__(self, scope: str, **kwargs):
        super().__init__(name=keras_name(scope), **kwargs)
        self.scope = scope
        self._official_vars = collections.OrderedDict()

    def add_official_variable(self, local_name: str, shape: Sequence[int], initializer,
                              trainable: bool = True) -> keras.Variable:
        """Creates a float32 variable stored as ``<scope>/<local_name>`` in official files."""
        var = self.add_weight(name=local_name.split('/')[-1], shape=tuple(shape),
                              initializer=initializer, trainable=trainable, dtype='float32')
        full = f'{self.scope}/{local_name}' if self.scope else local_name
        self._official_vars[full] = var
        return var

    def official_variables(self) -> Dict[str, keras.Variable]:
        """Ordered dict official name -> variable (creation order)."""
        return self._official_vars


class Dense(OfficialLayer):
    """Equalized-lr fully connected layer, variable ``<scope>/weight [in, fmaps]`` (no bias).

    Inputs of rank > 2 are flattened in NCHW (channel-major) order, like the official ``dense``;
    pass NCHW tensors for that.
    """

    def __init__(self, scope: str, in_features: int, fmaps: int, gain: float = np.sqrt(2),
                 use_wscale: bool = True, lrmul: float = 1.0, weight_name: str = 'weight'):
        super().__init__(scope)
        shape = [in_features, fmaps]
        init_std, self.coef = weight_scales(shape, gain, use_wscale, lrmul)
        self.weight = self.add_official_variable(weight_name, shape, _normal(init_std))
        self.built = True

    def call(self, x):
        if len(x.shape) > 2:
            x = tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])
        return tf.matmul(x, self.weight * self.coef)


class Conv2d(OfficialLayer):
    """Equalized-lr conv, variable ``<scope>/weight [k, k, in, out]`` (HWIO, no bias).

    ``resample`` chooses the official v1 variants: ``None`` ('SAME' conv), ``'up'`` (nearest ×2
    then conv, or the fused transposed conv when ``fused``), ``'down'`` (conv then 2x2 average,
    or the fused stride-2 conv when ``fused``). The non-fused variants run strided from 32 px on
    (``STRIDED_RESAMPLE_MIN_SIZE``): the same function, fewer multiply-adds.
    """

    def __init__(self, scope: str, kernel: int, in_channels: int, fmaps: int,
                 gain: float = np.sqrt(2), use_wscale: bool = True, lrmul: float = 1.0,
                 data_format: str = 'NHWC', resample: Optional[str] = None, fused: bool = False):
        super().__init__(scope)
        if resample not in (None, 'up', 'down'):
            raise ValueError(f'resample must be None, "up" or "down", got {resample!r}')
        shape = [kernel, kernel, in_channels, fmaps]
        init_std, self.coef = weight_scales(shape, gain, use_wscale, lrmul)
        self.data_format = check_data_format(data_format)
        self.resample, self.fused = resample, bool(fused and resample)
        self.weight = self.add_official_variable('weight', shape, _normal(init_std))
        self.built = True

    def runtime_weight(self) -> tf.Tensor:
        """Stored weight times the equalized-lr multiplier."""
        return self.weight * self.coef

    def call(self, x):
        df, w = self.data_format, self.runtime_weight()
        if self.resample == 'up':
            if self.fused:
                return fused_upscale2d_conv2d(x, w, df)
            return upscale2d_conv2d(x, w, df)
        if self.resample == 'down':
            if self.fused:
                return fused_conv2d_downscale2d(x, w, df)
            return conv2d_downscale2d(x, w, df)
        return conv2d(x, w, df)


class Bias(OfficialLayer):
    """Per-channel bias ``<scope>/bias [C]`` applied as ``b * lrmul`` (init 0)."""

    def __init__(self, scope: str, channels: int, lrmul: float = 1.0, data_format: str = 'NHWC',
                 var_name: str = 'bias'):
        super().__init__(scope)
        self.lrmul, self.data_format = lrmul, check_data_format(data_format)
        self.bias = self.add_official_variable(var_name, [channels], 'zeros')
        self.built = True

    def call(self, x):
        b = self.bias * self.lrmul
        if len(x.shape) == 4:
            return x + tf.reshape(b, channel_shape(b.shape[0], self.data_format))
        return x + b


# ------------------------------------------------------------------------------------------------
# Base model.

class UnknownKwargsError(TypeError):
    """A build function got keyword arguments that no part of the network takes (a misspelled
    key in ``G_args``, say). ``unknown`` lists them."""

    def __init__(self, func_name: str, unknown, accepted):
        self.unknown = sorted(unknown)
        super().__init__(f'{func_name}: unknown keyword argument(s) {", ".join(map(repr, self.unknown))}; '
                         f'it takes {", ".join(sorted(accepted))}')


def check_kwargs(func_name: str, kwargs, *classes) -> None:
    """Raises UnknownKwargsError for a key that no ``__init__`` of ``classes`` names. The official
    build functions ignore unknown keys; here a typo in a config is an error instead. Only the
    whole networks (G_style, G_main, D_*) check: components get all of G's kwargs by design."""
    import inspect
    accepted = set()
    for cls in classes:
        accepted.update(n for n, p in inspect.signature(cls.__init__).parameters.items()
                        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != 'self')
    unknown = set(kwargs) - accepted
    if unknown:
        raise UnknownKwargsError(func_name, unknown, accepted)


class OfficialModel(keras.Model):
    """Base class of every network: official name, build function, static kwargs, variables.

    Subclasses create their variables in ``__init__`` through :meth:`add_official_variable` and
    :meth:`track_layer`, in official creation order, then call :meth:`finish_init`.

    Attributes:
        build_func_name: official build function name (dispatch key of ``tf2.checkpoint``).
        static_kwargs: the kwargs the network was built with (stored in pickles).
        components: ordered dict of sub-networks (``synthesis`` then ``mapping`` for G).
        state_version: state version written to pickles (kept from a loaded file).
        build_module_src: text written to pickles' ``build_module_src`` (kept from a loaded file).
    """

    build_func_name = None

    def __init__(self, name: str, static_kwargs: dict, data_format: str = 'NHWC'):
        super().__init__(name=name)
        self.static_kwargs = dict(static_kwargs)
        self.data_format = check_data_format(data_format)
        self.components = collections.OrderedDict()
        self.state_version = None
        self.build_module_src = None
        self._own_vars = collections.OrderedDict()
        self._official_layers = []

    def add_official_variable(self, name: str, shape: Sequence[int], initializer,
                              trainable: bool) -> keras.Variable:
        """Creates one of the network's own variables outside any layer (e.g. ``lod``)."""
        var = self.add_weight(name=name.split('/')[-1], shape=tuple(shape),
                              initializer=initializer, trainable=trainable, dtype='float32')
        self._own_vars[name] = var
        return var

    def track_layer(self, layer: OfficialLayer) -> OfficialLayer:
        """Registers ``layer``'s variables as own variables, in the order of this call."""
        self._own_vars.update(layer.official_variables())
        self._official_layers.append(layer)
        return layer

    def finish_init(self):
        """Marks the model built (all variables exist; Keras must not build lazily)."""
        self.built = True

    def finish_mapping_init(self, latent_size, label_size, dlatent_broadcast, dlatent_size):
        """finish_init of a mapping network (v1 and v2 alike): its official input/output shapes."""
        self.input_shapes = [[None, latent_size], [None, label_size]]
        self.output_shapes = [[None, dlatent_broadcast, dlatent_size] if dlatent_broadcast
                              else [None, dlatent_size]]
        self.finish_init()

    def own_official_variables(self) -> Dict[str, keras.Variable]:
        """Own variables (not the components'), official name -> variable, pickle order."""
        return collections.OrderedDict(self._own_vars)

    def official_variables(self) -> Dict[str, keras.Variable]:
        """All variables like official ``Network.vars``: own, then ``<component name>/<var>``."""
        out = self.own_official_variables()
        for comp in self.components.values():
            for k, v in comp.official_variables().items():
                out[f'{comp.name}/{k}'] = v
        return out


# ------------------------------------------------------------------------------------------------
# Progressive growing (spec 3.3, 3.4), shared by every network with a ``lod`` variable: the v1
# networks and StyleGAN2's configs b-d. Written once, so that the lod semantics cannot drift.

# A training step traces the networks once per lod *phase* instead of once for every lod: the
# recursive structure's tf.cond nest (and R1's double gradient through it) made one trace of the
# demo's D cost ~140 CPU-seconds, while the branches a given lod takes are known in Python. Inside
# ``static_lod_phase(lod)`` the same recursion runs with Python ``if`` in place of ``tf.cond``: the
# graph holds only the taken branches, the fade factor still reads the ``lod`` variable, so every
# lod of the phase gives the same numbers as the tf.cond graph (tests/test_lod_phase.py).

_static_lod = threading.local()


def lod_phase_key(lod: float) -> float:
    """A value that selects the same branches as ``lod``: floor(lod), or floor(lod) + 0.5 while
    fading. Use it as the traced-function argument, so that one trace serves a whole phase."""
    lod = float(np.float32(lod))                # the graph compares the float32 variable
    level = math.floor(lod)
    return float(level) if lod == level else level + 0.5


@contextlib.contextmanager
def static_lod_phase(lod: Optional[float]):
    """Progressive networks called (traced) inside take the branches of ``lod``'s phase.

    The caller must keep the networks' ``lod`` variables inside that phase (same floor, same
    "fading or not") while it runs the traced function; ``None`` restores tf.cond."""
    previous = getattr(_static_lod, 'value', None)
    _static_lod.value = None if lod is None else lod_phase_key(lod)
    try:
        yield
    finally:
        _static_lod.value = previous


def lod_branches(top: int) -> Optional[Tuple[int, bool]]:
    """(level, fading) the recursive structure with levels ``top..0`` takes in the current
    static phase, or None outside one. At level L it goes deeper while lod < L, and at the level
    where it stops it fades from the coarser image while lod > L."""
    lod = getattr(_static_lod, 'value', None)
    if lod is None:
        return None
    level = min(max(math.floor(lod), 0), top)
    return level, lod > level


def _branch(static: Optional[bool], pred, true_fn, false_fn):
    """``tf.cond(pred(), ...)``, or the branch a static phase already chose."""
    if static is None:
        return tf.cond(pred(), true_fn, false_fn)
    return true_fn() if static else false_fn()


def _deeper(phase, lod: int) -> Optional[bool]:
    return None if phase is None else lod > phase[0]


def _fading(phase, lod: int) -> Optional[bool]:
    return None if phase is None else (phase[1] and lod == phase[0])


class ProgressiveSynthesis:
    """Mixin of a synthesis network: the image at the current ``lod``, official structures.

    The network provides ``data_format``, ``resolution_log2``, ``structure`` ('fixed' or
    'recursive'), the variable ``lod``, ``_run_block(r, x, dlatents, randomize_noise, rng)``
    (features at ``2**(r-1)`` -> ``2**r``) and ``_rgb(r, x, dlatents)`` (features -> image).
    """

    def _synthesize(self, x, dlatents, randomize_noise, rng):
        """4x4 features x ``[N, 4, 4, C]`` -> image at full size (internal layout)."""
        rl = self.resolution_log2
        if self.structure == 'fixed':
            for r in range(3, rl + 1):
                x = self._run_block(r, x, dlatents, randomize_noise, rng)
            return self._rgb(rl, x, dlatents)
        if rl == 2:
            return self._rgb(2, x, dlatents)
        lod_in = tf.convert_to_tensor(self.lod)
        return self._grow(x, 3, rl - 3, lod_in, dlatents, randomize_noise, rng,
                          lod_branches(rl - 3))

    def _upscale_to_full(self, img, r):
        return upscale2d(img, self.data_format, 2 ** (self.resolution_log2 - r))

    def _grow(self, x, r, lod, lod_in, dlatents, randomize_noise, rng, phase=None):
        """Official 'recursive' structure: the image of blocks ``r..`` given block ``r-1``'s x.
        ``phase``: lod_branches() of a static phase, or None (tf.cond)."""
        y = self._run_block(r, x, dlatents, randomize_noise, rng)

        def plain():
            return self._upscale_to_full(self._rgb(r, y, dlatents), r)

        def blend():
            lower = upscale2d(self._rgb(r - 1, x, dlatents), self.data_format)
            return self._upscale_to_full(lerp(self._rgb(r, y, dlatents), lower, lod_in - lod), r)

        def deeper():
            return self._grow(y, r + 1, lod - 1, lod_in, dlatents, randomize_noise, rng, phase)

        def img():
            return _branch(_fading(phase, lod), lambda: lod_in > lod, blend, plain)

        if lod > 0:
            return _branch(_deeper(phase, lod), lambda: lod_in < lod, deeper, img)
        return img()


class ProgressiveDiscriminator:
    """Mixin of a discriminator: the 4x4 features of images at the current ``lod``.

    The network provides ``data_format``, ``resolution_log2``, ``structure``, the variable
    ``lod``, ``_block(r, x)`` (features at ``2**r`` -> ``2**(r-1)``) and ``_from_rgb(r, image)``.
    """

    def _discriminate(self, images):
        """images (internal layout, full size) -> features ``[N, 4, 4, C]``."""
        rl = self.resolution_log2
        if self.structure == 'fixed' or rl == 2:
            x = self._from_rgb(rl, images)
            for r in range(rl, 2, -1):
                x = self._block(r, x)
            return x
        return self._grow(2, rl - 2, tf.convert_to_tensor(self.lod), images, lod_branches(rl - 2))

    def _grow(self, r, lod, lod_in, images, phase=None):
        """Official 'recursive' structure: features at ``2**r`` entering block ``r``'s output.
        ``phase``: lod_branches() of a static phase, or None (tf.cond)."""
        def from_image():
            return self._from_rgb(r, downscale2d(images, self.data_format, 2 ** lod))

        def deeper():
            return self._grow(r + 1, lod - 1, lod_in, images, phase)

        if lod > 0:
            x = _branch(_deeper(phase, lod), lambda: lod_in < lod, deeper, from_image)
        else:
            x = from_image()
        if r == 2:
            return x
        x = self._block(r, x)

        def blend():
            lower = self._from_rgb(r - 1, downscale2d(images, self.data_format, 2 ** (lod + 1)))
            return lerp(x, lower, lod_in - lod)

        return _branch(_fading(phase, lod), lambda: lod_in > lod, blend, lambda: x)
