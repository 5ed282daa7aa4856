"""tf2.ops.fused_bias_act: 'ref' against numpy formulas of the spec (4.1), compiled kernels
against 'ref' on values and first/second-order gradients."""
import importlib

import numpy as np
import pytest
import tensorflow as tf

from conftest import compiled_kernel_fixture
from tf2 import ops
from tf2.ops import _build

F = importlib.import_module('tf2.ops.fused_bias_act')  # the package exports a function of that name

SQRT2 = np.sqrt(2.0)


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


# Spec table 4.1: numpy function, default alpha, default gain (written out independently).
NP_ACTS = {
    'linear': (lambda z, a: z, None, 1.0),
    'relu': (lambda z, a: np.maximum(z, 0), None, SQRT2),
    'lrelu': (lambda z, a: np.where(z > 0, z, a * z), 0.2, SQRT2),
    'tanh': (lambda z, a: np.tanh(z), None, 1.0),
    'sigmoid': (lambda z, a: np_sigmoid(z), None, 1.0),
    'elu': (lambda z, a: np.where(z > 0, z, np.expm1(np.minimum(z, 0))), None, 1.0),
    'selu': (lambda z, a: 1.0507009873554805 * np.where(
        z > 0, z, 1.6732632423543772 * np.expm1(np.minimum(z, 0))), None, 1.0),
    'softplus': (lambda z, a: np.log1p(np.exp(z)), None, 1.0),
    'swish': (lambda z, a: z * np_sigmoid(z), None, SQRT2),
}


