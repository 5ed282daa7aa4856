"""dnnlib.legacy_pickle: reading the official fixtures, the exact round trip, and every refusal."""

import io
import json
import os
import pickle
import pickletools
import resource
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import REPO_DIR, fixture_path
from dnnlib import legacy_pickle as lp

FIXTURES = ['sg1_r64', 'sg2_r64']


# ------------------------------------------------------------------------------------------------
# Official fixtures.

@pytest.mark.parametrize('name', FIXTURES)
def test_fixture_loads_with_official_names_and_shapes(name):
    G, D, Gs = lp.load(fixture_path(f'{name}.pkl'))
    with open(fixture_path(f'{name}.Gs_vars.json')) as f:
        expected = json.load(f)
    got = Gs.all_variables()
    assert list(got) == list(expected)                       # names and order
    assert {k: list(v.shape) for k, v in got.items()} == expected
    assert [G.name, D.name, Gs.name] == ['G', 'D', 'Gs']
    assert list(Gs.components) == ['synthesis', 'mapping']
    assert Gs.components['synthesis'].name == 'G_synthesis'
    assert Gs.components['mapping'].name == 'G_mapping'
    assert Gs.static_kwargs['resolution'] == 64 and Gs.static_kwargs['latent_size'] == 32
    assert Gs.components['mapping'].static_kwargs['dlatent_broadcast'] == 10
    assert D.components == {}
    # 0-d variables come back as 0-d arrays, everything is float32.
    assert isinstance(G.variables['lod'], np.ndarray) and G.variables['lod'].shape == ()
    assert all(v.dtype == np.float32 for v in got.values())


def test_fixture_versions_and_build_functions():
    G, D, Gs = lp.load(fixture_path('sg1_r64.pkl'))
    assert (G.version, G.build_func_name, D.build_func_name) == (3, 'G_style', 'D_basic')
    assert Gs.components['synthesis'].build_func_name == 'G_synthesis'
    G2, D2, Gs2 = lp.load(fixture_path('sg2_r64.pkl'))
    assert (G2.version, G2.build_func_name, D2.build_func_name) == (4, 'G_main', 'D_stylegan2')
    assert Gs2.components['synthesis'].variables['4x4/Conv/noise_strength'].shape == ()


def test_fixture_values_match_reference_npz():
    _G, _D, Gs = lp.load(fixture_path('sg1_r64.pkl'))
    ref = np.load(fixture_path('sg1_r64_ref.npz'))
    np.testing.assert_array_equal(Gs.variables['dlatent_avg'], ref['dlatent_avg'])
    _G, _D, Gs2 = lp.load(fixture_path('sg2_r64.pkl'))
    ref2 = np.load(fixture_path('sg2_r64_ref.npz'))
    np.testing.assert_array_equal(Gs2.components['synthesis'].variables['noise0'], ref2['noise_var_noise0'])


class _TrustedNetwork:
    def __setstate__(self, state):
        self.state = state


class _TrustedUnpickler(pickle.Unpickler):
    """pickle itself with real numpy, for files we trust: the reference the reader must match."""

    def find_class(self, module, name):
        if (module, name) == ('dnnlib.tflib.network', 'Network'):
            return _TrustedNetwork
        return super().find_class(module.replace('numpy.core', 'numpy._core'), name)


def _assert_same_as_reference(net, ref):
    state = ref.state
    assert (net.version, net.name, net.build_func_name, net.build_module_src) == (
        state['version'], state['name'], state['build_func_name'], state['build_module_src'])
    assert net.static_kwargs == state['static_kwargs']
    assert [(k, type(v)) for k, v in net.static_kwargs.items()] == \
        [(k, type(v)) for k, v in state['static_kwargs'].items()]
    assert list(net.components) == list(state['components'])
    for key, comp in net.components.items():
        _assert_same_as_reference(comp, state['components'][key])
    assert list(net.variables) == [name for name, _value in state['variables']]
    for name, value in state['variables']:
        ours, theirs = net.variables[name], np.asarray(value)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and ours.strides == theirs.strides
        assert ours.tobytes() == theirs.tobytes() and ours.flags.writeable


