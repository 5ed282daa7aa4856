"""tf2 StyleGAN2 against NVIDIA's own outputs (fixture sg2_r64) and the official variable list.

Every reference key of sg2_r64_ref.npz is checked, with the custom ops both as the TensorFlow
reference ('ref') and as the compiled kernel ('cpp'), through ``tf2.load_network`` and the
official API. Also: config-f at 1024 px builds exactly the official variables, a saved snapshot
reloads identically, and config-a pickles (G_style/D_basic with a version-4 state) load as v1.
"""

import numpy as np
import pytest
import tensorflow as tf

import tf2
from conftest import TOL, fixture_path, rel, d_kwargs
from fixture_checks import (GS_IMAGES, assert_discriminator_scores, assert_gs_images,
                            assert_instantaneous_g, assert_mapping_and_dlatent_avg,
                            assert_official_variables, assert_synthesis, assert_uint8_matches,
                            d_images)
from dnnlib import legacy_pickle
from tf2 import checkpoint
from tf2 import networks_stylegan as nets1
from tf2 import networks_stylegan2 as nets2
from tf2 import ops

def _compiled_available():
    try:
        ops.fused_bias_act(tf.zeros([1, 1]), impl='cpp')
        ops.upfirdn2d(tf.zeros([1, 2, 2, 1]), np.ones([1, 1]), impl='cpp')
    except ops.OpBuildError as e:
        pytest.fail(f'compiled ops unavailable: {e}', pytrace=False)


@pytest.fixture(scope='module', params=['ref', 'cpp'])
def nets(request):
    if request.param == 'cpp':
        _compiled_available()
    nets2.DEFAULT_IMPL = request.param        # chosen when the forward passes are traced
    G, D, Gs = tf2.load_network(fixture_path('sg2_r64.pkl'))
    ref = np.load(fixture_path('sg2_r64_ref.npz'))
    yield G, D, Gs, ref
    nets2.DEFAULT_IMPL = 'auto'


# ------------------------------------------------------------------------------------------------
# Fixture sg2_r64: every key.

def test_loaded_models_are_v2(nets):
    G, D, Gs, ref = nets
    assert isinstance(Gs.model, nets2.GMain)
    assert isinstance(Gs.model.mapping, nets2.MappingV2)      # parent G_main -> v2 math
    assert isinstance(Gs.model.synthesis, nets2.SynthesisStyleGAN2)
    assert isinstance(D.model, nets2.DStyleGAN2)
    assert Gs.model.state_version == 4
    assert Gs.input_shape == [None, 32] and Gs.output_shape == [None, 3, 64, 64]
    assert [k for k in Gs.vars][:2] == ['lod', 'dlatent_avg']
    for key in ref.files:
        if key.startswith('noise_var_'):
            name = key[len('noise_var_'):]
            np.testing.assert_array_equal(Gs.components.synthesis.get_var(name), ref[key])


def test_mapping_and_dlatent_avg(nets):
    G, D, Gs, ref = nets
    assert_mapping_and_dlatent_avg(Gs, ref)
    for part in ('A', 'B'):
        out = Gs.components.mapping.run(ref[f'mix_latents_{part}'], None)
        assert rel(out, ref[f'mix_dlatents_{part}']) <= TOL


@pytest.mark.parametrize('key,kwargs', GS_IMAGES['sg2_r64'])
def test_gs_truncation(nets, key, kwargs):
    G, D, Gs, ref = nets
    assert_gs_images(Gs, ref, key, kwargs)


def test_truncated_dlatents_returned(nets):
    G, D, Gs, ref = nets
    images, dlatents = Gs.run(ref['latents'], None, randomize_noise=False, return_dlatents=True)
    assert rel(dlatents, ref['dlatents_trunc05']) <= TOL
    assert rel(images, ref['images_psi05']) <= TOL


def test_uint8_output(nets):
    G, D, Gs, ref = nets
    out = Gs.run(ref['latents'], None, randomize_noise=False, minibatch_size=3,
                 output_transform=dict(func=tf2.convert_images_to_uint8, nchw_to_nhwc=True))
    assert_uint8_matches(out, ref['images_psi05_uint8_nhwc'])


