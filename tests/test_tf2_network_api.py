"""The official inference API of tf2.load_network (design.md "Public contracts")."""

import subprocess
import sys

import numpy as np
import pytest

import tf2
from conftest import REPO_DIR, fixture_path, rel


@pytest.fixture(scope='module')
def nets():
    G, D, Gs = tf2.load_network(fixture_path('sg1_r64.pkl'))
    return G, D, Gs, np.load(fixture_path('sg1_r64_ref.npz'))


def test_description(nets):
    G, D, Gs, ref = nets
    assert (G.name, D.name, Gs.name) == ('G', 'D', 'Gs')
    assert Gs.input_shape == [None, 32] and Gs.output_shape == [None, 3, 64, 64]
    assert Gs.input_shapes == [[None, 32], [None, 0]]
    assert D.input_shape == [None, 3, 64, 64] and D.output_shape == [None, 1]
    mapping, synthesis = Gs.components.mapping, Gs.components.synthesis
    assert mapping.name == 'G_mapping' and synthesis.name == 'G_synthesis'
    assert mapping.output_shape == [None, 10, 48] and synthesis.input_shape == [None, 10, 48]
    assert Gs.static_kwargs['resolution'] == 64 and mapping.static_kwargs['dlatent_broadcast'] == 10
    names = list(Gs.vars)
    assert names[:2] == ['lod', 'dlatent_avg']
    assert 'G_synthesis/4x4/Const/const' in names and 'G_mapping/Dense0/weight' in names
    np.testing.assert_array_equal(np.asarray(Gs.vars['dlatent_avg']), ref['dlatent_avg'])


def test_get_set_var(nets):
    G, D, Gs, ref = nets
    assert Gs.get_var('lod').shape == () and float(Gs.get_var('lod')) == 0.0
    noise = Gs.components.synthesis.get_var('noise0')
    np.testing.assert_array_equal(noise, Gs.get_var('G_synthesis/noise0'))
    Gs.components.synthesis.set_var('noise0', noise * 0)
    try:
        assert not np.array_equal(
            Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False),
            Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=True))
    finally:
        Gs.components.synthesis.set_var('noise0', noise)
    with pytest.raises(ValueError, match='shape'):
        Gs.set_var('dlatent_avg', np.zeros(3))
    with pytest.raises(KeyError, match='nonexistent'):
        Gs.get_var('nonexistent')


def test_none_inputs_float64_and_minibatches(nets):
    G, D, Gs, ref = nets
    z64 = ref['latents'].astype(np.float64)
    full = Gs.run(z64, None, truncation_psi=1.0, randomize_noise=False)
    explicit = Gs.run(ref['latents'], np.zeros([4, 0], np.float32), truncation_psi=1.0,
                      randomize_noise=False)
    chunked = Gs.run(z64, None, truncation_psi=1.0, randomize_noise=False, minibatch_size=3)
    assert full.dtype == np.float32
    np.testing.assert_allclose(full, explicit, atol=1e-6)
    # Other batch sizes run other kernel tilings: float32 rounding, far inside the tolerance.
    assert rel(chunked, full) <= 1e-5
    # a None image input of D means zeros
    zeros_scores = D.run(np.zeros([2, 3, 64, 64]), None)
    np.testing.assert_allclose(D.run(np.zeros([2, 3, 64, 64], np.float32), np.zeros([2, 0])),
                               zeros_scores)


def test_no_retracing_per_batch_size(nets):
    G, D, Gs, ref = nets
    synthesis = Gs.components.synthesis
    for n in (1, 2, 3):
        synthesis.run(ref['dlatents'][:n], randomize_noise=False)
    fns = [f for f in synthesis._fn_cache.values()]
    assert len(fns) == 1
    assert fns[0].experimental_get_tracing_count() == 1


def test_bad_inputs(nets):
    G, D, Gs, ref = nets
    with pytest.raises(ValueError, match='takes 2 inputs'):
        Gs.run(ref['latents'])
    with pytest.raises(ValueError, match='at least one'):
        Gs.run(None, None)
    with pytest.raises(ValueError, match=r'latents_in has shape \[4, 31\]'):
        Gs.run(ref['latents'][:, :31], None)


def test_legacy_output_kwargs(nets):
    G, D, Gs, ref = nets
    out = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=False,
                 out_mul=127.5, out_add=127.5, out_shrink=2, out_dtype=np.uint8)
    x = ref['images_psi1'].astype(np.float64) * 127.5 + 127.5
    x = x.reshape(4, 3, 32, 2, 32, 2).mean(axis=(3, 5))
    expect = np.clip(np.round(x), 0, 255)
    assert out.dtype == np.uint8 and out.shape == (4, 3, 32, 32)
    assert np.mean(out != expect) <= 0.001 and np.abs(out - expect).max() <= 1
    with pytest.raises(ValueError, match='cannot be combined'):
        Gs.run(ref['latents'], None, out_mul=2.0, output_transform=dict(func=np.abs))


def test_convert_images_to_uint8_truncates_like_saturate_cast():
    x = np.array([-2.0, -1.0, -0.999, 0.0, 0.0039, 0.99, 1.0, 5.0], np.float32).reshape(1, 1, 1, 8)
    out = tf2.convert_images_to_uint8(x)
    # x*127.5 + 128, clamp, truncate
    expect = [0, 0, 0, 128, 128, 254, 255, 255]
    assert out.dtype == np.uint8 and out.reshape(-1).tolist() == expect
    img = np.random.RandomState(0).uniform(-1, 1, [2, 3, 4, 6]).astype(np.float32)
    nhwc = tf2.convert_images_to_uint8(img, nchw_to_nhwc=True, shrink=2)
    pooled = img.reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5))
    expect = np.clip(pooled * 127.5 + 128, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    assert nhwc.shape == (2, 2, 3, 3)
    assert np.abs(nhwc.astype(int) - expect).max() <= 1


def test_print_layers(nets, capsys):
    nets[2].print_layers()
    out = capsys.readouterr().out
    assert 'G_synthesis/4x4/Const/const' in out and 'trainable parameters' in out


def test_import_tf2_does_not_import_tensorflow():
    code = 'import sys, tf2; print("tensorflow" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_DIR, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == 'False'
