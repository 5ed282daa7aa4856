"""tf2.ops.upfirdn2d and its wrappers: 'ref' against an independent numpy version of the spec
(4.1), compiled kernels against 'ref' on values and first/second-order gradients."""
import importlib

import numpy as np
import pytest
import tensorflow as tf

from conftest import compiled_kernel_fixture
from tf2 import ops
from tf2.ops import _build

U = importlib.import_module('tf2.ops.upfirdn2d')  # the package exports a function of that name

K1331 = [1, 3, 3, 1]


# ------------------------------------------------------------------------------------------------
# Independent numpy implementation of the spec's semantics.

def np_upfirdn2d(x, k, upx=1, upy=1, downx=1, downy=1, padx0=0, padx1=0, pady0=0, pady1=0):
    """x [major, H, W, minor]: zero-insert upsample, pad/crop, true convolution, downsample."""
    major, h, w, minor = x.shape
    u = np.zeros([major, h * upy, w * upx, minor], np.float64)
    u[:, ::upy, ::upx, :] = x
    u = np.pad(u, [(0, 0), (max(pady0, 0), max(pady1, 0)), (max(padx0, 0), max(padx1, 0)), (0, 0)])
    u = u[:, max(-pady0, 0): u.shape[1] - max(-pady1, 0), max(-padx0, 0): u.shape[2] - max(-padx1, 0)]
    kh, kw = k.shape
    oh, ow = u.shape[1] - kh + 1, u.shape[2] - kw + 1
    out = np.zeros([major, oh, ow, minor])
    for a in range(kh):  # true convolution: output i sums u[i + a] * k[kh - 1 - a]
        for b in range(kw):
            out += k[kh - 1 - a, kw - 1 - b] * u[:, a:a + oh, b:b + ow, :]
    return out[:, ::downy, ::downx, :]


def np_conv2d(x, w, stride=1):
    """tf.nn.conv2d semantics (cross-correlation, VALID), NHWC/HWIO, grouped when C = G * in."""
    n, h, wd, c = x.shape
    kh, kw, cin, cout = w.shape
    groups = c // cin
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros([n, oh, ow, cout])
    per = cout // groups
    for g in range(groups):
        xs = x[..., g * cin:(g + 1) * cin]
        for a in range(kh):
            for b in range(kw):
                patch = xs[:, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]
                out[..., g * per:(g + 1) * per] += patch @ w[a, b, :, g * per:(g + 1) * per]
    return out


def np_kernel(k):
    k = np.asarray(k, np.float64)
    k = np.outer(k, k) if k.ndim == 1 else k
    return k / k.sum()


def nchw_to_major(x):
    n, c, h, w = x.shape
    return x.reshape(n * c, h, w, 1)


