"""upfirdn2d (upsample, FIR filter, downsample) and the StyleGAN2 resampling wrappers (spec 4.1).

Core semantics of ``upfirdn2d(x [major, H, W, minor], k, ...)``, per axis:
1. upsample by inserting ``up - 1`` zeros after every sample (input i goes to i * up);
2. zero-pad ``pad0`` before and ``pad1`` after; a negative pad crops;
3. VALID true convolution with ``k`` (correlation with ``k[::-1, ::-1]``);
4. keep every ``down``-th sample starting at 0.
Output size: ``(in * up + pad0 + pad1 - kh) // down + 1``.

Implementations (``impl=``): ``'ref'`` plain TensorFlow; ``'cpp'`` compiled C++ CPU kernel
(upfirdn2d.cc) that only visits the taps that meet non-zero samples and only computes the kept
outputs; ``'cuda'`` compiled CUDA kernel (upfirdn2d.cu; built with nvcc only when TensorFlow
lists a GPU, and never run on the machine this port was written on); ``'auto'`` the fastest
available. The gradient of upfirdn2d is upfirdn2d with the flipped kernel, up and down swapped
and adjusted pads, so gradients of every order use the same implementation.

The filter ``k`` is a constant (numpy or list); no gradient flows to it.
Wrappers take NCHW (official API) or NHWC (``data_format='NHWC'``, used internally on CPU) and
HWIO conv weights ``[kh, kw, in, out]``.
"""
import numpy as np
import tensorflow as tf

from tf2.ops import _build

DATA_FORMATS = ('NCHW', 'NHWC')


def setup_kernel(k) -> np.ndarray:
    """1-D k becomes outer(k, k); the result is divided by its sum (float32, 2-D, square)."""
    k = np.asarray(k, dtype=np.float32)
    if k.ndim == 1:
        k = np.outer(k, k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.size == 0:
        raise ValueError(f'tf2/ops/upfirdn2d: resample kernel must be 1-D or square 2-D, '
                         f'got shape {k.shape}')
    return k / np.sum(k)


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def upfirdn2d(x, k, upx=1, upy=1, downx=1, downy=1, padx0=0, padx1=0, pady0=0, pady1=0,
              impl='auto'):
    """Pads, upsamples, filters and downsamples a batch of 2-D images (official argument order).

    Args:
        x: ``[major, H, W, minor]`` float tensor.
        k: 2-D FIR filter ``[kh, kw]`` (numpy or list; used as a constant, not normalised here).
        upx, upy: integer upsampling factors (>= 1).
        downx, downy: integer downsampling factors (>= 1).
        padx0, padx1, pady0, pady1: pads in the upsampled domain; negative values crop.
        impl: 'auto', 'ref', 'cpp' or 'cuda' (see tf2/ops/_build.py).

    Returns:
        ``[major, outH, outW, minor]`` with ``out = (in * up + pad0 + pad1 - kh) // down + 1``.
    """
    x = tf.convert_to_tensor(x)
    k = np.asarray(k, dtype=x.dtype.as_numpy_dtype)
    params = _check_params(x, k, upx, upy, downx, downy, padx0, padx1, pady0, pady1)
    chosen = _build.resolve_impl('upfirdn2d', impl, _load, x.dtype)
    if chosen == 'ref':
        return _upfirdn2d_ref(x, k, *params)
    return _upfirdn2d_compiled(x, k, params, chosen)


def _check_params(x, k, *params):
    upx, upy, downx, downy, padx0, padx1, pady0, pady1 = [int(p) for p in params]
    if x.shape.rank != 4:
        raise ValueError(f'tf2/ops/upfirdn2d: x must be [major, H, W, minor], got {x.shape}')
    if k.ndim != 2:
        raise ValueError(f'tf2/ops/upfirdn2d: k must be 2-D, got shape {k.shape}')
    if min(upx, upy, downx, downy) < 1:
        raise ValueError('tf2/ops/upfirdn2d: up and down factors must be >= 1')
    for size, up, p0, p1, kk, down, axis in ((x.shape[1], upy, pady0, pady1, k.shape[0], downy, 'H'),
                                             (x.shape[2], upx, padx0, padx1, k.shape[1], downx, 'W')):
        if size is not None and (size * up + p0 + p1 - kk) // down + 1 < 1:
            raise ValueError(f'tf2/ops/upfirdn2d: empty output along {axis} (in={size}, up={up}, '
                             f'pads=({p0}, {p1}), k={kk}, down={down})')
    return upx, upy, downx, downy, padx0, padx1, pady0, pady1


def _upfirdn2d_ref(x, k, upx, upy, downx, downy, padx0, padx1, pady0, pady1):
    # [major, H, W, minor]
    minor = x.shape[3]
    in_h, in_w = tf.shape(x)[1], tf.shape(x)[2]

    # 1. Upsample by zero insertion: each sample is followed by up-1 zeros.
    x = tf.reshape(x, [-1, in_h, 1, in_w, 1, minor])
    x = tf.pad(x, [[0, 0], [0, 0], [0, upy - 1], [0, 0], [0, upx - 1], [0, 0]])
    x = tf.reshape(x, [-1, in_h * upy, in_w * upx, minor])

    # 2. Pad (positive) and crop (negative).
    x = tf.pad(x, [[0, 0], [max(pady0, 0), max(pady1, 0)], [max(padx0, 0), max(padx1, 0)], [0, 0]])
    x = x[:, max(-pady0, 0): tf.shape(x)[1] - max(-pady1, 0),
          max(-padx0, 0): tf.shape(x)[2] - max(-padx1, 0), :]

    # 3.+4. True convolution (correlation with the flipped filter), same filter on every channel,
    # keeping every down-th output.
    w = tf.constant(np.tile(k[::-1, ::-1, None, None], [1, 1, minor, 1]), dtype=x.dtype)
    if downx == downy:
        return tf.nn.depthwise_conv2d(x, w, [1, downy, downx, 1], 'VALID')
    x = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'VALID')
    return x[:, ::downy, ::downx, :]


