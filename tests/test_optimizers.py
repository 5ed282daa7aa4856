"""training/optimizers.py against hand-written numpy steps (paper formulas), Keras' own AdamW and
TF1's `tf.compat.v1.train.AdamOptimizer` (the official code's Adam)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from training.optimizers import (AdamP, TF1Adam, complete_saved_state, make_optimizer,
                                 reset_optimizer_state)

LR, B1, B2, EPS, WD = 0.01, 0.9, 0.99, 1e-8, 0.1


def _np_adam_direction(g, m, v, t, b1=B1, b2=B2, eps=EPS, nesterov=False):
    """Adam moments and the step scale, written from Kingma & Ba with TF1's epsilon hat."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    u = (b1 * m + (1 - b1) * g if nesterov else m) / (np.sqrt(v) + eps)
    scale = np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return u, m, v, scale


def _np_cos(a, b, axis=None):
    return np.abs((a * b).sum(axis=axis)) / (
        (np.sqrt((a * a).sum(axis=axis)) + EPS) * (np.sqrt((b * b).sum(axis=axis)) + EPS))


def _np_adamp_step(w, g, m, v, t, lr=LR, wd=WD, b1=B1, delta=0.1, wd_ratio=0.1,
                   nesterov=False):
    """AdamP (Heo et al. 2021, Alg. 2) with output channels on the last axis; returns view."""
    u, m, v, scale = _np_adam_direction(g, m, v, t, b1=b1, nesterov=nesterov)
    ratio, view = 1.0, 'none'
    if w.ndim >= 2:
        wc, gc, uc = (a.reshape(-1, w.shape[-1]) for a in (w, g, u))
        if _np_cos(wc, gc, axis=0).max() < delta / np.sqrt(wc.shape[0]):
            what = wc / (np.sqrt((wc * wc).sum(0, keepdims=True)) + EPS)
            u = (uc - what * (what * uc).sum(0, keepdims=True)).reshape(w.shape)
            ratio, view = wd_ratio, 'channel'
        elif _np_cos(w, g) < delta / np.sqrt(w.size):
            what = w / (np.sqrt((w * w).sum()) + EPS)
            u = u - what * (what * u).sum()
            ratio, view = wd_ratio, 'layer'
    w = w * (1 - lr * wd * ratio) - lr * scale * u
    return w, m, v, view


def _apply(opt, var, grad):
    opt.apply_gradients([(tf.constant(grad), var)])
    return var.numpy().astype(np.float64)


def _scale_invariant_grad(w_np):
    """Gradient of a scale-invariant loss f(w / ||w||_channel), computed by TF."""
    target = tf.constant(np.random.RandomState(1).randn(*w_np.shape).astype(np.float32))
    w = tf.constant(w_np)
    with tf.GradientTape() as tape:
        tape.watch(w)
        w2 = tf.reshape(w, [-1, w_np.shape[-1]])
        normed = w2 / tf.norm(w2, axis=0, keepdims=True)
        loss = tf.reduce_sum(tf.reshape(normed, w_np.shape) * target)
    return tape.gradient(loss, w).numpy()


def test_adamp_projects_on_scale_invariant_weights():
    w0 = np.random.RandomState(0).randn(3, 3, 4, 8).astype(np.float32)
    g = _scale_invariant_grad(w0)
    expected, _, _, view = _np_adamp_step(w0.astype(np.float64), g.astype(np.float64), 0, 0, 1)
    assert view == 'channel'  # the case must really trigger the projection
    var = keras.Variable(w0)
    opt = make_optimizer('adamp', LR, B1, B2, EPS, WD, variables=[var])
    got = _apply(opt, var, g)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The update (without decay) has no radial part per channel: norms grow only by 2nd order.
    step = (got - w0 * (1 - LR * WD * 0.1)).reshape(-1, 8)
    radial = np.abs((step * w0.reshape(-1, 8)).sum(0)) / np.linalg.norm(w0.reshape(-1, 8), axis=0)
    assert radial.max() < 1e-5 * np.abs(step).max()


