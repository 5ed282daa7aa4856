"""legacy_tf.tflib.ops (graph-mode fused_bias_act and upfirdn_2d family) against NumPy.

References: tests/reference_sg2_numpy.py (upfirdn2d and its wrappers, written from spec 4.1 with
no shared code) and the activation formulas of the spec's fused_bias_act table.
"""

import numpy as np
import pytest

import tensorflow as tf  # noqa: E402

from legacy_tf.tflib import ops  # noqa: E402

import reference_sg2_numpy as R2  # noqa: E402
from conftest import rel

v1 = tf.compat.v1
TOL = 1e-5


def run_graph(build, feeds=None):
    """Builds ops in a fresh TF1 graph and evaluates them (legacy_tf's mode of use)."""
    graph = tf.Graph()
    with graph.as_default():
        out, feed_dict = build()
        with v1.Session(graph=graph) as sess:
            return sess.run(out, feed_dict)


def nchw(x):
    return np.transpose(x, [0, 3, 1, 2])


def nhwc(x):
    return np.transpose(x, [0, 2, 3, 1])


# ------------------------------------------------------------------------------------------------
# fused_bias_act.

SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
NUMPY_ACTS = {
    'linear': lambda x: x,
    'relu': lambda x: np.maximum(x, 0) * np.sqrt(2),
    'lrelu': lambda x: np.where(x >= 0, x, 0.2 * x) * np.sqrt(2),
    'tanh': np.tanh,
    'sigmoid': lambda x: 1 / (1 + np.exp(-x)),
    'elu': lambda x: np.where(x >= 0, x, np.expm1(x)),
    'selu': lambda x: SELU_S * np.where(x >= 0, x, SELU_A * np.expm1(x)),
    'softplus': lambda x: np.log1p(np.exp(x)),
    'swish': lambda x: x / (1 + np.exp(-x)) * np.sqrt(2),
}


@pytest.mark.parametrize('act', sorted(NUMPY_ACTS))
def test_fused_bias_act_table(act):
    rnd = np.random.RandomState(0)
    x = rnd.randn(2, 5, 3, 4).astype(np.float32)
    b = rnd.randn(5).astype(np.float32)
    out = run_graph(lambda: (ops.fused_bias_act(tf.constant(x), tf.constant(b), axis=1,
                                                act=act), None))
    assert rel(out, NUMPY_ACTS[act](x + b.reshape(1, 5, 1, 1))) <= TOL


def test_fused_bias_act_options():
    rnd = np.random.RandomState(1)
    x = rnd.randn(3, 4, 4, 6).astype(np.float32)
    b = rnd.randn(6).astype(np.float32)
    y = x + b
    out = ops.fused_bias_act(x, b, axis=-1, act='lrelu', alpha=0.1, gain=3.0).numpy()
    assert rel(out, np.where(y >= 0, y, 0.1 * y) * 3.0) <= TOL
    assert rel(ops.fused_bias_act(x, act='linear', gain=2.0).numpy(), 2 * x) <= TOL
    with pytest.raises(ValueError, match='unknown act'):
        ops.fused_bias_act(x, act='gelu2')
    with pytest.raises(ValueError, match="impl='cuda'"):
        ops.fused_bias_act(x, impl='cuda')
    with pytest.raises(ValueError, match='bias'):
        ops.fused_bias_act(x, b, axis=1)


# ------------------------------------------------------------------------------------------------
# upfirdn_2d and its wrappers.

@pytest.mark.parametrize('up,down,pad0,pad1,k', [
    (1, 1, 0, 0, [1, 2, 1]),
    (2, 1, 2, 1, [1, 3, 3, 1]),
    (1, 2, 1, 1, [1, 3, 3, 1]),
    (3, 2, 1, -2, [1, 2, 3, 2, 1]),
    (1, 1, -1, 2, np.arange(9.0).reshape(3, 3)),     # asymmetric 2-D kernel: tests the flip
    (2, 3, 3, 0, [[1, 0], [2, 5]]),
])
def test_upfirdn_2d_matches_reference(up, down, pad0, pad1, k):
    rnd = np.random.RandomState(2)
    x = rnd.randn(2, 3, 7, 6).astype(np.float32)                       # NCHW for the reference
    kern = np.asarray(k, np.float32)
    kern = np.outer(kern, kern) if kern.ndim == 1 else kern
    expected = R2.upfirdn2d(x, kern, up=up, down=down, pad0=pad0, pad1=pad1)
    out = run_graph(lambda: (ops.upfirdn_2d(tf.constant(nhwc(x)), kern, upx=up, upy=up,
                                            downx=down, downy=down, padx0=pad0, padx1=pad1,
                                            pady0=pad0, pady1=pad1), None))
    assert out.shape == nhwc(expected).shape
    assert rel(out, nhwc(expected)) <= TOL