def rand(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# 'ref' against numpy.

CORE_CASES = [  # upx, upy, downx, downy, padx0, padx1, pady0, pady1, kh, kw
    (1, 1, 1, 1, 0, 0, 0, 0, 3, 3),
    (2, 2, 1, 1, 2, 1, 2, 1, 4, 4),
    (1, 1, 2, 2, 1, 1, 1, 1, 4, 4),
    (3, 2, 1, 2, -1, 2, 3, -2, 3, 5),
    (1, 2, 3, 1, 0, -1, -1, 4, 2, 1),
    (2, 1, 2, 3, 4, 0, 0, 2, 5, 2),
]


@pytest.mark.parametrize('case', CORE_CASES)
def test_ref_matches_numpy(case):
    upx, upy, downx, downy, px0, px1, py0, py1, kh, kw = case
    x = rand(3, 7, 6, 2)
    k = rand(kh, kw, seed=1)
    want = np_upfirdn2d(x, k, upx, upy, downx, downy, px0, px1, py0, py1)
    got = ops.upfirdn2d(x, k, upx, upy, downx, downy, px0, px1, py0, py1, impl='ref').numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_setup_kernel():
    np.testing.assert_allclose(ops.setup_kernel(K1331), np.outer(K1331, K1331) / 64)
    with pytest.raises(ValueError, match='upfirdn2d'):
        ops.setup_kernel(np.ones([2, 3]))


# Pads from the spec for k = [1, 3, 3, 1] (4.1 and checklist 9), written out here on purpose.
@pytest.mark.parametrize('data_format', ['NCHW', 'NHWC'])
def test_wrapper_pads_match_spec(data_format):
    x = rand(2, 3, 5, 6)  # NCHW
    k = np_kernel(K1331)
    xm = nchw_to_major(x)

    def run(fn, *args, **kwargs):
        xin = x if data_format == 'NCHW' else x.transpose(0, 2, 3, 1)
        y = fn(xin, *args, data_format=data_format, impl='ref', **kwargs).numpy()
        return y if data_format == 'NCHW' else y.transpose(0, 3, 1, 2)

    def back(ym):
        return ym.reshape(2, 3, ym.shape[1], ym.shape[2])

    # upsample: up 2, pads (2, 1), gain 4.
    want = back(np_upfirdn2d(xm, k * 4, 2, 2, 1, 1, 2, 1, 2, 1))
    np.testing.assert_allclose(run(ops.upsample_2d, K1331), want, rtol=1e-5, atol=1e-5)
    assert want.shape == (2, 3, 10, 12)
    # downsample: down 2, pads (1, 1).
    want = back(np_upfirdn2d(xm, k, 1, 1, 2, 2, 1, 1, 1, 1))
    np.testing.assert_allclose(run(ops.downsample_2d, K1331), want, rtol=1e-5, atol=1e-5)
    assert want.shape == (2, 3, 2, 3)
    # filter_2d: pads (2, 1), same size.
    want = back(np_upfirdn2d(xm, k * 2, 1, 1, 1, 1, 2, 1, 2, 1))
    np.testing.assert_allclose(run(ops.filter_2d, K1331, gain=2), want, rtol=1e-5, atol=1e-5)
    # default kernel: nearest-neighbour upsampling.
    want = x.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(run(ops.upsample_2d), want, rtol=1e-5, atol=1e-5)


def np_upsample_conv(x_nhwc, w, kernel, filter_pads, factor=2):
    """Zero-insert upsample, true-size conv with w, then the FIR filter (all numpy)."""
    n, h, wd, c = x_nhwc.shape
    kc = w.shape[0]
    z = np.zeros([n, (h - 1) * factor + 1, (wd - 1) * factor + 1, c])
    z[:, ::factor, ::factor] = x_nhwc
    z = np.pad(z, [(0, 0), (kc - 1, kc - 1), (kc - 1, kc - 1), (0, 0)])
    y = np_conv2d(z, w)  # [(h-1)*f + kc, ...]
    y = y.transpose(0, 3, 1, 2).reshape(-1, y.shape[1], y.shape[2], 1)  # [N*O, H, W, 1]
    p0, p1 = filter_pads
    y = np_upfirdn2d(y, kernel, 1, 1, 1, 1, p0, p1, p0, p1)
    return y.reshape(n, -1, y.shape[1], y.shape[2])  # NCHW


@pytest.mark.parametrize('conv_k,pads,groups', [(3, (1, 1), 1), (1, (2, 2), 1), (3, (1, 1), 2)])
@pytest.mark.parametrize('data_format', ['NCHW', 'NHWC'])
def test_upsample_conv_2d_matches_numpy(conv_k, pads, groups, data_format):
    x = rand(2, 4 * groups, 5, 4)  # NCHW
    w = rand(conv_k, conv_k, 4, 3 * groups, seed=2)
    want = np_upsample_conv(x.transpose(0, 2, 3, 1), w, np_kernel(K1331) * 4, pads)
    xin = x if data_format == 'NCHW' else x.transpose(0, 2, 3, 1)
    got = ops.upsample_conv_2d(xin, w, K1331, data_format=data_format, impl='ref').numpy()
    if data_format == 'NHWC':
        got = got.transpose(0, 3, 1, 2)
    assert got.shape == (2, 3 * groups, 10, 8)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('conv_k,pads', [(3, (2, 2)), (1, (1, 1))])
@pytest.mark.parametrize('data_format', ['NCHW', 'NHWC'])
def test_conv_downsample_2d_matches_numpy(conv_k, pads, data_format):
    x = rand(2, 4, 8, 6)
    w = rand(conv_k, conv_k, 4, 3, seed=2)
    y = np_upfirdn2d(nchw_to_major(x), np_kernel(K1331), 1, 1, 1, 1, *pads, *pads)
    y = y.reshape(2, 4, y.shape[1], y.shape[2]).transpose(0, 2, 3, 1)
    want = np_conv2d(y, w, stride=2).transpose(0, 3, 1, 2)
    xin = x if data_format == 'NCHW' else x.transpose(0, 2, 3, 1)
    got = ops.conv_downsample_2d(xin, w, K1331, data_format=data_format, impl='ref').numpy()
    if data_format == 'NHWC':
        got = got.transpose(0, 3, 1, 2)
    assert got.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bad_input_messages():
    with pytest.raises(ValueError, match='data_format'):
        ops.upsample_2d(rand(1, 1, 4, 4), data_format='CHWN', impl='ref')
    with pytest.raises(ValueError, match='upfirdn2d.*major'):
        ops.upfirdn2d(rand(4, 4, 1), np.ones([2, 2]), impl='ref')
    with pytest.raises(ValueError, match='groups'):
        ops.upsample_conv_2d(rand(1, 5, 4, 4), rand(3, 3, 2, 2), impl='ref')
    with pytest.raises(ValueError, match='impl'):
        ops.upsample_2d(rand(1, 1, 4, 4), impl='fast')


# ------------------------------------------------------------------------------------------------
# Compiled kernels against 'ref'.

cpp_upfirdn2d = compiled_kernel_fixture('upfirdn2d')     # conftest: 'cpp', built once per session


def _grads(fn, x, order):
    """Values, first- and second-order gradients of sum(fn(x) * r) (nested tapes)."""
    r = tf.constant(np.random.RandomState(5).randn(*fn(x).shape), x.dtype)
    with tf.GradientTape() as t2:
        t2.watch(x)
        with tf.GradientTape() as t1:
            t1.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * y * r)  # the gradient depends on x: order 2 is exercised
        g = t1.gradient(loss, x)
        loss2 = tf.reduce_sum(tf.square(g) * tf.sin(x)) if order == 2 else tf.reduce_sum(g)
    g2 = t2.gradient(loss2, x)
    return y.numpy(), g.numpy(), g2.numpy()