def test_adamp_layer_view_when_channels_are_not_invariant():
    rs = np.random.RandomState(2)
    w0 = rs.randn(16, 4).astype(np.float64)
    g = rs.randn(16, 4)
    g -= w0 * (w0 * g).sum() / (w0 * w0).sum()  # orthogonal to w as a whole only
    expected, _, _, view = _np_adamp_step(w0, g, 0, 0, 1)
    assert view == 'layer'
    var = keras.Variable(w0.astype(np.float32))
    opt = make_optimizer('adamp', LR, B1, B2, EPS, WD, variables=[var])
    np.testing.assert_allclose(_apply(opt, var, g.astype(np.float32)), expected, rtol=1e-5,
                               atol=1e-6)


def test_adamp_without_projection_several_steps_and_nesterov():
    rs = np.random.RandomState(3)
    for nesterov in (False, True):
        w = rs.randn(5, 6)
        bias = rs.randn(6)
        var, bvar = keras.Variable(w.astype(np.float32)), keras.Variable(bias.astype(np.float32))
        opt = make_optimizer('adamp', LR, B1, B2, EPS, WD, nesterov=nesterov,
                             variables=[var, bvar])
        m = v = mb = vb = 0
        for t in (1, 2, 3):
            g = w + 0.1 * rs.randn(5, 6)  # strongly aligned with w: no projection
            gb = rs.randn(6)
            w, m, v, view = _np_adamp_step(w, g, m, v, t, nesterov=nesterov)
            bias, mb, vb, _ = _np_adamp_step(bias, gb, mb, vb, t, nesterov=nesterov)
            assert view == 'none'
            opt.apply_gradients([(tf.constant(g, tf.float32), var),
                                 (tf.constant(gb, tf.float32), bvar)])
            np.testing.assert_allclose(var.numpy(), w, rtol=2e-5, atol=1e-6)
            np.testing.assert_allclose(bvar.numpy(), bias, rtol=2e-5, atol=1e-6)