@pytest.mark.parametrize('name', FIXTURES)
def test_fixture_matches_plain_unpickler_exactly(name):
    # The interpreter must give what pickle + numpy give on a trusted file: same values, dtypes,
    # shapes, kwargs (types too) and order everywhere.
    with open(fixture_path(f'{name}.pkl'), 'rb') as f:
        reference = _TrustedUnpickler(f, encoding='latin1').load()
    ours = lp.load(fixture_path(f'{name}.pkl'))
    assert len(ours) == len(reference) == 3
    for net, ref in zip(ours, reference):
        _assert_same_as_reference(net, ref)


def test_load_from_file_object():
    with open(fixture_path('sg1_r64.pkl'), 'rb') as f:
        G, D, Gs = lp.load(f)
    assert Gs.name == 'Gs'


# ------------------------------------------------------------------------------------------------
# Writing.

@pytest.mark.parametrize('name', FIXTURES)
def test_round_trip_is_exact(name, tmp_path):
    nets = lp.load(fixture_path(f'{name}.pkl'))
    out = tmp_path / 'copy.pkl'
    lp.save(nets, out)
    again = lp.load(out)
    assert isinstance(again, tuple) and len(again) == 3
    for a, b in zip(nets, again):
        assert a == b
        assert list(a.all_variables()) == list(b.all_variables())
        for k, v in a.all_variables().items():
            w = b.all_variables()[k]
            assert v.dtype == w.dtype and v.shape == w.shape and np.array_equal(v, w)
        assert a.static_kwargs == b.static_kwargs and a.build_module_src == b.build_module_src
    assert os.listdir(tmp_path) == ['copy.pkl']            # no temporary file left behind


def test_written_file_has_official_structure(tmp_path):
    nets = lp.load(fixture_path('sg1_r64.pkl'))
    data = lp.dumps(nets)
    assert data[:2] == b'\x80\x04'                         # protocol 4
    globals_ = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            globals_.add((module, name))
            if module == 'dnnlib.tflib.network':
                return type('Network', (), {'__setstate__': lambda self, st: None})
            return super().find_class(module.replace('numpy.core', 'numpy._core'), name)

    Recorder(io.BytesIO(data)).load()
    assert globals_ == {('dnnlib.tflib.network', 'Network'), ('numpy.core.multiarray', '_reconstruct'),
                        ('numpy', 'ndarray'), ('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar')}

    # Read it back with a plain unpickler that records the raw state: keys in official order,
    # variables as (name, value) pairs, 0-d values as numpy scalars.
    G, _D, _Gs = _TrustedUnpickler(io.BytesIO(data)).load()
    assert list(G.state) == list(lp.STATE_KEYS)
    assert isinstance(G.state['variables'], list)
    assert G.state['variables'][0][0] == 'lod' and isinstance(G.state['variables'][0][1], np.float32)
    assert list(G.state['components']) == ['synthesis', 'mapping']


def test_new_network_state_gets_placeholder_source(tmp_path):
    net = lp.NetworkState('D', 'D_basic', {'resolution': 8},
                          {'lod': np.float32(0), 'w': np.ones((2, 3), np.float32)}, version=3)
    path = tmp_path / 'd.pkl'
    lp.save(net, path)
    back = lp.load(path)
    assert back == net and back.build_module_src == lp.PLACEHOLDER_MODULE_SRC
    assert back.variables['lod'].shape == ()


# ------------------------------------------------------------------------------------------------
# Other protocols, numpy spellings and state versions.

def _official_like_pickle(protocol, version=3, with_components=True):
    """Pickles a stand-in of the official Network class with the real pickle module."""
    fake_mod = types.ModuleType('dnnlib.tflib.network')

    class Network:
        def __init__(self, state):
            self._state = state

        def __getstate__(self):
            return self._state

    Network.__module__ = 'dnnlib.tflib.network'
    Network.__qualname__ = 'Network'
    fake_mod.Network = Network
    saved = {k: sys.modules.get(k) for k in ('dnnlib.tflib', 'dnnlib.tflib.network')}
    sys.modules['dnnlib.tflib'] = types.ModuleType('dnnlib.tflib')
    sys.modules['dnnlib.tflib.network'] = fake_mod
    try:
        state = {'version': version, 'name': 'D', 'static_kwargs': {'resolution': 8, 'fmap': [1, 2]},
                 'build_module_src': 'raise SystemExit("never run")', 'build_func_name': 'D_basic',
                 'variables': [('lod', np.float32(1.5)), ('x/weight', np.arange(6, dtype=np.float32).reshape(2, 3))]}
        if with_components:
            state['components'] = {}
        return pickle.dumps(Network(state), protocol=protocol)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


