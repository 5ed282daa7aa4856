"""StyleGAN2's custom ops in graph mode: fused_bias_act and the upfirdn_2d family.

Official ``dnnlib.tflib.ops.fused_bias_act`` and ``dnnlib.tflib.ops.upfirdn_2d`` API, written from
the project spec (shared/spec/official-stylegan.md, section 4.1). The official code has a CUDA
kernel and a reference implementation of each op and the reference one defines the math; legacy_tf
has only the reference implementation (``impl='ref'``), built from plain TensorFlow ops so that it
runs on CPU. Asking for another implementation is an error, never a silent fallback.

Layouts: ``upfirdn_2d`` takes ``[major, H, W, minor]`` like the official op. The wrappers take
``data_format='NCHW'`` (official default) or ``'NHWC'``; NCHW inputs are transposed to NHWC for the
convolutions, because NCHW convolutions have no CPU kernel. Spatial sizes must be known while the
graph is built; batch and channel counts may be dynamic (the fused modulated convolution folds the
batch into the channel axis).
"""

from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

__all__ = ['ACTIVATION_FUNCS', 'fused_bias_act', 'setup_kernel', 'upfirdn_2d', 'upsample_2d',
           'downsample_2d', 'upsample_conv_2d', 'conv_downsample_2d', 'filter_2d']

# act name -> (function of (x, alpha), default alpha, default gain); spec 4.1.
ACTIVATION_FUNCS = {
    'linear':   (lambda x, alpha: x, None, 1.0),
    'relu':     (lambda x, alpha: tf.nn.relu(x), None, np.sqrt(2)),
    'lrelu':    (lambda x, alpha: tf.nn.leaky_relu(x, alpha), 0.2, np.sqrt(2)),
    'tanh':     (lambda x, alpha: tf.nn.tanh(x), None, 1.0),
    'sigmoid':  (lambda x, alpha: tf.nn.sigmoid(x), None, 1.0),
    'elu':      (lambda x, alpha: tf.nn.elu(x), None, 1.0),
    'selu':     (lambda x, alpha: tf.nn.selu(x), None, 1.0),
    'softplus': (lambda x, alpha: tf.nn.softplus(x), None, 1.0),
    'swish':    (lambda x, alpha: tf.nn.sigmoid(x) * x, None, np.sqrt(2)),
}


def _check_impl(impl: str, op: str) -> None:
    if impl != 'ref':
        raise ValueError(f'legacy_tf.tflib.ops.{op}: impl={impl!r} is not available; legacy_tf '
                         "has only the reference implementation (impl='ref')")


# ------------------------------------------------------------------------------------------------
# fused_bias_act.

def fused_bias_act(x: Any, b: Any = None, axis: int = 1, act: str = 'linear',
                   alpha: Optional[float] = None, gain: Optional[float] = None,
                   impl: str = 'ref') -> tf.Tensor:
    """``act(x + b, alpha) * gain``, the bias broadcast along ``axis`` (official reference math).

    Args:
        x: tensor of any rank.
        b: 1-D bias with ``x.shape[axis]`` entries, or None.
        axis: axis of ``x`` that ``b`` runs along (negative values count from the end).
        act: one of :data:`ACTIVATION_FUNCS` ('linear', 'relu', 'lrelu', ...).
        alpha: slope of 'lrelu' (None = 0.2).
        gain: output scale (None = the activation's default: sqrt(2) for relu/lrelu/swish, else 1).
        impl: 'ref' (the only implementation here).

    Returns:
        A tensor shaped like ``x``.
    """
    _check_impl(impl, 'fused_bias_act')
    if act not in ACTIVATION_FUNCS:
        raise ValueError(f'fused_bias_act: unknown act {act!r}; choose one of '
                         f'{sorted(ACTIVATION_FUNCS)}')
    func, def_alpha, def_gain = ACTIVATION_FUNCS[act]
    alpha = def_alpha if alpha is None else float(alpha)
    gain = float(def_gain if gain is None else gain)
    x = tf.convert_to_tensor(x)
    if b is not None:
        b = tf.cast(tf.convert_to_tensor(b), x.dtype)
        rank = x.shape.rank
        axis = axis % rank
        if b.shape.rank != 1 or (b.shape[0] is not None and x.shape[axis] is not None
                                 and b.shape[0] != x.shape[axis]):
            raise ValueError(f'fused_bias_act: bias of shape {b.shape} does not match axis '
                             f'{axis} of x with shape {x.shape}')
        x = x + tf.reshape(b, [-1 if i == axis else 1 for i in range(rank)])
    x = func(x, alpha)
    if gain != 1:
        x = x * gain
    return x


