"""legacy_tf.tflib: the official Network API, tflib helpers and coexistence with eager TF 2.

Expected values come from hand-written formulas (the official conversions, the EMA update) or from
a second path through the API that must agree (minibatching vs one batch, get_output_for vs run,
clone vs original).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO_DIR, fixture_path, rel, small_net_kwargs
from fixture_checks import own_tflib_graph

import tensorflow as tf  # noqa: E402

import legacy_tf  # noqa: E402
from legacy_tf import tflib  # noqa: E402

SMALL = small_net_kwargs(16)


own_graph = own_tflib_graph()     # this module's networks in a graph of their own


@pytest.fixture(scope='module')
def G():
    net = tflib.Network('G', func_name='G_style', **SMALL)
    rnd = np.random.RandomState(0)
    net.set_vars({n: rnd.randn(*v.shape.as_list()).astype(np.float32) * 0.5
                  for n, v in net.vars.items() if not n.endswith('lod')})
    return net


@pytest.fixture(scope='module')
def z():
    return np.random.RandomState(1).randn(5, 8)


# ------------------------------------------------------------------------------------------------
# run() and get_output_for().

def test_run_minibatches_and_lists(G, z, capsys):
    full = G.run(z, None, randomize_noise=False)
    assert full.shape == (5, 3, 16, 16) and full.dtype == np.float32
    mb = G.run(z, None, randomize_noise=False, minibatch_size=2, print_progress=True)
    np.testing.assert_allclose(mb, full, rtol=1e-5, atol=1e-6)
    assert '5 / 5' in capsys.readouterr().out
    as_list = G.run(z, None, randomize_noise=False, return_as_list=True)
    assert isinstance(as_list, list) and len(as_list) == 1
    np.testing.assert_array_equal(as_list[0], full)
    empty = G.run(z[:0], None, randomize_noise=False)
    assert empty.shape == (0, 3, 16, 16)
    labels = np.zeros([5, 0])
    np.testing.assert_array_equal(G.run(z, labels, randomize_noise=False), full)


def test_run_transforms(G, z):
    full = G.run(z, None, randomize_noise=False, truncation_psi=1.0)
    u8 = G.run(z, None, randomize_noise=False, truncation_psi=1.0, output_transform=dict(
        func=tflib.convert_images_to_uint8, nchw_to_nhwc=True, shrink=2))
    pooled = full.reshape(5, 3, 8, 2, 8, 2).mean(axis=(3, 5)).transpose(0, 2, 3, 1)
    expected = np.clip(pooled * 127.5 + 128, 0, 255).astype(np.uint8)
    assert u8.shape == (5, 8, 8, 3) and u8.dtype == np.uint8
    assert (np.abs(u8.astype(int) - expected) > 0).mean() < 0.01       # rounding at the edges
    # Legacy output options: scale, offset, round and saturate.
    legacy = G.run(z, None, randomize_noise=False, truncation_psi=1.0, out_mul=127.5,
                   out_add=127.5, out_dtype=np.uint8)
    expected = np.clip(np.round(full * 127.5 + 127.5), 0, 255).astype(np.uint8)
    assert legacy.dtype == np.uint8 and (np.abs(legacy.astype(int) - expected) > 1).sum() == 0
    with pytest.raises(ValueError, match='output_transform'):
        G.run(z, None, out_mul=2.0, output_transform=dict(func=tflib.convert_images_to_uint8))
    # Input transform: doubling z inside the graph equals feeding 2z.
    doubled = G.run(z, None, randomize_noise=False, truncation_psi=1.0,
                    input_transform=dict(func=_scale_inputs, factor=2.0))
    np.testing.assert_allclose(doubled, G.run(2 * z, None, randomize_noise=False,
                                              truncation_psi=1.0), rtol=1e-5, atol=1e-6)


def _scale_inputs(latents, labels, factor):
    return latents * factor, labels


def test_run_errors(G, z):
    with pytest.raises(TypeError, match=r"2 inputs \['latents_in', 'labels_in'\]"):
        G.run(z)
    with pytest.raises(ValueError, match='all inputs are None'):
        G.run(None, None)
    with pytest.raises(ValueError, match='labels_in'):
        G.run(z, np.zeros([3, 0]))
    with pytest.raises(ValueError, match='num_gpus=64'):
        G.run(z, None, num_gpus=64)


def test_get_output_for(G, z):
    with tflib.graph_scope():
        latents = tf.compat.v1.placeholder(tf.float32, [None, 8])
        images = G.get_output_for(latents, None, truncation_psi=0.5, randomize_noise=False)
        assert images.shape.as_list() == [None, 3, 16, 16]
        u8 = tflib.convert_images_to_uint8(images)
    out, out8 = tflib.run([images, u8], {latents: z})
    np.testing.assert_allclose(out, G.run(z, None, truncation_psi=0.5, randomize_noise=False),
                               rtol=1e-5, atol=1e-6)
    assert out8.dtype == np.uint8
    # Outside graph_scope too: numpy inputs become constants in legacy_tf's graph.
    images2 = G.components.synthesis.get_output_for(
        G.components.mapping.run(z, None), randomize_noise=False)
    assert images2.graph is tflib.get_graph()
    np.testing.assert_allclose(tflib.run(images2), G.run(z, None, truncation_psi=1.0,
                                                         randomize_noise=False), rtol=1e-5,
                               atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Variables.

def test_variable_access(G):
    assert list(G.own_vars) == ['lod', 'dlatent_avg']
    assert 'G_synthesis/4x4/Const/const' in G.vars and 'G_mapping/Dense0/weight' in G.vars
    non_trainable = [n for n in G.vars if n not in G.trainables]
    assert non_trainable == ['lod', 'dlatent_avg', 'G_synthesis/lod'] + \
        [f'G_synthesis/noise{i}' for i in range(6)]
    var = G.find_var('G_synthesis/noise3')
    assert G.get_var_local_name(var) == 'G_synthesis/noise3'
    assert var.name.startswith(G.components.synthesis.scope + '/')
    assert G.get_var_local_name(var.name) == 'G_synthesis/noise3'
    old = G.get_var('dlatent_avg')
    try:
        G.set_var('dlatent_avg', np.arange(8))
        np.testing.assert_array_equal(G.get_var('dlatent_avg'), np.arange(8, dtype=np.float32))
        assert G.components.mapping.get_var('Dense0/bias').shape == (8,)
        with pytest.raises(ValueError, match='dlatent_avg.*shape'):
            G.set_var('dlatent_avg', np.zeros(3))
        with pytest.raises(KeyError, match="no variable 'nope'"):
            G.get_var('nope')
        # Official-era code: tflib.set_vars with a dict of variables (inside graph_scope) or pairs.
        noise = [v for n, v in G.components.synthesis.vars.items() if n.startswith('noise')]
        values = [np.full(v.shape.as_list(), 0.25, np.float32) for v in noise]
        with tflib.graph_scope():
            tflib.set_vars({v: x for v, x in zip(noise, values)})
        assert float(G.get_var('G_synthesis/noise0').mean()) == 0.25
        tflib.set_vars(list(zip(noise, [x * 2 for x in values])))
        assert float(tflib.get_vars(noise[:1])[0].mean()) == 0.5
    finally:
        G.set_var('dlatent_avg', old)


def test_clone_copy_convert(G, z):
    Gs = G.clone('Gs')
    assert Gs.name == 'Gs' and Gs.components.mapping.name == 'G_mapping'
    expected = G.run(z, None, randomize_noise=False)
    np.testing.assert_array_equal(Gs.run(z, None, randomize_noise=False), expected)
    Gs.reset_trainables()
    assert rel(Gs.run(z, None, randomize_noise=False), expected) > 1e-3
    Gs.copy_trainables_from(G)
    np.testing.assert_array_equal(Gs.run(z, None, randomize_noise=False), expected)
    Gs.set_var('dlatent_avg', np.ones(8))
    Gs.copy_own_vars_from(G)
    np.testing.assert_array_equal(Gs.get_var('dlatent_avg'), G.get_var('dlatent_avg'))
    # convert(): new static kwargs, same variables.
    lin = G.convert(new_name='G_linear', structure='linear')
    assert lin.static_kwargs['structure'] == 'linear' and lin.name == 'G_linear'
    np.testing.assert_allclose(lin.run(z, None, randomize_noise=False), expected, rtol=1e-5,
                               atol=1e-6)


def test_setup_as_moving_average_of(G):
    Gs = G.clone('Gs_ema')
    rnd = np.random.RandomState(5)
    Gs.set_vars({n: rnd.randn(*v.shape.as_list()) for n, v in Gs.vars.items()})
    before_g, before_gs = G.get_vars(), Gs.get_vars()
    op = Gs.setup_as_moving_average_of(G, beta=0.75)
    tflib.run(op)
    after = Gs.get_vars()
    for name in Gs.vars:
        src, old = before_g[name], before_gs[name]
        expected = src + (old - src) * 0.75 if name in Gs.trainables else src
        np.testing.assert_allclose(after[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert G.get_vars().keys() == before_g.keys()


def test_print_layers_and_ops(G, capsys):
    G.print_layers()
    text = capsys.readouterr().out
    total = sum(int(np.prod(v.shape.as_list())) for v in G.trainables.values())
    assert f'Total' in text and str(total) in text
    line = next(l for l in text.splitlines() if l.startswith('G_synthesis/16x16/Conv1 '))
    assert '(?, 8, 16, 16)' in line and '(3, 3, 8, 8)' in line
    ops = G.list_ops()
    prefix = G.scope + '/'
    assert ops and all(op.name.startswith(prefix) and not op.name.startswith(prefix + '_')
                       for op in ops)
    names = [n for n, _, _ in G.list_layers()]
    assert names[:2] == ['latents_in', 'labels_in'] and names[-1] == 'images_out'
    assert 'G_mapping/Dense1' in names and 'G_synthesis/4x4/Const' in names


# ------------------------------------------------------------------------------------------------
# Image conversion (official formulas, spec 1.5).

def test_convert_images():
    x = np.array([-1.0, -0.992, 0.0, 0.5, 0.9999, 1.0, 3.0, -3.0], np.float32)
    images = x.reshape(1, 2, 2, 2)                              # NCHW
    u8 = tflib.convert_images_to_uint8(images).numpy()
    expected = np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8)   # truncating cast
    np.testing.assert_array_equal(u8.reshape(-1), expected)
    assert list(expected) == [0, 1, 128, 191, 255, 255, 255, 0]
    nhwc = tflib.convert_images_to_uint8(images, nchw_to_nhwc=True).numpy()
    np.testing.assert_array_equal(nhwc, u8.transpose(0, 2, 3, 1))
    u8_01 = tflib.convert_images_to_uint8(np.array([[[[0.0, 0.5, 1.0]]]]), drange=[0, 1]).numpy()
    np.testing.assert_array_equal(u8_01.reshape(-1), [0, 128, 255])
    raw = np.array([0, 128, 255], np.uint8).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(tflib.convert_images_from_uint8(raw).numpy().reshape(-1),
                               [2 / 255, 129 * 2 / 255, 256 * 2 / 255], rtol=1e-6)  # v1 formula
    np.testing.assert_allclose(tflib.convert_images_from_uint8_v2(raw).numpy().reshape(-1),
                               [-1.0, 128 * 2 / 255 - 1, 1.0], atol=1e-6)       # v2 formula
    assert tflib.convert_images_from_uint8(raw, nhwc_to_nchw=True).shape == (1, 3, 1, 1)


def test_networks_survive_reset_tf(G, z):
    expected = G.run(z, None, randomize_noise=False)
    old_graph = tflib.get_graph()
    tflib.reset_tf()
    try:
        assert tflib.get_graph() is not old_graph and G.list_ops()[0].graph is old_graph
        np.testing.assert_array_equal(G.run(z, None, randomize_noise=False), expected)
        images = G.get_output_for(tf.constant(z, tf.float32), None, randomize_noise=False)
        np.testing.assert_allclose(tflib.run(images), expected, rtol=1e-5, atol=1e-6)
        G.set_var('dlatent_avg', G.get_var('dlatent_avg'))
        Gs = G.clone('Gs_new_graph')            # built in the new graph, values copied across
        assert Gs.list_ops()[0].graph is tflib.get_graph()
        np.testing.assert_array_equal(Gs.run(z, None, randomize_noise=False), expected)
    finally:
        tflib.reset_tf()


# ------------------------------------------------------------------------------------------------
# Coexistence with eager TensorFlow 2.

def test_eager_between_legacy_runs(z):
    assert tf.executing_eagerly()
    G, _D, Gs = legacy_tf.load_network(fixture_path('sg1_r64.pkl'))
    latents = np.random.RandomState(2).randn(2, 32)
    first = Gs.run(latents, None, randomize_noise=False)
    assert tf.executing_eagerly()
    # Plain eager work and a tf.function in between.
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    assert float(tf.reduce_sum(a @ a)) == 54.0
    double = tf.function(lambda t: t * 2)
    assert double(tf.constant(3.0)).numpy() == 6.0
    np.testing.assert_array_equal(Gs.run(latents, None, randomize_noise=False), first)
    assert tf.executing_eagerly() and tf.compat.v1.get_default_graph() is not tflib.get_graph()


def test_eager_first_then_legacy_subprocess(tmp_path):
    """Reverse order in a fresh process: eager work and tf2 networks first, then init_tf with
    seeds and legacy_tf, then eager and tf2 again."""
    script = textwrap.dedent(f'''
        import numpy as np
        import tensorflow as tf
        a = tf.Variable(tf.ones([2, 2]))
        assert float(tf.function(lambda: tf.reduce_sum(a * 3))()) == 12.0
        import tf2
        tf2_load = getattr(tf2, 'load_network', None)
        z = np.random.RandomState(3).randn(2, 32)
        if tf2_load is not None:
            tf2_Gs = tf2_load({fixture_path('sg1_r64.pkl')!r})[2]
            tf2_before = np.asarray(tf2_Gs.run(z, None, randomize_noise=False))
        from legacy_tf import tflib
        import legacy_tf
        tflib.init_tf({{'rnd.np_random_seed': 1000}})
        rnd = np.random.RandomState(1000)
        assert tflib.get_graph().seed == rnd.randint(1 << 31)    # 'auto' TF seed from NumPy
        assert np.random.rand() == rnd.rand()                     # NumPy seeded
        tflib.init_tf({{'rnd.np_random_seed': 5}})                # second call: no effect
        assert np.random.rand() == rnd.rand()
        _G, _D, Gs = legacy_tf.load_network({fixture_path('sg1_r64.pkl')!r})
        ref = np.load({fixture_path('sg1_r64_ref.npz')!r})
        out = Gs.run(ref['latents'], None, truncation_psi=0.7, randomize_noise=False)
        err = np.abs(out - ref['images_psi07']).max() / np.abs(ref['images_psi07']).max()
        assert err < 1e-4, err
        assert tf.executing_eagerly()
        assert float(tf.reduce_sum(a.assign_add(tf.ones([2, 2])))) == 8.0
        if tf2_load is not None:
            tf2_after = np.asarray(tf2_Gs.run(z, None, randomize_noise=False))
            assert np.array_equal(tf2_before, tf2_after)
            legacy = Gs.run(z, None, randomize_noise=False)
            assert np.abs(legacy - tf2_after).max() / np.abs(tf2_after).max() < 1e-4
        print('OK')
    ''')
    env = dict(os.environ, PYTHONPATH=REPO_DIR + os.pathsep + os.environ.get('PYTHONPATH', ''),
               TF_CPP_MIN_LOG_LEVEL='2')
    result = subprocess.run([sys.executable, '-c', script], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith('OK')