@pytest.mark.parametrize('protocol', [2, 3, 4, 5])
def test_protocols_2_to_5_and_numpy_core_spelling(protocol):
    data = _official_like_pickle(protocol)
    net = lp.load(io.BytesIO(data))
    assert net.variables['lod'].shape == () and float(net.variables['lod']) == 1.5
    np.testing.assert_array_equal(net.variables['x/weight'], np.arange(6).reshape(2, 3))
    assert net.static_kwargs == {'resolution': 8, 'fmap': [1, 2]}


@pytest.mark.parametrize('version', [2, 5])
def test_state_versions_2_and_5(version):
    net = lp.load(io.BytesIO(_official_like_pickle(4, version=version, with_components=False)))
    assert net.version == version and net.components == {}


def test_unsupported_version_refused():
    with pytest.raises(lp.PickleFormatError, match='unsupported state version 9'):
        lp.load(io.BytesIO(_official_like_pickle(4, version=9)))


# ------------------------------------------------------------------------------------------------
# Refusals.

class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize('func,global_name', [
    (os.system, 'system'), (eval, 'builtins.eval'), (subprocess.Popen, 'subprocess.Popen')])
def test_malicious_global_is_refused_and_never_runs(tmp_path, func, global_name):
    marker = tmp_path / 'pwned'
    cmd = f'touch {marker}'
    args = {os.system: (cmd,), eval: (f'open({str(marker)!r}, "w")',),
            subprocess.Popen: (['touch', str(marker)],)}[func]
    path = _write(tmp_path, 'evil.pkl', pickle.dumps((_Payload(func, *args),), protocol=4))
    with pytest.raises(lp.PickleFormatError) as e:
        lp.load(path)
    assert global_name in str(e.value) and 'evil.pkl' in str(e.value)
    assert not marker.exists()


def test_other_class_is_refused(tmp_path):
    import collections
    path = _write(tmp_path, 'od.pkl', pickle.dumps(collections.OrderedDict(a=1), protocol=4))
    with pytest.raises(lp.PickleFormatError, match='collections.OrderedDict'):
        lp.load(path)


def test_payload_hidden_inside_network_state_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    good = lp.dumps(lp.NetworkState('D', 'D_basic', {}, {'a': np.zeros(2, np.float32)}, version=3))
    evil = pickle.dumps(_Payload(os.system, f'touch {marker}'), protocol=4)
    # Splice: a tuple of (network, payload).
    data = b'\x80\x04' + good[2:-1] + evil[2:-1] + b'\x86.'
    with pytest.raises(lp.PickleFormatError, match='posix.system|os.system|nt.system'):
        lp.load(io.BytesIO(data))
    assert not marker.exists()


@pytest.mark.parametrize('cut', [10, 1000, -5, -1])
def test_truncated_file(tmp_path, cut):
    data = open(fixture_path('sg1_r64.pkl'), 'rb').read()
    path = _write(tmp_path, 'cut.pkl', data[:cut])
    with pytest.raises(lp.PickleFormatError, match=r'cut\.pkl: truncated'):
        lp.load(path)


@pytest.mark.parametrize('content,reason', [
    (b'', 'file is empty'), (b'\x89PNG\r\n\x1a\n' + b'\0' * 64, 'not a pickle'),
    (b'hello world, not a pickle', 'not a pickle'), (pickle.dumps([1, 2], protocol=0), 'not a pickle')])
def test_not_a_pickle(tmp_path, content, reason):
    path = _write(tmp_path, 'bad.pkl', content)
    with pytest.raises(lp.PickleFormatError, match=f'bad.pkl: {reason}'):
        lp.load(path)