# ------------------------------------------------------------------------------------------------
# upfirdn_2d.

def setup_kernel(k: Any) -> np.ndarray:
    """FIR kernel: a 1-D ``k`` becomes ``outer(k, k)``; then it is divided by its sum."""
    k = np.asarray(k, dtype=np.float32)
    if k.ndim == 1:
        k = np.outer(k, k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.size == 0:
        raise ValueError(f'FIR kernel must be 1-D or square 2-D, got shape {k.shape}')
    total = np.sum(k)
    if total == 0:
        raise ValueError('FIR kernel sums to zero and cannot be normalised')
    return k / total


def _dim(x: tf.Tensor, axis: int) -> Any:
    """Static size of an axis, or its dynamic size when unknown while building."""
    size = x.shape[axis]
    return int(size) if size is not None else tf.shape(x)[axis]


def _spatial(x: tf.Tensor, axes: Sequence[int], op: str) -> Sequence[int]:
    sizes = [x.shape[a] for a in axes]
    if any(s is None for s in sizes):
        raise ValueError(f'{op}: spatial size must be known while building the graph, got '
                         f'shape {x.shape}')
    return [int(s) for s in sizes]


def upfirdn_2d(x: Any, k: Any, upx: int = 1, upy: int = 1, downx: int = 1, downy: int = 1,
               padx0: int = 0, padx1: int = 0, pady0: int = 0, pady1: int = 0,
               impl: str = 'ref') -> tf.Tensor:
    """Upsample, pad, FIR filter and downsample a batch of 2-D images (spec 4.1).

    1. Insert ``up - 1`` zeros after every sample (input pixel i goes to i * up).
    2. Pad with ``pad0`` zeros before and ``pad1`` after; a negative pad crops.
    3. VALID true convolution with ``k`` (correlation with ``k[::-1, ::-1]``).
    4. Keep every ``down``-th sample starting at index 0.

    Args:
        x: ``[major, H, W, minor]``; every (major, minor) image is filtered separately.
        k: 2-D FIR kernel ``[kH, kW]`` (used as given: no normalisation here).
        upx, upy, downx, downy: integer resampling factors (>= 1).
        padx0, padx1, pady0, pady1: padding in samples after upsampling.
        impl: 'ref'.

    Returns:
        ``[major, (H*upy + pady0 + pady1 - kH)//downy + 1, (W*upx + ...)//downx + 1, minor]``.
    """
    _check_impl(impl, 'upfirdn_2d')
    x = tf.convert_to_tensor(x)
    k = np.asarray(k, dtype=np.float32)
    if x.shape.rank != 4:
        raise ValueError(f'upfirdn_2d: x must be [major, H, W, minor], got shape {x.shape}')
    if k.ndim != 2:
        raise ValueError(f'upfirdn_2d: k must be 2-D, got shape {k.shape}')
    for name, f in (('upx', upx), ('upy', upy), ('downx', downx), ('downy', downy)):
        if int(f) != f or f < 1:
            raise ValueError(f'upfirdn_2d: {name} must be an integer >= 1, got {f}')
    in_h, in_w = _spatial(x, [1, 2], 'upfirdn_2d')
    minor = _dim(x, 3)
    kh, kw = k.shape

    # 1. Zero insertion: [major, H, 1, W, 1, minor] padded to [major, H, upy, W, upx, minor].
    if upx > 1 or upy > 1:
        x = tf.reshape(x, [-1, in_h, 1, in_w, 1, minor])
        x = tf.pad(x, [[0, 0], [0, 0], [0, upy - 1], [0, 0], [0, upx - 1], [0, 0]])
        x = tf.reshape(x, [-1, in_h * upy, in_w * upx, minor])
    # 2. Zero padding (positive) and cropping (negative).
    x = tf.pad(x, [[0, 0], [max(pady0, 0), max(pady1, 0)], [max(padx0, 0), max(padx1, 0)],
                   [0, 0]])
    h, w = in_h * upy + max(pady0, 0) + max(pady1, 0), in_w * upx + max(padx0, 0) + max(padx1, 0)
    x = x[:, max(-pady0, 0):h - max(-pady1, 0), max(-padx0, 0):w - max(-padx1, 0), :]
    h, w = h - max(-pady0, 0) - max(-pady1, 0), w - max(-padx0, 0) - max(-padx1, 0)
    if h < kh or w < kw:
        raise ValueError(f'upfirdn_2d: padded input {h}x{w} is smaller than the kernel {kh}x{kw}')
    # 3.-4. Every image as its own one-channel batch item: [major*minor, h, w, 1].
    x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, h, w, 1])
    flipped = tf.constant(k[::-1, ::-1, np.newaxis, np.newaxis].copy(), dtype=x.dtype)
    x = tf.nn.conv2d(x, flipped, strides=[1, downy, downx, 1], padding='VALID')
    out_h, out_w = (h - kh) // downy + 1, (w - kw) // downx + 1
    x = tf.reshape(x, [-1, minor, out_h, out_w])
    return tf.transpose(x, [0, 2, 3, 1])