def test_upfirdn_2d_axes_are_independent():
    """Different x and y factors: filtering a 1-row kernel acts on W only, up/down per axis."""
    x = np.random.RandomState(3).randn(1, 4, 5, 2).astype(np.float32)
    out = ops.upfirdn_2d(x, np.ones([1, 1], np.float32), upx=2, upy=1, downx=1, downy=2,
                         padx0=0, padx1=0, pady0=0, pady1=0).numpy()
    expected = np.zeros([1, 2, 10, 2], np.float32)
    expected[:, :, ::2] = x[:, ::2]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('data_format', ['NCHW', 'NHWC'])
@pytest.mark.parametrize('k', [[1, 3, 3, 1], None])
def test_resampling_wrappers(data_format, k):
    rnd = np.random.RandomState(4)
    x = rnd.randn(2, 3, 8, 8).astype(np.float32)
    w3 = rnd.randn(3, 3, 3, 5).astype(np.float32)
    w1 = rnd.randn(1, 1, 3, 5).astype(np.float32)
    kk = [1, 1] if k is None else k
    to = (lambda a: a) if data_format == 'NCHW' else nhwc
    back = (lambda a: a) if data_format == 'NCHW' else nchw
    kw = dict(k=k, data_format=data_format)
    cases = [
        (ops.upsample_2d(to(x), **kw), R2.upsample_2d(x, kk)),
        (ops.downsample_2d(to(x), **kw), R2.downsample_2d(x, kk)),
        (ops.upsample_conv_2d(to(x), w3, **kw), R2.upsample_conv_2d(x, w3, kk)),
        (ops.upsample_conv_2d(to(x), w1, **kw), R2.upsample_conv_2d(x, w1, kk)),
        (ops.conv_downsample_2d(to(x), w3, **kw), R2.conv_downsample_2d(x, w3, kk)),
        (ops.conv_downsample_2d(to(x), w1, **kw), R2.conv_downsample_2d(x, w1, kk)),
    ]
    for out, expected in cases:
        out = back(out.numpy())
        assert out.shape == expected.shape
        assert rel(out, expected) <= TOL
    if k is None:     # the default kernels are nearest upsampling and 2x2 box downsampling
        np.testing.assert_allclose(cases[0][0].numpy(), to(x.repeat(2, 2).repeat(2, 3)),
                                   rtol=1e-6, atol=1e-6)
    # filter_2d keeps the size: pads ((p+1)//2, p//2) with p = kH - 1.
    k2 = R2.setup_kernel([1, 3, 3, 1])
    out = back(ops.filter_2d(to(x), [1, 3, 3, 1], gain=2.0, data_format=data_format).numpy())
    assert rel(out, R2.upfirdn2d(x, k2 * 2.0, pad0=2, pad1=1)) <= TOL


@pytest.mark.parametrize('op', ['up', 'down'])
def test_grouped_resampling_convs_with_dynamic_channels(op):
    """The fused modulated convolution's path: the batch folded into channel groups whose
    count is unknown while building. Group g = x channels [g*I, (g+1)*I), outputs [g*O, ...)."""
    rnd = np.random.RandomState(5)
    groups, in_c, out_c = 3, 2, 4
    x = rnd.randn(1, 8, 8, groups * in_c).astype(np.float32)            # NHWC
    w = rnd.randn(3, 3, in_c, groups * out_c).astype(np.float32)
    func = ops.upsample_conv_2d if op == 'up' else ops.conv_downsample_2d
    ref = R2.upsample_conv_2d if op == 'up' else R2.conv_downsample_2d

    def build():
        ph = v1.placeholder(tf.float32, [None, 8, 8, None])
        wt = v1.placeholder(tf.float32, [3, 3, in_c, None])
        return func(ph, wt, k=[1, 3, 3, 1], data_format='NHWC'), {ph: x, wt: w}
    out = run_graph(build)
    xg = nchw(x)
    expected = np.concatenate([
        ref(xg[:, g * in_c:(g + 1) * in_c], w[..., g * out_c:(g + 1) * out_c])
        for g in range(groups)], axis=1)
    assert rel(nchw(out), expected) <= TOL


def test_bad_input():
    x = np.zeros([1, 4, 4, 1], np.float32)
    with pytest.raises(ValueError, match='factor'):
        ops.upsample_2d(x, factor=0, data_format='NHWC')
    with pytest.raises(ValueError, match='data_format'):
        ops.downsample_2d(x, data_format='HWCN')
    with pytest.raises(ValueError, match='kernel'):
        ops.upfirdn_2d(x, np.ones([3, 3]), padx0=-2, padx1=-1, pady0=0, pady1=0)
    with pytest.raises(ValueError, match='sums to zero'):
        ops.setup_kernel([1, -1])
    with pytest.raises(ValueError, match="impl='cuda'"):
        ops.upfirdn_2d(x, np.ones([1, 1]), impl='cuda')
