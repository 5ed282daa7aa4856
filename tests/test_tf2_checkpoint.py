"""tf2.checkpoint: official pickle <-> Keras, exact round trip, strict name table, EMA."""

import os

import numpy as np
import pytest
import tensorflow as tf

import tf2
from conftest import fixture_path
from dnnlib import legacy_pickle
from dnnlib.legacy_pickle import NetworkState
from tf2 import checkpoint
from tf2 import networks_stylegan as nets

SMALL = dict(num_channels=3, resolution=8, label_size=0, latent_size=4, mapping_fmaps=4,
             dlatent_size=4, mapping_layers=2, fmap_base=16, fmap_max=4)


def test_fixture_round_trip_is_exact(tmp_path):
    src = fixture_path('sg1_r64.pkl')
    original = legacy_pickle.load(src)
    G, D, Gs = checkpoint.networks_from_pickle(src)
    states = checkpoint.network_states(G, D, Gs)
    for a, b in zip(states, original):
        assert a == b          # names, order, values (bitwise), kwargs, version, module src
    out = tmp_path / 'again.pkl'
    legacy_pickle.save(states, str(out))
    assert legacy_pickle.load(str(out)) == original


def test_new_networks_are_written_in_official_format(tmp_path):
    G = nets.G_style(name='G', **SMALL)
    D = nets.D_basic(name='D', **{k: SMALL[k] for k in ('num_channels', 'resolution',
                                                        'label_size', 'fmap_base', 'fmap_max')})
    Gs = checkpoint.clone(G, name='Gs')
    path = str(tmp_path / 'snap.pkl')
    checkpoint.save_networks(path, G, D, Gs)
    g, d, gs = legacy_pickle.load(path)
    assert (g.name, d.name, gs.name) == ('G', 'D', 'Gs')
    assert (g.version, d.version) == (3, 3)
    assert (g.build_func_name, d.build_func_name) == ('G_style', 'D_basic')
    assert list(gs.components) == ['synthesis', 'mapping']
    assert gs.components['synthesis'].name == 'G_synthesis'
    assert gs.components['mapping'].build_func_name == 'G_mapping'
    assert g.static_kwargs == SMALL
    assert gs.components['mapping'].static_kwargs == {'dlatent_broadcast': 4, **SMALL}
    assert g.variables['lod'].shape == ()
    # read back through the loader: same values everywhere
    G2, D2, Gs2 = checkpoint.networks_from_pickle(path)
    for a, b in ((G, G2), (D, D2), (Gs, Gs2)):
        va, vb = a.official_variables(), b.official_variables()
        assert list(va) == list(vb)
        for k in va:
            np.testing.assert_array_equal(va[k].numpy(), vb[k].numpy())


def _state_with(state, variables=None, **changes):
    new = NetworkState(state.name, changes.get('build_func_name', state.build_func_name),
                       changes.get('static_kwargs', state.static_kwargs),
                       variables if variables is not None else state.variables,
                       state.components, state.version)
    return new


def _d_state():
    D = nets.D_basic(name='D', num_channels=3, resolution=8, fmap_base=16, fmap_max=4)
    return checkpoint.state_from_model(D)


def test_unknown_variable_is_an_error():
    state = _d_state()
    variables = dict(state.variables, **{'8x8/Extra/weight': np.zeros(3, np.float32)})
    with pytest.raises(checkpoint.CheckpointError, match=r"net\.pkl.*8x8/Extra/weight"):
        checkpoint.model_from_state(_state_with(state, variables), where='net.pkl')


def test_variable_matching_a_rule_but_absent_from_model_is_an_error():
    state = _d_state()
    variables = dict(state.variables, **{'64x64/Conv0/weight': np.zeros(3, np.float32)})
    with pytest.raises(checkpoint.CheckpointError, match='64x64/Conv0/weight'):
        checkpoint.model_from_state(_state_with(state, variables), where='net.pkl')


def test_missing_variable_is_an_error():
    state = _d_state()
    variables = {k: v for k, v in state.variables.items() if k != '4x4/Dense1/bias'}
    with pytest.raises(checkpoint.CheckpointError, match='4x4/Dense1/bias'):
        checkpoint.model_from_state(_state_with(state, variables), where='net.pkl')


def test_wrong_shape_is_an_error():
    state = _d_state()
    variables = dict(state.variables, **{'4x4/Dense1/bias': np.zeros(2, np.float32)})
    with pytest.raises(checkpoint.CheckpointError, match=r'4x4/Dense1/bias.*shape'):
        checkpoint.model_from_state(_state_with(state, variables), where='net.pkl')