def test_pickle_without_networks(tmp_path):
    path = _write(tmp_path, 'plain.pkl', pickle.dumps({'a': [1, 2, 3]}, protocol=4))
    with pytest.raises(lp.PickleFormatError, match='plain.pkl: the pickle holds no networks'):
        lp.load(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(lp.PickleFormatError, match='nope.pkl: cannot read file'):
        lp.load(str(tmp_path / 'nope.pkl'))
    assert issubclass(lp.PickleFormatError, ValueError)


def _max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _array_pickle(shape, raw, reconstruct_shape=(0,), module='numpy.core.multiarray'):
    """Hand-made official-style array pickle: _reconstruct + BUILD with a declared shape."""
    def s(text):
        b = text.encode()
        return b'\x8c' + bytes([len(b)]) + b
    dtype = s('numpy') + s('dtype') + b'\x93' + s('f4') + b'\x89\x88\x87R' + \
        b'(K\x03' + s('<') + b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t' + b'b'
    shape_bytes = b'(' + b''.join(b'J' + int(d).to_bytes(4, 'little') for d in shape) + b't'
    rshape = b'(' + b''.join(b'J' + int(d).to_bytes(4, 'little') for d in reconstruct_shape) + b't'
    arr = (s(module) + s('_reconstruct') + b'\x93' + s('numpy') + s('ndarray') + b'\x93'
           + rshape + b'C\x01b' + b'\x87R' + b'(K\x01' + shape_bytes + dtype + b'\x89'
           + b'\x8e' + len(raw).to_bytes(8, 'little') + raw + b'tb')
    return b'\x80\x04' + arr + b'.'


def test_enormous_declared_array_does_not_exhaust_memory(tmp_path):
    before = _max_rss_mb()
    # 1) a shape of 200000 x 200000 floats (160 GB) with 16 bytes of data.
    with pytest.raises(lp.PickleFormatError):
        lp.load(io.BytesIO(_array_pickle((200000, 200000), b'\0' * 16)))
    # 2) a reconstruction that asks for the big allocation up front.
    with pytest.raises(lp.PickleFormatError, match='reconstruction'):
        lp.load(io.BytesIO(_array_pickle((2,), b'\0' * 8, reconstruct_shape=(200000, 200000))))
    # 3) a bytes opcode that declares 1 TB but the file ends.
    data = b'\x80\x04\x8e' + (1 << 40).to_bytes(8, 'little') + b'\0' * 100
    path = _write(tmp_path, 'huge.pkl', data)
    with pytest.raises(lp.PickleFormatError, match='huge.pkl: truncated'):
        lp.load(path)
    assert _max_rss_mb() - before < 200


def test_small_hand_made_array_pickle_is_valid():
    # The same hand-made encoding with a consistent size loads (so the test above is meaningful).
    raw = np.arange(4, dtype=np.float32).tobytes()
    arr = pickle.loads(_array_pickle((2, 2), raw, module='numpy._core.multiarray'))
    np.testing.assert_array_equal(arr, np.arange(4).reshape(2, 2))


# ------------------------------------------------------------------------------------------------
# Command line.

def test_info_command_on_both_fixtures():
    paths = [fixture_path(f'{n}.pkl') for n in FIXTURES]
    out = subprocess.run([sys.executable, '-m', 'dnnlib.legacy_pickle', 'info', *paths],
                         cwd=REPO_DIR, capture_output=True, text=True, check=True).stdout
    assert "Network 'Gs': build_func_name='G_style', state version 3" in out
    assert "Network 'D': build_func_name='D_stylegan2', state version 4" in out
    assert 'G_synthesis/4x4/Const/const' in out and 'G_mapping/Dense0/weight' in out
    assert "'latent_size': 32" in out and 'components' in out
    _G, D, _Gs = lp.load(paths[0])
    total = sum(v.size for v in D.variables.values())
    assert f'{total:,}' in out


def test_info_command_reports_bad_file(tmp_path):
    path = _write(tmp_path, 'junk.pkl', b'junk')
    r = subprocess.run([sys.executable, '-m', 'dnnlib.legacy_pickle', 'info', path],
                       cwd=REPO_DIR, capture_output=True, text=True)
    assert r.returncode == 1 and 'junk.pkl' in r.stderr and 'not a pickle' in r.stderr