def test_instantaneous_g(nets):
    G, D, Gs, ref = nets
    assert_instantaneous_g(G, ref, apart=1e-3)          # G differs from Gs in this fixture


def test_synthesis_of_mixed_dlatents(nets):
    G, D, Gs, ref = nets
    assert_synthesis(Gs, ref, 'mix_dlatents', 'mix_images')


def test_discriminator_scores(nets):
    G, D, Gs, ref = nets
    assert_discriminator_scores(D, ref)                 # also the first two: group size 2


def test_eager_and_tf_function_agree(nets):
    G, D, Gs, ref = nets
    z = tf.constant(ref['latents'])
    eager = Gs.model(z, None, truncation_psi=1.0, randomize_noise=False).numpy()
    assert rel(eager, ref['images_psi1']) <= TOL
    graph = tf.function(lambda x: Gs.model(x, None, truncation_psi=1.0,
                                           randomize_noise=False))(z).numpy()
    assert rel(graph, ref['images_psi1']) <= TOL


def test_random_noise_draws_fresh_noise(nets):
    G, D, Gs, ref = nets
    a = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=True)
    b = Gs.run(ref['latents'], None, truncation_psi=1.0, randomize_noise=True)
    assert np.isfinite(a).all()
    assert rel(a, ref['images_psi1']) > 1e-3 and rel(a, b) > 1e-3


# ------------------------------------------------------------------------------------------------
# Official variable list at 1024 px (built, never run).

def test_configf_1024_variables_match_official_list():
    G = nets2.G_main(name='G', num_channels=3, resolution=1024, label_size=0)
    D = nets2.D_stylegan2(name='D', num_channels=3, resolution=1024, label_size=0)
    counts = assert_official_variables(
        'sg2_configf1024_variables.txt', G.own_official_variables(),
        G.mapping.own_official_variables(), G.synthesis.own_official_variables(),
        D.own_official_variables())
    assert G.mapping.name == 'G_mapping' and G.synthesis.name == 'G_synthesis'
    assert G.mapping.static_kwargs['dlatent_broadcast'] == 18
    n_g = sum(int(np.prod(v.shape)) for v in G.trainable_variables)
    n_d = sum(int(np.prod(v.shape)) for v in D.trainable_variables)
    assert (n_g, n_d) == counts
    # Keras' trainable lists hold exactly the officially trainable variables.
    assert {id(v) for v in G.trainable_variables} == {
        id(v) for v in G.official_variables().values() if v.trainable}


# ------------------------------------------------------------------------------------------------
# Snapshots and config-a.

def test_snapshot_roundtrip(tmp_path):
    kw = dict(num_channels=3, resolution=16, label_size=0, latent_size=8, dlatent_size=8,
              mapping_fmaps=8, mapping_layers=2, fmap_base=64, fmap_max=16)
    G = nets2.G_main(name='G', **kw)
    D = nets2.D_stylegan2(name='D', architecture='skip', **d_kwargs(kw))
    rng = np.random.RandomState(1)
    for model in (G, D):
        for name, v in model.official_variables().items():
            v.assign(np.asarray(rng.randn(*v.shape), np.float32) * 0.5)
    Gs = checkpoint.clone(G, 'Gs')
    path = str(tmp_path / 'network-snapshot-000000.pkl')
    checkpoint.save_networks(path, G, D, Gs)
    states = legacy_pickle.load(path)
    assert [s.version for s in states] == [4, 4, 4]
    assert states[0].build_func_name == 'G_main' and states[1].build_func_name == 'D_stylegan2'
    assert states[0].components['synthesis'].build_func_name == 'G_synthesis_stylegan2'
    G2, D2, Gs2 = tf2.load_network(path)
    z = rng.randn(3, 8).astype(np.float32)
    # Same values (the file keeps float32 exactly); run() traces a graph, so allow rounding.
    for name, v in Gs.official_variables().items():
        np.testing.assert_array_equal(Gs2.get_var(name), v.numpy())
    assert rel(Gs2.run(z, None, randomize_noise=False),
               Gs(z, None, randomize_noise=False).numpy()) <= 1e-6
    imgs = rng.randn(4, 3, 16, 16).astype(np.float32)
    assert rel(D2.run(imgs, None), D(imgs).numpy()) <= 1e-6
    assert D2.static_kwargs['architecture'] == 'skip'