def _check_format(data_format: str, op: str) -> None:
    if data_format not in ('NCHW', 'NHWC'):
        raise ValueError(f"{op}: data_format must be 'NCHW' or 'NHWC', got {data_format!r}")


def _to_nhwc(x: tf.Tensor, data_format: str) -> tf.Tensor:
    return tf.transpose(x, [0, 2, 3, 1]) if data_format == 'NCHW' else x


def _from_nhwc(x: tf.Tensor, data_format: str) -> tf.Tensor:
    return tf.transpose(x, [0, 3, 1, 2]) if data_format == 'NCHW' else x


def _simple_upfirdn_2d(x, k, up=1, down=1, pad0=0, pad1=0, data_format='NCHW', impl='ref'):
    """upfirdn_2d with the same factor and pads on both axes, on NCHW or NHWC images."""
    _check_format(data_format, 'upfirdn_2d')
    x = tf.convert_to_tensor(x)
    if x.shape.rank != 4:
        raise ValueError(f'expected a 4-D {data_format} tensor, got shape {x.shape}')
    y = upfirdn_2d(_to_nhwc(x, data_format), k, upx=up, upy=up, downx=down, downy=down,
                   padx0=pad0, padx1=pad1, pady0=pad0, pady1=pad1, impl=impl)
    return _from_nhwc(y, data_format)


def _check_factor(factor: Any, op: str) -> int:
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f'{op}: factor must be an integer >= 1, got {factor!r}')
    return int(factor)


def upsample_2d(x: Any, k: Any = None, factor: int = 2, gain: float = 1,
                data_format: str = 'NCHW', impl: str = 'ref') -> tf.Tensor:
    """Upsample by ``factor`` with the FIR filter ``k`` (default ``[1]*factor``: nearest).

    Kernel ``setup_kernel(k) * gain * factor**2``; pads ``((p+1)//2 + factor - 1, p//2)`` with
    ``p = kH - factor``: (2, 1) for [1, 3, 3, 1].
    """
    factor = _check_factor(factor, 'upsample_2d')
    k = setup_kernel([1] * factor if k is None else k) * (gain * factor ** 2)
    p = k.shape[0] - factor
    return _simple_upfirdn_2d(x, k, up=factor, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2,
                              data_format=data_format, impl=impl)