# ------------------------------------------------------------------------------------------------
# Compiled kernels.

def _load(kind):
    if kind == 'cuda':
        return _build.load_library('upfirdn2d_cuda', ['upfirdn2d.cu'], cuda=True)
    return _build.load_library('upfirdn2d_cpu', ['upfirdn2d.cc'])


def _upfirdn2d_compiled(x, k, params, kind):
    _static_hw(x)
    lib = _load(kind)
    op = lib.stylegan_upfirdn2d_gpu if kind == 'cuda' else lib.stylegan_upfirdn2d
    upx, upy, downx, downy, padx0, padx1, pady0, pady1 = params
    kernel = tf.constant(k)

    @tf.custom_gradient
    def forward(x):
        # [major, H, W, minor]
        y = op(x=x, k=kernel, upx=upx, upy=upy, downx=downx, downy=downy,
               padx0=padx0, padx1=padx1, pady0=pady0, pady1=pady1)

        def grad(dy):
            # The transpose of the forward map is upfirdn2d of dy with the flipped filter, up and
            # down swapped, and pads chosen so that the output has exactly x's size (derivation in the README's tf2/ops section).
            (in_h, in_w), (out_h, out_w) = _static_hw(x), _static_hw(y)
            kh, kw = k.shape
            gparams = (downx, downy, upx, upy,
                       kw - padx0 - 1, in_w * upx - out_w * downx + padx0 - upx + 1,
                       kh - pady0 - 1, in_h * upy - out_h * downy + pady0 - upy + 1)
            return _upfirdn2d_compiled(dy, k[::-1, ::-1], gparams, kind)
        return y, grad
    return forward(x)


def _static_hw(t):
    # Pads are op attributes (Python ints), so the gradient needs static spatial sizes.
    if t.shape[1] is None or t.shape[2] is None:
        raise ValueError(f'tf2/ops/upfirdn2d: the compiled kernel needs static H and W, got {t.shape}')
    return int(t.shape[1]), int(t.shape[2])


# ------------------------------------------------------------------------------------------------
# Wrappers (NCHW or NHWC, same factor and pads on both axes).

def _check_format(data_format, x, name):
    if data_format not in DATA_FORMATS:
        raise ValueError(f'tf2/ops/{name}: data_format must be one of {DATA_FORMATS}, '
                         f'got {data_format!r}')
    if x.shape.rank != 4:
        raise ValueError(f'tf2/ops/{name}: x must be 4-D {data_format}, got shape {x.shape}')


def _simple_upfirdn_2d(x, k, up=1, down=1, pad0=0, pad1=0, data_format='NCHW', impl='auto'):
    if data_format == 'NHWC':
        # [N, H, W, C] is already [major, H, W, minor].
        return upfirdn2d(x, k, up, up, down, down, pad0, pad1, pad0, pad1, impl=impl)
    # [N, C, H, W] -> [N*C, H, W, 1]
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    y = tf.reshape(x, [-1, h, w, 1])
    y = upfirdn2d(y, k, up, up, down, down, pad0, pad1, pad0, pad1, impl=impl)
    return tf.reshape(y, [-1, c, y.shape[1], y.shape[2]])