def test_config_a_pickle_loads_through_v1(tmp_path):
    """StyleGAN2's config-a: G_style/D_basic in a version-4 state. The mapping's parent is
    G_style, so v1 mapping math (sqrt(2) inside the weight) must be used."""
    kw = dict(num_channels=3, resolution=8, label_size=0, latent_size=8, dlatent_size=8,
              mapping_fmaps=8, mapping_layers=2, fmap_base=32, fmap_max=8)
    G = nets1.G_style(name='G', **kw)
    D = nets1.D_basic(name='D', **d_kwargs(kw))
    rng = np.random.RandomState(2)
    for model in (G, D):
        for name, v in model.official_variables().items():
            if not name.endswith('lod'):
                v.assign(np.asarray(rng.randn(*v.shape), np.float32) * 0.5)
    states = checkpoint.network_states(G, D, G)
    for s in states:
        s.version = 4
        for comp in s.components.values():
            comp.version = 4
    path = str(tmp_path / 'config-a.pkl')
    legacy_pickle.save(states, path)
    _, D2, Gs2 = tf2.load_network(path)
    assert isinstance(Gs2.model.mapping, nets1.MappingV1)
    assert Gs2.model.mapping.state_version == 4
    z = rng.randn(2, 8).astype(np.float32)
    # v1 mapping by hand: lrelu(x @ W*sqrt(2)/sqrt(fan_in)*0.01 + b*0.01), after pixel norm.
    x = z / np.sqrt(np.mean(z ** 2, axis=1, keepdims=True) + 1e-8)
    for i in range(2):
        w = Gs2.get_var(f'G_mapping/Dense{i}/weight')
        b = Gs2.get_var(f'G_mapping/Dense{i}/bias')
        x = x @ (w * np.sqrt(2) / np.sqrt(w.shape[0]) * 0.01) + b * 0.01
        x = np.where(x >= 0, x, 0.2 * x)
    np.testing.assert_allclose(Gs2.components.mapping.run(z, None)[:, 0], x, rtol=1e-5,
                               atol=1e-6)
    out = Gs2.run(z, None, randomize_noise=False)
    np.testing.assert_allclose(out, G(z, None, randomize_noise=False).numpy(), rtol=0,
                               atol=1e-6 * np.abs(out).max())
    # Written back, the file keeps version 4 and the v1 build functions.
    states2 = checkpoint.network_states(Gs2.model, D2.model, Gs2.model)
    assert states2[0].version == 4 and states2[0].build_func_name == 'G_style'


def test_standalone_v2_mapping_state_dispatches_to_v2():
    kw = dict(latent_size=8, dlatent_size=8, mapping_fmaps=8, mapping_layers=2,
              dlatent_broadcast=4)
    m = nets2.G_mapping(**kw)
    m.dense_layers[0].bias.assign(np.full([8], 3.0, np.float32))
    state = checkpoint.state_from_model(m)
    assert state.version == 4
    m2 = checkpoint.model_from_state(state)
    assert isinstance(m2, nets2.MappingV2)


@pytest.mark.nchw       # conftest: runs in a oneDNN child process where this CPU lacks NCHW convs
def test_nchw_data_format_matches():
    """The GPU layout option computes the same values (when NCHW convs run on this CPU build)."""
    ref = np.load(fixture_path('sg2_r64_ref.npz'))
    _, D, Gs = tf2.load_network(fixture_path('sg2_r64.pkl'), data_format='NCHW')
    assert Gs.model.synthesis.data_format == 'NCHW'
    assert rel(Gs.run(ref['latents'], None, randomize_noise=False), ref['images_psi05']) <= TOL
    assert rel(D.run(d_images(ref), None), ref['D_scores']) <= TOL