def rand(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


def test_activation_table_is_complete():
    assert sorted(ops.ACTIVATIONS) == sorted(NP_ACTS)


@pytest.mark.parametrize('act', sorted(NP_ACTS))
def test_ref_matches_numpy_defaults(act):
    x, b = rand(2, 3, 4, 5) * 2, rand(3, seed=1)
    func, alpha, gain = NP_ACTS[act]
    want = func(x.astype(np.float64) + b[None, :, None, None], alpha) * gain
    got = ops.fused_bias_act(x, b, act=act, impl='ref').numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_ref_alpha_gain_clamp_axis():
    x, b = rand(4, 6) * 3, rand(6, seed=1)
    z = x.astype(np.float64) + b
    got = ops.fused_bias_act(x, b, axis=-1, act='lrelu', alpha=0.1, gain=3.0, clamp=2.5,
                             impl='ref').numpy()
    np.testing.assert_allclose(got, np.clip(np.where(z > 0, z, 0.1 * z) * 3.0, -2.5, 2.5),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.fused_bias_act(x, impl='ref').numpy(), x)  # linear, no bias


def test_bad_input_messages():
    with pytest.raises(ValueError, match='fused_bias_act.*act'):
        ops.fused_bias_act(rand(2, 3), act='gelu', impl='ref')
    with pytest.raises(ValueError, match='fused_bias_act.*bias'):
        ops.fused_bias_act(rand(2, 3), rand(4), impl='ref')
    with pytest.raises(ValueError, match='clamp'):
        ops.fused_bias_act(rand(2, 3), clamp=-1, impl='ref')


# ------------------------------------------------------------------------------------------------
# Compiled kernel against 'ref'.

cpp_fused_bias_act = compiled_kernel_fixture('fused_bias_act')     # conftest: 'cpp', built once per session


def _values_and_grads(x, b, **kwargs):
    """y, dy/dx, dy/db and second-order gradients (nested tapes) for a loss mixing both."""
    r = tf.constant(np.random.RandomState(7).randn(*x.shape), x.dtype)
    with tf.GradientTape(persistent=True) as t2:
        t2.watch([x, b])
        with tf.GradientTape() as t1:
            t1.watch([x, b])
            y = ops.fused_bias_act(x, b, **kwargs)
            loss = tf.reduce_sum(y * r)
        gx, gb = t1.gradient(loss, [x, b])
        loss2 = tf.reduce_sum(tf.square(gx) * tf.cos(x)) + tf.reduce_sum(gb * gb)
    ggx, ggb = t2.gradient(loss2, [x, b], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [t.numpy() for t in (y, gx, gb, ggx, ggb)]


@pytest.mark.parametrize('act', sorted(NP_ACTS))
@pytest.mark.parametrize('clamp', [None, 0.8])
def test_cpp_matches_ref(cpp_fused_bias_act, act, clamp):
    rs = np.random.RandomState(sorted(NP_ACTS).index(act))
    shape = [int(s) for s in rs.randint(1, 5, size=rs.randint(2, 5))]
    axis = int(rs.randint(len(shape)))
    x = tf.constant(rs.randn(*shape) * 2, tf.float64)
    b = tf.constant(rs.randn(shape[axis]), tf.float64)
    kwargs = dict(axis=axis, act=act, clamp=clamp)
    want = _values_and_grads(x, b, impl='ref', **kwargs)
    got = _values_and_grads(x, b, impl=cpp_fused_bias_act, **kwargs)
    for name, a, w in zip(['y', 'dx', 'db', 'ddx', 'ddb'], got, want):
        np.testing.assert_allclose(a, w, rtol=1e-9, atol=1e-9, err_msg=f'{act} {name}')


def test_cpp_float32_no_bias_and_alpha_gain(cpp_fused_bias_act):
    x = tf.constant(rand(3, 8, 5, 5))
    for kwargs in [dict(act='lrelu', alpha=0.3, gain=2.0), dict(act='swish', gain=0.5),
                   dict(act='tanh', clamp=0.5)]:
        want = ops.fused_bias_act(x, impl='ref', **kwargs).numpy()
        got = ops.fused_bias_act(x, impl='cpp', **kwargs).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(kwargs))


def test_cpp_third_order_and_tf_function(cpp_fused_bias_act):
    x = tf.constant(rand(2, 3, 4) * 2, tf.float64)
    b = tf.constant(rand(3, seed=3), tf.float64)

    @tf.function
    def third(x, impl):
        with tf.GradientTape() as t3:
            t3.watch(x)
            with tf.GradientTape() as t2:
                t2.watch(x)
                with tf.GradientTape() as t1:
                    t1.watch(x)
                    y = tf.reduce_sum(ops.fused_bias_act(x, b, act='swish', impl=impl))
                g1 = t1.gradient(y, x)
                s1 = tf.reduce_sum(g1)
            g2 = t2.gradient(s1, x)
            s2 = tf.reduce_sum(g2)
        return t3.gradient(s2, x)
    np.testing.assert_allclose(third(x, 'cpp').numpy(), third(x, 'ref').numpy(),
                               rtol=1e-9, atol=1e-9)


def test_explicit_impl_errors():
    if not _build.gpu_available():
        with pytest.raises(_build.OpBuildError, match='no GPU'):
            ops.fused_bias_act(rand(2, 3), impl='cuda')
    with pytest.raises(TypeError, match='float32 and float64'):
        ops.fused_bias_act(tf.zeros([2, 3], tf.float16), impl='cpp')


def test_failed_build_warns_and_falls_back(monkeypatch, tmp_path):
    """A compiler error is reported with its text under 'auto' and raised under 'cpp'."""
    broken = tmp_path / 'broken.cc'
    broken.write_text('this is not C++;\n')
    monkeypatch.setenv('STYLEGAN_OPS_CACHE', str(tmp_path / 'cache'))

    def loader(kind):
        return _build.load_library('broken_test_op', [str(broken)])
    with pytest.warns(RuntimeWarning, match='(?s)building broken_test_op.*error'):
        assert _build.resolve_impl('broken_test_op', 'auto', loader, tf.float32) == 'ref'
    with pytest.raises(_build.OpBuildError, match='error'):
        _build.resolve_impl('broken_test_op', 'cpp', loader, tf.float32)
    assert not list((tmp_path / 'cache').glob('*.tmp'))  # the temporary file was removed


@pytest.mark.parametrize('fp16', [True, False])
def test_cpp_command_leaves_avx512_fp16_off_where_the_cpu_has_it(monkeypatch, fp16):
    """GCC 12 cannot compile TensorFlow's Eigen FP16 packet header under -march=native on a CPU
    with AVX512-FP16; the command turns that instruction set off there, and only there."""
    flags = 'flags\t: fpu sse avx2 avx512f' + (' avx512_fp16' if fp16 else '') + '\n'
    monkeypatch.setattr(_build, '_cpu_signature', lambda: flags)
    command = _build._cpp_command(['a.cc'], 'a.so')
    assert ('-mno-avx512fp16' in command) == fp16
    assert command[0] == 'g++'
    if fp16:        # after -march=native, so that it overrides what native turned on
        assert command.index('-mno-avx512fp16') > command.index('-march=native')