@pytest.mark.parametrize('seed', range(6))
def test_cpp_core_matches_ref(cpp_upfirdn2d, seed):
    rs = np.random.RandomState(seed)
    upx, upy, downx, downy = rs.randint(1, 4, size=4)
    kh, kw = rs.randint(1, 6, size=2)
    h, w = rs.randint(3, 9, size=2)
    pads = rs.randint(-2, 5, size=4)
    px0, px1, py0, py1 = [int(p) for p in pads]
    if (h * upy + py0 + py1 - kh) // downy < 0 or (w * upx + px0 + px1 - kw) // downx < 0:
        px0 = px1 = py0 = py1 = 3
    x = tf.constant(rs.randn(2, h, w, rs.randint(1, 4)), tf.float64)
    k = rs.randn(kh, kw)
    params = (int(upx), int(upy), int(downx), int(downy), px0, px1, py0, py1)
    want = _grads(lambda t: ops.upfirdn2d(t, k, *params, impl='ref'), x, 2)
    got = _grads(lambda t: ops.upfirdn2d(t, k, *params, impl=cpp_upfirdn2d), x, 2)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    # float32 and the independent numpy version
    x32 = tf.cast(x, tf.float32)
    np.testing.assert_allclose(ops.upfirdn2d(x32, k, *params, impl='cpp').numpy(),
                               np_upfirdn2d(x.numpy(), k, *params), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('data_format', ['NCHW', 'NHWC'])
def test_cpp_wrappers_match_ref_with_gradients(cpp_upfirdn2d, data_format):
    x = tf.constant(rand(2, 4, 6, 6) if data_format == 'NCHW' else rand(2, 6, 6, 4), tf.float64)
    w3 = tf.constant(rand(3, 3, 4, 4, seed=3), tf.float64)
    w1 = tf.constant(rand(1, 1, 4, 4, seed=4), tf.float64)
    fns = [lambda t, i: ops.upsample_2d(t, K1331, data_format=data_format, impl=i),
           lambda t, i: ops.downsample_2d(t, K1331, data_format=data_format, impl=i),
           lambda t, i: ops.filter_2d(t, K1331, data_format=data_format, impl=i),
           lambda t, i: ops.upsample_conv_2d(t, w3, K1331, data_format=data_format, impl=i),
           lambda t, i: ops.upsample_conv_2d(t, w1, K1331, data_format=data_format, impl=i),
           lambda t, i: ops.conv_downsample_2d(t, w3, K1331, data_format=data_format, impl=i),
           lambda t, i: ops.conv_downsample_2d(t, w1, K1331, data_format=data_format, impl=i)]
    for fn in fns:
        want = _grads(lambda t: fn(t, 'ref'), x, 2)
        got = _grads(lambda t: fn(t, 'cpp'), x, 2)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_cpp_in_tf_function(cpp_upfirdn2d):
    x = tf.constant(rand(2, 3, 8, 8))

    @tf.function
    def f(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = ops.downsample_2d(ops.upsample_2d(t, K1331, impl='cpp'), K1331, impl='cpp')
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, t)
    y, g = f(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y_ref = ops.downsample_2d(ops.upsample_2d(x, K1331, impl='ref'), K1331, impl='ref')
        loss_ref = tf.reduce_sum(y_ref * y_ref)
    g_ref = tape.gradient(loss_ref, x)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), rtol=1e-4, atol=1e-4)


def test_auto_picks_compiled_on_cpu(cpp_upfirdn2d):
    assert _build.resolve_impl('upfirdn2d', 'auto', U._load, tf.float32) == (
        'cuda' if _build.gpu_available() else 'cpp')
    assert _build.resolve_impl('upfirdn2d', 'auto', U._load, tf.float16) == 'ref'


def test_cuda_runs_only_where_a_gpu_is_listed():
    x = rand(1, 1, 4, 4)
    if _build.gpu_available():          # the CUDA kernel must agree with the reference
        np.testing.assert_allclose(ops.upsample_2d(x, impl='cuda').numpy(),
                                   ops.upsample_2d(x, impl='ref').numpy(), rtol=1e-5, atol=1e-5)
        return
    with pytest.raises(_build.OpBuildError, match='no GPU'):
        ops.upsample_2d(x, impl='cuda')