def test_adamp_without_projection_matches_keras_adamw():
    rs = np.random.RandomState(4)
    w0 = rs.randn(3, 3, 2, 4).astype(np.float32)
    ours, ref = keras.Variable(w0), keras.Variable(w0)
    opt = make_optimizer('adamp', LR, B1, B2, EPS, WD, delta=0.0, variables=[ours])
    keras_opt = keras.optimizers.AdamW(learning_rate=LR, weight_decay=WD, beta_1=B1, beta_2=B2,
                                       epsilon=EPS)
    for _ in range(4):
        g = tf.constant(rs.randn(*w0.shape).astype(np.float32))
        opt.apply_gradients([(g, ours)])
        keras_opt.apply_gradients([(g, ref)])
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('name,wd', [('adam', 0.0), ('adamw', WD)])
def test_adam_and_adamw_match_numpy(name, wd):
    rs = np.random.RandomState(5)
    w = rs.randn(4, 3)
    var = keras.Variable(w.astype(np.float32))
    # Official defaults beta1=0, beta2=0.99, epsilon=1e-8.
    opt = make_optimizer(name, LR, weight_decay=wd, variables=[var])
    m = v = 0
    for t in (1, 2, 3):
        g = rs.randn(4, 3)
        u, m, v, scale = _np_adam_direction(g, m, v, t, b1=0.0, b2=0.99, eps=1e-8)
        w = w * (1 - LR * wd) - LR * scale * u
        opt.apply_gradients([(tf.constant(g, tf.float32), var)])
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', ['adam', 'adamw', 'adamp'])
def test_learning_rate_changes_inside_tf_function_and_reset(name):
    rs = np.random.RandomState(6)
    w0 = rs.randn(3, 4).astype(np.float32)
    grads = [rs.randn(3, 4).astype(np.float32) for _ in range(3)]
    var = keras.Variable(w0)
    opt = make_optimizer(name, LR, B1, B2, EPS, 0.0, variables=[var])

    @tf.function
    def step(g, lr):
        opt.learning_rate.assign(lr)
        opt.apply_gradients([(g, var)])

    step(tf.constant(grads[0]), tf.constant(0.01))
    before = var.numpy().copy()
    step(tf.constant(grads[1]), tf.constant(0.003))
    # Second step of Adam (AdamP: g not aligned with w, checked via the numpy model).
    w_ref, m, v = w0.astype(np.float64), 0, 0
    for t, (g, lr) in enumerate(zip(grads[:2], (0.01, 0.003)), start=1):
        w_ref, m, v, _ = _np_adamp_step(w_ref, g.astype(np.float64), m, v, t, lr=lr, wd=0.0,
                                        delta=0.1 if name == 'adamp' else 0.0)
    np.testing.assert_allclose(var.numpy(), w_ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(var.numpy(), before)

    # After a reset the next step is a first step again (moments 0, t = 1).
    reset_optimizer_state(opt)
    assert int(opt.iterations) == 0
    assert float(opt.learning_rate) == pytest.approx(0.003)
    start = var.numpy().copy()
    step(tf.constant(grads[2]), tf.constant(0.003))
    fresh_var = keras.Variable(start)
    fresh = make_optimizer(name, 0.003, B1, B2, EPS, 0.0, variables=[fresh_var])
    fresh.apply_gradients([(tf.constant(grads[2]), fresh_var)])
    np.testing.assert_allclose(var.numpy(), fresh_var.numpy(), rtol=1e-6, atol=1e-7)


def test_adamp_keras_subclass_plain_construction():
    opt = AdamP(learning_rate=0.002)
    assert isinstance(opt, keras.optimizers.Optimizer)
    assert opt.get_config()['wd_ratio'] == 0.1 and opt.get_config()['nesterov'] is False
    opt.learning_rate = 0.0015
    assert float(opt.learning_rate) == pytest.approx(0.0015)


@pytest.mark.parametrize('kwargs,match', [
    (dict(name='sgd'), 'adam, adamw, adamp'),
    (dict(name='adam', weight_decay=0.1), 'adamw or adamp'),
    (dict(name='adamw', beta1=1.0), 'beta1'),
    (dict(name='adamp', epsilon=0.0), 'epsilon'),
    (dict(name='adamw', learning_rate=-1.0), 'learning rate'),
])
def test_make_optimizer_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(**kwargs)


def _tf1_adam_reference(w0s, steps, beta1, beta2, reset_after):
    """Weights after each step of TF1's AdamOptimizer in a graph and session, as the official
    code ran it; its state re-initialised after step `reset_after` (reset_opt_for_new_lod)."""
    out = []
    with tf.Graph().as_default():
        ws = [tf.compat.v1.get_variable(f'w{i}', initializer=w0, use_resource=True)
              for i, w0 in enumerate(w0s)]
        gs = [tf.compat.v1.placeholder(tf.float32, w0.shape) for w0 in w0s]
        lr = tf.compat.v1.placeholder(tf.float32, [])
        opt = tf.compat.v1.train.AdamOptimizer(learning_rate=lr, beta1=beta1, beta2=beta2,
                                               epsilon=1e-8)
        apply = opt.apply_gradients(list(zip(gs, ws)))
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for t, (grads, rate) in enumerate(steps):
                sess.run(apply, {**dict(zip(gs, grads)), lr: rate})
                out.append(sess.run(ws))
                if t == reset_after:
                    sess.run(tf.compat.v1.variables_initializer(opt.variables()))
    return out


@pytest.mark.parametrize('beta1,beta2', [(0.0, 0.99), (0.9, 0.999)])
def test_adam_is_tf1_adam_bit_for_bit(beta1, beta2):
    # The official beta1=0, beta2=0.99, and the projector's 0.9, 0.999; learning-rate changes
    # and a state reset midway, inside tf.function as the training loop runs it.
    rs = np.random.RandomState(7)
    w0s = [rs.randn(3, 3, 8, 16).astype(np.float32), rs.randn(16).astype(np.float32)]
    steps = [([rs.randn(*w.shape).astype(np.float32) * (t + 1) for w in w0s],
              0.004 if t < 8 else 0.002) for t in range(20)]
    ref = _tf1_adam_reference(w0s, steps, beta1, beta2, reset_after=11)
    variables = [keras.Variable(w) for w in w0s]
    opt = make_optimizer('adam', 0.004, beta1, beta2, 1e-8, variables=variables)
    assert isinstance(opt, TF1Adam)

    @tf.function
    def step(grads, rate):
        opt.learning_rate.assign(rate)
        opt.apply_gradients(zip(grads, variables))

    for t, (grads, rate) in enumerate(steps):
        step([tf.constant(g) for g in grads], tf.constant(rate))
        for ours, theirs in zip(variables, ref[t]):
            np.testing.assert_array_equal(ours.numpy(), theirs, err_msg=f'step {t + 1}')
        if t == 11:
            reset_optimizer_state(opt)
    # Keras' own Adam is not TF1's arithmetic: the check above would see the difference.
    keras_var = keras.Variable(w0s[0])
    keras_opt = keras.optimizers.Adam(0.004, beta1, beta2, 1e-8)
    for grads, rate in steps[:3]:
        keras_opt.apply_gradients([(tf.constant(grads[0]), keras_var)])
    assert not np.array_equal(keras_var.numpy(), _tf1_adam_reference(
        w0s[:1], [(g[:1], r) for g, r in steps[:3]], beta1, beta2, reset_after=-1)[2][0])


def test_tf1_adam_powers_follow_the_step_count_and_complete_old_states():
    rs = np.random.RandomState(8)
    var = keras.Variable(rs.randn(5).astype(np.float32))
    opt = make_optimizer('adam', 0.01, 0.5, 0.99, variables=[var])
    for _ in range(13):
        opt.apply_gradients([(tf.constant(rs.randn(5).astype(np.float32)), var)])
    saved = {f'{i:04d}:{v.path}': v.numpy() for i, v in enumerate(opt.variables)}
    assert float(opt.variables[-1].numpy()) == float(opt.beta_powers_after(13)[
        opt.variables[-1].path])
    # A state written before the powers existed (Keras' Adam: the same variables but the two).
    old = {k: v for k, v in saved.items() if not k.endswith('_power')}
    assert len(old) == len(saved) - 2
    completed = complete_saved_state(opt, old)
    assert sorted(completed) == sorted(saved)
    for key in saved:
        np.testing.assert_array_equal(completed[key], saved[key])
    # Other states are left for the caller's checks.
    assert complete_saved_state(opt, saved) is saved
    assert complete_saved_state(make_optimizer('adamp', variables=[var]), old) is old


def test_tf1_adam_powers_after_many_steps_underflow_as_tensorflow_does():
    # beta2^t leaves float32's normal range after about 8,700 steps; TensorFlow's kernels flush
    # the subnormal products to 0 and the recomputation for old states must agree.
    var = keras.Variable(np.ones([2], np.float32))
    opt = make_optimizer('adam', 1e-6, 0.5, 0.99, variables=[var])
    grad = tf.constant([1e-3, -1e-3])

    @tf.function
    def run(n):
        for _ in tf.range(n):
            opt.apply_gradients([(grad, var)])

    for steps in (8000, 1000):          # 8,000 then 9,000 applies in all
        run(tf.constant(steps))
        expected = opt.beta_powers_after(int(opt.iterations))
        for power in opt.variables[-2:]:
            assert power.numpy() == expected[power.path], (int(opt.iterations), power.path)
    assert opt.variables[-1].numpy() == 0 and int(opt.iterations) == 9000
