"""fused_bias_act: bias, activation, gain and optional clamp in one op (spec 4.1).

``y = clamp(act(x + b, alpha) * gain, -clamp, clamp)``, with the bias broadcast along ``axis``.

Implementations (``impl=``): ``'ref'`` plain TensorFlow; ``'cpp'`` compiled C++ CPU kernel
(fused_bias_act.cc); ``'cuda'`` compiled CUDA kernel (fused_bias_act.cu; built with nvcc only when
TensorFlow lists a GPU, and never run on the machine this port was written on); ``'auto'`` the
fastest available. The compiled kernels compute the same formulas in one pass. Their gradients
are registered with ``tf.custom_gradient`` and are themselves compiled ops with differentiable
gradients, so first and second order (R1, path-length regularization) work for every impl.
"""
import numpy as np
import tensorflow as tf

from tf2.ops import _build

SELU_SCALE = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


def _swish(x, alpha):
    del alpha
    return tf.nn.sigmoid(x) * x


# name: (reference function(x, alpha), def_alpha, def_gain, id in the compiled kernels)
ACTIVATIONS = {
    'linear':   (lambda x, a: x,                       0.0, 1.0,         0),
    'relu':     (lambda x, a: tf.nn.relu(x),           0.0, np.sqrt(2),  1),
    'lrelu':    (lambda x, a: tf.nn.leaky_relu(x, a),  0.2, np.sqrt(2),  2),
    'tanh':     (lambda x, a: tf.nn.tanh(x),           0.0, 1.0,         3),
    'sigmoid':  (lambda x, a: tf.nn.sigmoid(x),        0.0, 1.0,         4),
    'elu':      (lambda x, a: tf.nn.elu(x),            0.0, 1.0,         5),
    'selu':     (lambda x, a: tf.nn.selu(x),           0.0, 1.0,         6),
    'softplus': (lambda x, a: tf.nn.softplus(x),       0.0, 1.0,         7),
    'swish':    (_swish,                               0.0, np.sqrt(2),  8),
}


@tf.autograph.experimental.do_not_convert  # plain Python around TF ops
def fused_bias_act(x, b=None, axis=1, act='linear', alpha=None, gain=None, clamp=None,
                   impl='auto'):
    """Adds a bias, applies an activation, scales by a gain and optionally clamps.

    Args:
        x: input tensor of any rank (float32 or float64 for the compiled kernels).
        b: 1-D bias of length ``x.shape[axis]``, or None for no bias.
        axis: axis of ``x`` the bias runs along (1 for NCHW, -1 for NHWC).
        act: one of ``ACTIVATIONS`` ('linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu',
            'softplus', 'swish').
        alpha: leaky-relu slope; None means the default of the activation (0.2 for lrelu).
        gain: output scale; None means the default of the activation (sqrt(2) for relu, lrelu
            and swish, 1 otherwise).
        clamp: if not None, the output is clamped to ``[-clamp, clamp]`` after the gain
            (StyleGAN2-ADA's conv_clamp; not in the StyleGAN2 repository).
        impl: 'auto', 'ref', 'cpp' or 'cuda' (see tf2/ops/_build.py).

    Returns:
        Tensor with the shape and dtype of ``x``.
    """
    x = tf.convert_to_tensor(x)
    if act not in ACTIVATIONS:
        raise ValueError(f'tf2/ops/fused_bias_act: unknown act {act!r}; '
                         f'choose one of {sorted(ACTIVATIONS)}')
    func, def_alpha, def_gain, act_id = ACTIVATIONS[act]
    alpha = float(def_alpha if alpha is None else alpha)
    gain = float(def_gain if gain is None else gain)
    if clamp is not None and not clamp >= 0:
        raise ValueError(f'tf2/ops/fused_bias_act: clamp must be >= 0 or None, got {clamp}')
    rank = x.shape.rank
    axis = axis % rank if rank else 0
    if b is not None:
        b = tf.convert_to_tensor(b, dtype=x.dtype)
        if b.shape.rank != 1 or (x.shape[axis] is not None and b.shape[0] != x.shape[axis]):
            raise ValueError(f'tf2/ops/fused_bias_act: bias shape {b.shape} does not match '
                             f'axis {axis} of x with shape {x.shape}')
    chosen = _build.resolve_impl('fused_bias_act', impl, _load, x.dtype)
    if chosen == 'ref':
        return _fused_bias_act_ref(x, b, axis, func, alpha, gain, clamp)
    # tf.nn.leaky_relu (the reference) holds alpha as a 32-bit attr; round the same way.
    attrs = dict(act=act_id, alpha=float(np.float32(alpha)), gain=gain, clamp=-1.0 if clamp is None else float(clamp),
                 axis=axis)  # alpha, gain, clamp go to the op as a float64 tensor
    return _fused_bias_act_compiled(x, b, _op(chosen), attrs)