def downsample_2d(x: Any, k: Any = None, factor: int = 2, gain: float = 1,
                  data_format: str = 'NCHW', impl: str = 'ref') -> tf.Tensor:
    """FIR filter with ``k`` (default ``[1]*factor``: box) and downsample by ``factor``.

    Kernel ``setup_kernel(k) * gain``; pads ``((p+1)//2, p//2)`` with ``p = kH - factor``.
    """
    factor = _check_factor(factor, 'downsample_2d')
    k = setup_kernel([1] * factor if k is None else k) * gain
    p = k.shape[0] - factor
    return _simple_upfirdn_2d(x, k, down=factor, pad0=(p + 1) // 2, pad1=p // 2,
                              data_format=data_format, impl=impl)


def filter_2d(x: Any, k: Any, gain: float = 1, data_format: str = 'NCHW',
              impl: str = 'ref') -> tf.Tensor:
    """FIR filter with ``k`` keeping the size: pads ``((p+1)//2, p//2)``, ``p = kH - 1``."""
    k = setup_kernel(k) * gain
    p = k.shape[0] - 1
    return _simple_upfirdn_2d(x, k, pad0=(p + 1) // 2, pad1=p // 2, data_format=data_format,
                              impl=impl)


def _conv_weight(w: Any, op: str):
    w = tf.convert_to_tensor(w)
    if w.shape.rank != 4 or any(d is None for d in w.shape[:3]):
        raise ValueError(f'{op}: w must be [kh, kw, in, out] with known kh, kw and in, got '
                         f'shape {w.shape}')
    kh, kw, in_c = (int(d) for d in w.shape[:3])
    if kh != kw:
        raise ValueError(f'{op}: only square kernels are supported, got {kh}x{kw}')
    return w, kh, kw, in_c


def upsample_conv_2d(x: Any, w: Any, k: Any = None, factor: int = 2, gain: float = 1,
                     data_format: str = 'NCHW', impl: str = 'ref') -> tf.Tensor:
    """Upsample by ``factor`` then convolve with ``w``, as one transposed convolution (spec 4.1).

    Grouped when ``x`` has ``G * in`` channels (the fused modulated convolution): group g uses
    channels ``[g*in, (g+1)*in)`` of ``x`` and ``[g*out/G, (g+1)*out/G)`` of ``w``'s outputs.

    Args:
        x: ``[N, C, H, W]`` (or NHWC) with C a multiple of ``w``'s input channels.
        w: ``[kh, kw, in, out]`` runtime weight (cross-correlation, as tf.nn.conv2d).
        k: FIR filter applied after the transposed convolution (default ``[1]*factor``).
        factor: upsampling factor.
        gain: FIR gain.
        data_format: 'NCHW' or 'NHWC'.
        impl: 'ref'.

    Returns:
        ``[N, out, H*factor, W*factor]`` (or NHWC).
    """
    factor = _check_factor(factor, 'upsample_conv_2d')
    _check_format(data_format, 'upsample_conv_2d')
    w, kh, kw, in_c = _conv_weight(w, 'upsample_conv_2d')
    kernel = setup_kernel([1] * factor if k is None else k) * (gain * factor ** 2)
    p = (kernel.shape[0] - factor) - (kw - 1)
    x = _to_nhwc(tf.convert_to_tensor(x), data_format)
    in_h, in_w = _spatial(x, [1, 2], 'upsample_conv_2d')
    out_c = _dim(w, 3)
    out_h, out_w = (in_h - 1) * factor + kh, (in_w - 1) * factor + kw
    if _grouped(x, in_c) and not tf.config.list_logical_devices('GPU'):
        x = _zero_insert_conv(x, w, factor, kh, kw)
    else:
        x = _transposed_conv(x, w, factor, kh, kw, in_c, out_c, out_h, out_w)
    x.set_shape([None, out_h, out_w, out_c if isinstance(out_c, int) else None])
    x = _simple_upfirdn_2d(x, kernel, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2 + 1,
                           data_format='NHWC', impl=impl)
    return _from_nhwc(x, data_format)