def _to_nhwc(x, data_format):
    return tf.transpose(x, [0, 2, 3, 1]) if data_format == 'NCHW' else x


def _from_nhwc(x, data_format):
    return tf.transpose(x, [0, 3, 1, 2]) if data_format == 'NCHW' else x


def _kernel(k, factor, gain, scale):
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f'tf2/ops/upfirdn2d: factor must be a positive integer, got {factor!r}')
    return setup_kernel([1] * factor if k is None else k) * (gain * scale)


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def upsample_2d(x, k=None, factor=2, gain=1, data_format='NCHW', impl='auto'):
    """Upsamples images by ``factor`` with the FIR filter ``k`` (official ``upsample_2d``).

    Args:
        x: ``[N, C, H, W]`` (or ``[N, H, W, C]`` with data_format='NHWC').
        k: 1-D or 2-D FIR filter; None means ``[1] * factor`` (nearest neighbour).
        factor: integer upsampling factor.
        gain: signal gain; the filter is normalised and multiplied by ``gain * factor**2``.
        data_format: 'NCHW' or 'NHWC'.
        impl: 'auto', 'ref', 'cpp' or 'cuda'.

    Returns:
        ``[N, C, H * factor, W * factor]`` (or NHWC).
    """
    x = tf.convert_to_tensor(x)
    _check_format(data_format, x, 'upsample_2d')
    kernel = _kernel(k, factor, gain, factor ** 2)
    p = kernel.shape[0] - factor
    return _simple_upfirdn_2d(x, kernel, up=factor, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2,
                              data_format=data_format, impl=impl)


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def downsample_2d(x, k=None, factor=2, gain=1, data_format='NCHW', impl='auto'):
    """Filters with ``k`` and downsamples by ``factor`` (official ``downsample_2d``).

    Args:
        x: ``[N, C, H, W]`` (or NHWC).
        k: 1-D or 2-D FIR filter; None means ``[1] * factor`` (box filter).
        factor: integer downsampling factor.
        gain: signal gain.
        data_format: 'NCHW' or 'NHWC'.
        impl: 'auto', 'ref', 'cpp' or 'cuda'.

    Returns:
        ``[N, C, H // factor, W // factor]`` (or NHWC).
    """
    x = tf.convert_to_tensor(x)
    _check_format(data_format, x, 'downsample_2d')
    kernel = _kernel(k, factor, gain, 1)
    p = kernel.shape[0] - factor
    return _simple_upfirdn_2d(x, kernel, down=factor, pad0=(p + 1) // 2, pad1=p // 2,
                              data_format=data_format, impl=impl)


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def filter_2d(x, k, gain=1, data_format='NCHW', impl='auto'):
    """Filters images with the FIR filter ``k`` keeping their size (official ``filter_2d``).

    Args:
        x: ``[N, C, H, W]`` (or NHWC).
        k: 1-D or 2-D FIR filter (normalised to sum 1, then times ``gain``).
        gain: signal gain.
        data_format: 'NCHW' or 'NHWC'.
        impl: 'auto', 'ref', 'cpp' or 'cuda'.
    """
    x = tf.convert_to_tensor(x)
    _check_format(data_format, x, 'filter_2d')
    kernel = setup_kernel(k) * gain
    p = kernel.shape[0] - 1
    return _simple_upfirdn_2d(x, kernel, pad0=(p + 1) // 2, pad1=p // 2,
                              data_format=data_format, impl=impl)