def _fused_bias_act_ref(x, b, axis, func, alpha, gain, clamp):
    if b is not None:
        shape = [-1 if i == axis else 1 for i in range(x.shape.rank)]
        x = x + tf.reshape(b, shape)
    x = func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = tf.clip_by_value(x, -clamp, clamp)
    return x


# ------------------------------------------------------------------------------------------------
# Compiled kernels. One op computes grad=0: y; grad=1: g * dy/dz; grad=2: g * d2y/dz2 (z = x + b).

def _load(kind):
    if kind == 'cuda':
        return _build.load_library('fused_bias_act_cuda', ['fused_bias_act.cu'], cuda=True)
    return _build.load_library('fused_bias_act_cpu', ['fused_bias_act.cc'])


def _op(kind):
    lib = _load(kind)
    return lib.stylegan_fused_bias_act_gpu if kind == 'cuda' else lib.stylegan_fused_bias_act


def _bias_grad(dz, b, axis):
    if b is None:
        return None
    rank = dz.shape.rank
    if axis == rank - 1:
        return tf.reduce_sum(dz, axis=list(range(rank - 1)))
    # [outer, C, inner]: two reductions over contiguous axes are several times faster on CPU
    # than one reduction over the axes around C.
    inner = tf.reduce_prod(tf.shape(dz)[axis + 1:])
    dz = tf.reshape(dz, tf.stack([-1, tf.shape(b)[0], inner]))
    return tf.reduce_sum(tf.reduce_sum(dz, axis=2), axis=0)


def _run(op, x, b, g, attrs, grad):
    empty = tf.zeros([0], dtype=x.dtype)
    params = tf.constant([attrs['alpha'], attrs['gain'], attrs['clamp']], tf.float64)
    return op(x=x, b=empty if b is None else b, g=empty if g is None else g, params=params,
              act=attrs['act'], axis=attrs['axis'], grad=grad)


def _fused_bias_act_compiled(x, b, op, attrs):
    axis = attrs['axis']

    @tf.custom_gradient
    def forward(x, *b_list):
        bb = b_list[0] if b_list else None
        y = _run(op, x, bb, None, attrs, 0)

        def grad(dy):
            dx = _grad(1, dy, x, bb, op, attrs)
            return (dx,) + ((_bias_grad(dx, bb, axis),) if b_list else ())
        return y, grad
    return forward(x) if b is None else forward(x, b)


def _grad(order, g, x, b, op, attrs):
    """g * f'(x + b) (order 1) or g * f''(x + b) (order 2), differentiable in g, x and b: the
    gradient of order 1 uses order 2; that of order 2 (third order) is autodiff of the reference
    f''."""
    axis = attrs['axis']

    @tf.custom_gradient
    def grad_op(g, x, *b_list):
        bb = b_list[0] if b_list else None
        out = _run(op, x, bb, g, attrs, order)

        def grad(dout):
            dg = _grad(order, dout, x, bb, op, attrs)
            if order == 1:
                dx = _grad(2, dout * g, x, bb, op, attrs)
            else:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    second = _second_derivative_ref(_add_bias(x, bb, axis), attrs)
                dx = tape.gradient(second, x, output_gradients=dout * g)
            return (dg, dx) + ((_bias_grad(dx, bb, axis),) if b_list else ())
        return out, grad
    return grad_op(g, x) if b is None else grad_op(g, x, b)


def _add_bias(x, b, axis):
    if b is None:
        return x
    return x + tf.reshape(b, [-1 if i == axis else 1 for i in range(x.shape.rank)])


def _second_derivative_ref(z, attrs):
    """gain * f''(z) * clamp mask, in TensorFlow ops (used only for third-order gradients)."""
    act, gain, clamp, alpha = attrs['act'], attrs['gain'], attrs['clamp'], attrs['alpha']
    name = [k for k, v in ACTIVATIONS.items() if v[3] == act][0]
    if name in ('linear', 'relu', 'lrelu'):
        second = tf.zeros_like(z)
    elif name == 'tanh':
        y = tf.nn.tanh(z)
        second = -2.0 * y * (1.0 - y * y)
    elif name in ('sigmoid', 'softplus'):
        s = tf.nn.sigmoid(z)
        second = s * (1.0 - s) * (1.0 - 2.0 * s) if name == 'sigmoid' else s * (1.0 - s)
    elif name in ('elu', 'selu'):
        scale = SELU_SCALE * SELU_ALPHA if name == 'selu' else 1.0
        second = tf.where(z > 0, tf.zeros_like(z), scale * tf.exp(tf.minimum(z, 0.0)))
    else:  # swish
        s = tf.nn.sigmoid(z)
        second = s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    second = second * gain
    if clamp >= 0:
        y = ACTIVATIONS[name][0](z, alpha) * gain
        second = tf.where(tf.abs(y) <= clamp, second, tf.zeros_like(second))
    return second