def _grouped(x, in_c) -> bool:
    """Whether x has more channels than w's inputs, or a count unknown while building."""
    c = x.shape[3]
    return c is None or int(c) != in_c


def _transposed_conv(x, w, factor, kh, kw, in_c, out_c, out_h, out_w):
    """The official form: one stride-``factor`` transposed convolution, NHWC."""
    # [kh, kw, in, out] -> [kh, kw, out/G, G*in]: groups split, spatially flipped (spec 4.1).
    num_groups = _dim(x, 3) // in_c
    w = tf.reshape(w, [kh, kw, in_c, num_groups, -1])
    w = tf.reverse(w, axis=[0, 1])
    w = tf.transpose(w, [0, 1, 4, 3, 2])
    w = tf.reshape(w, [kh, kw, -1, num_groups * in_c])
    out_shape = tf.stack([tf.shape(x)[0], out_h, out_w, out_c])
    return tf.nn.conv2d_transpose(x, w, out_shape, strides=[1, factor, factor, 1], padding='VALID')


def _zero_insert_conv(x, w, factor, kh, kw):
    """The same values as ``_transposed_conv`` for grouped x on a CPU, NHWC.

    TensorFlow's CPU kernels have no grouped transposed convolution, but they do run a grouped
    forward one. A transposed convolution is a true convolution of the zero-inserted input
    (``z[factor*i] = x[i]``) with the weight; as ``conv2d`` correlates, that is ``conv2d`` of
    ``z`` padded by ``k - 1`` with the weight flipped twice: the stored ``w`` itself.
    """
    n, h, wd, c = tf.shape(x)[0], _dim(x, 1), _dim(x, 2), tf.shape(x)[3]
    z = tf.reshape(x, [n, h, 1, wd, 1, c])
    z = tf.pad(z, [[0, 0], [0, 0], [0, factor - 1], [0, 0], [0, factor - 1], [0, 0]])
    z = tf.reshape(z, [n, h * factor, wd * factor, c])[:, :(h - 1) * factor + 1,
                                                       :(wd - 1) * factor + 1]
    z = tf.pad(z, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]])
    return tf.nn.conv2d(z, w, strides=[1, 1, 1, 1], padding='VALID')


def conv_downsample_2d(x: Any, w: Any, k: Any = None, factor: int = 2, gain: float = 1,
                       data_format: str = 'NCHW', impl: str = 'ref') -> tf.Tensor:
    """FIR filter then a stride-``factor`` VALID convolution with ``w`` (spec 4.1).

    Pads ``((p+1)//2, p//2)`` with ``p = (kH - factor) + (kw - 1)``: (2, 2) for a 3x3 conv with
    [1, 3, 3, 1], (1, 1) for 1x1. Grouped when ``x`` has a multiple of ``w``'s input channels.
    """
    factor = _check_factor(factor, 'conv_downsample_2d')
    _check_format(data_format, 'conv_downsample_2d')
    w, _kh, kw, _in_c = _conv_weight(w, 'conv_downsample_2d')
    kernel = setup_kernel([1] * factor if k is None else k) * gain
    p = (kernel.shape[0] - factor) + (kw - 1)
    x = _to_nhwc(tf.convert_to_tensor(x), data_format)
    x = _simple_upfirdn_2d(x, kernel, pad0=(p + 1) // 2, pad1=p // 2, data_format='NHWC',
                           impl=impl)
    x = tf.nn.conv2d(x, w, strides=[1, factor, factor, 1], padding='VALID')
    return _from_nhwc(x, data_format)