def test_unknown_build_function_names_the_file(tmp_path):
    state = _state_with(_d_state(), build_func_name='D_mystery')
    path = str(tmp_path / 'mystery.pkl')
    legacy_pickle.save((state, state, state), path)
    with pytest.raises(checkpoint.CheckpointError, match=r'mystery\.pkl.*D_mystery'):
        tf2.load_network(path)
    assert os.path.basename(path) in os.listdir(tmp_path)


def test_unknown_static_kwargs_are_ignored():
    state = _d_state()
    kwargs = dict(state.static_kwargs, totally_new_option='x')
    model = checkpoint.model_from_state(_state_with(state, static_kwargs=kwargs))
    assert model.static_kwargs['totally_new_option'] == 'x'
    assert checkpoint.state_from_model(model).static_kwargs == kwargs


def test_not_a_triple_is_an_error(tmp_path):
    path = str(tmp_path / 'one.pkl')
    legacy_pickle.save(_d_state(), path)
    with pytest.raises(checkpoint.CheckpointError, match=r'one\.pkl.*\(G, D, Gs\)'):
        checkpoint.networks_from_pickle(path)


def test_clone_and_moving_average():
    G = nets.G_style(name='G', **SMALL)
    Gs = checkpoint.clone(G, name='Gs')
    assert Gs.name == 'Gs' and Gs.synthesis.name == 'G_synthesis'
    g_vars, s_vars = G.official_variables(), Gs.official_variables()
    assert all(g_vars[k] is not s_vars[k] for k in g_vars)
    for k in g_vars:
        np.testing.assert_array_equal(g_vars[k].numpy(), s_vars[k].numpy())
    # move G, then average: trainables lerp with beta, non-trainables are copied
    old = {k: v.numpy() for k, v in s_vars.items()}
    rng = np.random.RandomState(0)
    for v in g_vars.values():
        v.assign(np.asarray(rng.randn(*v.shape), np.float32))
    tf.function(lambda b: checkpoint.setup_as_moving_average_of(Gs, G, b))(tf.constant(0.9))
    for k, v in s_vars.items():
        src = g_vars[k].numpy()
        expect = src + (old[k] - src) * 0.9 if v.trainable else src
        np.testing.assert_allclose(v.numpy(), expect, rtol=1e-5, atol=1e-6, err_msg=k)


_SMALL = dict(resolution=8, fmap_base=32, fmap_max=16)
_SMALL_G = dict(_SMALL, latent_size=8, dlatent_size=8, mapping_fmaps=8)


@pytest.mark.parametrize('build, kwargs', [
    ('tf2.networks_stylegan.G_style', _SMALL_G), ('tf2.networks_stylegan.D_basic', _SMALL),
    ('tf2.networks_stylegan2.G_main', _SMALL_G), ('tf2.networks_stylegan2.D_stylegan2', _SMALL),
    ('tf2.networks_stylegan2.D_stylegan', _SMALL)])
def test_network_constructors_reject_unknown_kwargs(build, kwargs):
    import dnnlib
    from tf2 import layers
    func = dnnlib.util.get_obj_by_name(build)
    func(**kwargs)                                      # every key known: builds
    with pytest.raises(layers.UnknownKwargsError, match="unknown keyword argument.*'fmap_bas'") as e:
        func(**kwargs, fmap_bas=64)                     # a misspelled key is not ignored
    assert e.value.unknown == ['fmap_bas'] and 'fmap_base' in str(e.value)


def test_official_pickles_load_without_ignored_kwargs(capsys):
    for name in ('sg1_r64.pkl', 'sg2_r64.pkl'):
        tf2.load_network(fixture_path(name))
    assert 'ignoring' not in capsys.readouterr().err


def test_pickle_with_a_key_the_port_does_not_know_loads_with_a_note(capsys):
    G, D, Gs = legacy_pickle.load(fixture_path('sg1_r64.pkl'))
    state = NetworkState(name=D.name, build_func_name=D.build_func_name,
                         static_kwargs=dict(D.static_kwargs, some_future_option=1),
                         variables=D.variables, components=D.components,
                         build_module_src=D.build_module_src, version=D.version)
    model = checkpoint.model_from_state(state, where='x.pkl')
    err = capsys.readouterr().err
    assert "x.pkl: network 'D' (D_basic): ignoring static_kwargs ['some_future_option']" in err
    assert model.static_kwargs['some_future_option'] == 1       # saved back unchanged