def _conv_weight(x, w, data_format, name):
    # Returns (channels of x, groups) after checking w is HWIO with square spatial size.
    w = tf.convert_to_tensor(w, dtype=x.dtype)
    if w.shape.rank != 4 or w.shape[0] != w.shape[1]:
        raise ValueError(f'tf2/ops/{name}: w must be [k, k, in, out], got {w.shape}')
    channels = x.shape[1] if data_format == 'NCHW' else x.shape[3]
    if channels is None or channels % w.shape[2] != 0 or w.shape[3] % (channels // w.shape[2]):
        raise ValueError(f'tf2/ops/{name}: x has {channels} channels, which is not a valid '
                         f'number of groups of w {w.shape}')
    return w, channels // w.shape[2]


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def upsample_conv_2d(x, w, k=None, factor=2, gain=1, data_format='NCHW', impl='auto'):
    """Fused ``upsample_2d`` followed by a VALID-padded conv, as in the official code.

    Computed as a stride-``factor`` transposed convolution with the transformed weight, then
    ``upfirdn2d`` with the FIR filter. Grouped convolution is supported: x may have
    ``groups * in`` channels and w then has ``groups * out_per_group`` outputs (used by the fused
    modulated convolution).

    Args:
        x: ``[N, C, H, W]`` (or NHWC).
        w: conv weight ``[k, k, in, out]`` (HWIO).
        k: 1-D or 2-D FIR filter; None means ``[1] * factor``.
        factor: integer upsampling factor.
        gain: signal gain.
        data_format: 'NCHW' or 'NHWC'.
        impl: implementation of the upfirdn2d step ('auto', 'ref', 'cpp' or 'cuda').

    Returns:
        ``[N, out, H * factor, W * factor]`` (or NHWC).
    """
    x = tf.convert_to_tensor(x)
    _check_format(data_format, x, 'upsample_conv_2d')
    w, groups = _conv_weight(x, w, data_format, 'upsample_conv_2d')
    kernel = _kernel(k, factor, gain, factor ** 2)
    conv_k, in_c, out_c = w.shape[0], w.shape[2], w.shape[3]
    p = (kernel.shape[0] - factor) - (conv_k - 1)

    # [N, H, W, C] on CPU: NCHW convolutions are not available there.
    y = _to_nhwc(x, data_format)
    if groups > 1 and not tf.config.list_logical_devices('GPU'):
        y = _zero_insert_conv(y, w, factor)
    else:
        # Weight transform: [k, k, in, G, out/G] -> flip -> [k, k, out/G, G, in] -> [k, k, out/G, G*in].
        wt = tf.reshape(w, [conv_k, conv_k, in_c, groups, out_c // groups])
        wt = tf.transpose(wt[::-1, ::-1], [0, 1, 4, 3, 2])
        wt = tf.reshape(wt, [conv_k, conv_k, out_c // groups, groups * in_c])
        n, h, wd = tf.shape(y)[0], y.shape[1], y.shape[2]
        out_shape = [n, (h - 1) * factor + conv_k, (wd - 1) * factor + conv_k, out_c]
        y = tf.nn.conv2d_transpose(y, wt, out_shape, [1, factor, factor, 1], 'VALID')
    y = _simple_upfirdn_2d(y, kernel, pad0=(p + 1) // 2 + factor - 1, pad1=p // 2 + 1,
                           data_format='NHWC', impl=impl)
    return _from_nhwc(y, data_format)


def _zero_insert_conv(y, w, factor):
    """The grouped stride-``factor`` transposed convolution of ``upsample_conv_2d`` on a CPU.

    TensorFlow's CPU kernels have no grouped transposed convolution, but do run a grouped forward
    one. A transposed convolution is a true convolution of the zero-inserted input
    (``z[factor*i] = y[i]``) with the weight; ``conv2d`` correlates, so on ``z`` padded by
    ``k - 1`` it takes the weight flipped twice: ``w`` as given. NHWC, HWIO.
    """
    k = w.shape[0]
    n, h, wd, c = tf.shape(y)[0], y.shape[1], y.shape[2], y.shape[3]
    z = tf.reshape(y, [n, h, 1, wd, 1, c])
    z = tf.pad(z, [[0, 0], [0, 0], [0, factor - 1], [0, 0], [0, factor - 1], [0, 0]])
    z = tf.reshape(z, [n, h * factor, wd * factor, c])[:, :(h - 1) * factor + 1, :(wd - 1) * factor + 1]
    z = tf.pad(z, [[0, 0], [k - 1, k - 1], [k - 1, k - 1], [0, 0]])
    return tf.nn.conv2d(z, w, [1, 1, 1, 1], 'VALID')


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def conv_downsample_2d(x, w, k=None, factor=2, gain=1, data_format='NCHW', impl='auto'):
    """Fused FIR filter followed by a stride-``factor`` VALID conv, as in the official code.

    Arguments as for ``upsample_conv_2d``, with ``factor`` the downsampling factor; x may have
    a multiple of w's inputs as channels (grouped conv). Returns ``[N, out, H // factor,
    W // factor]`` (or NHWC).
    """
    x = tf.convert_to_tensor(x)
    _check_format(data_format, x, 'conv_downsample_2d')
    w, _ = _conv_weight(x, w, data_format, 'conv_downsample_2d')
    kernel = _kernel(k, factor, gain, 1)
    p = (kernel.shape[0] - factor) + (w.shape[0] - 1)
    # [N, H, W, C]
    y = _to_nhwc(x, data_format)
    y = _simple_upfirdn_2d(y, kernel, pad0=(p + 1) // 2, pad1=p // 2, data_format='NHWC',
                           impl=impl)
    y = tf.nn.conv2d(y, w, [1, factor, factor, 1], 'VALID')
    return _from_nhwc(y, data_format)
