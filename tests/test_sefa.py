"""SeFa (editing/sefa.py, sefa.py): factorization against independent NumPy linear algebra on the
official fixtures, editing semantics, and the CLI's outputs and one-line errors."""
import os

import numpy as np
import pytest

from conftest import assert_user_error, expand_args, fixture_path, run_script, tree_state
from dnnlib import legacy_pickle
from editing import sefa
from editing import mixing

import sefa as sefa_script

D = 48                     # dlatent size of both fixtures
L = 10                     # rows at 64 px


# Networks from the fixtures, loaded once per process (loading takes seconds); the walk and local
# editing tests import these too.
_LOADED = {}


def load_real_gs(pkl_name, impl='tf2'):
    """Gs of a fixture pickle through ``impl`` ('tf2' or 'legacy'), cached."""
    if (pkl_name, impl) not in _LOADED:
        from editing.impl import load_network
        _LOADED[pkl_name, impl] = load_network(fixture_path(pkl_name), impl)[2]
    return _LOADED[pkl_name, impl]


def use_loaded_networks(monkeypatch, impl='tf2'):
    """Makes the editing scripts (through ``mixing.load_gs``) reuse ``load_real_gs``'s networks."""
    def load(path, impl_arg='tf2'):
        assert impl_arg == impl
        return load_real_gs(os.path.basename(path), impl)
    monkeypatch.setattr(mixing, 'load_gs', load)


def stored_weights(prefix):
    """Synthesis variables read from the pickle as plain data (not through either network)."""
    _G, _D, Gs = legacy_pickle.load(fixture_path(f'{prefix}_r64.pkl'))
    return Gs.components['synthesis'].variables


def independent_A(prefix, names):
    """Runtime [out, D] matrices stacked: stored [D, out] / sqrt(D) (equalized lr, gain 1), transposed."""
    v = stored_weights(prefix)
    return np.concatenate([(np.asarray(v[n], np.float64) / np.sqrt(D)).T for n in names])


# genforce's layers written out by hand: v1 one StyleMod per row; v2 the conv of each row and the
# final ToRGB for the last row (spec §1.2).
GF_NAMES = {
    'sg1': ['4x4/Const/StyleMod/weight', '4x4/Conv/StyleMod/weight'] + [
        f'{2 ** r}x{2 ** r}/{c}/StyleMod/weight' for r in range(3, 7) for c in ('Conv0_up', 'Conv1')],
    'sg2': ['4x4/Conv/mod_weight'] + [
        f'{2 ** r}x{2 ** r}/{c}/mod_weight' for r in range(3, 7) for c in ('Conv0_up', 'Conv1')] + [
        '64x64/ToRGB/mod_weight'],
}
# rosinality: conv1, to_rgb1 (the 4x4 ToRGB) and every conv; no other ToRGB.
ROS_NAMES_SG2 = ['4x4/Conv/mod_weight', '4x4/ToRGB/mod_weight'] + [
    f'{2 ** r}x{2 ** r}/{c}/mod_weight' for r in range(3, 7) for c in ('Conv0_up', 'Conv1')]


def assert_same_directions(got, want, count):
    """Rows of `got` and `want` agree up to sign (|cos| >= 0.999999) for the first `count`."""
    cos = np.abs(np.sum(got[:count] * want[:count], axis=1)) / (
        np.linalg.norm(got[:count], axis=1) * np.linalg.norm(want[:count], axis=1))
    assert np.all(cos >= 0.999999), cos


def well_separated(eig, count, gap=1e-6):
    """Directions are only defined up to rotation inside a repeated eigenvalue: check the gaps."""
    rel = np.diff(eig[:count + 1])[:count] / eig[0]
    assert np.all(np.abs(rel) > gap), rel


@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_gf_equals_independent_eigh(prefix):
    Gs = load_real_gs(f'{prefix}_r64.pkl', 'tf2')
    res = sefa.factorize(Gs, 'all', 'gf')
    A = independent_A(prefix, GF_NAMES[prefix])
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    eig, vec = np.linalg.eigh(A.T @ A)
    eig, vec = eig[::-1], vec[:, ::-1].T                      # descending, rows
    well_separated(eig, 10)
    assert res['directions'].shape == (D, D) and res['eigenvalues'].shape == (D,)
    assert_same_directions(res['directions'].astype(np.float64), vec, 10)
    np.testing.assert_allclose(res['eigenvalues'], eig, rtol=1e-9, atol=1e-9 * eig[0])
    assert res['layers'].tolist() == list(range(L)) and res['normalize']
    assert sorted(n.split('/', 1)[1] for n in res['weights']) == sorted(GF_NAMES[prefix])


@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_eigenvalues_descending_and_energy_order(prefix):
    Gs = load_real_gs(f'{prefix}_r64.pkl', 'tf2')
    res = sefa.factorize(Gs, 'coarse', 'gf')
    eig = res['eigenvalues']
    assert np.all(np.diff(eig) <= 0) and eig[-1] >= 0
    A, _ = sefa.affine_matrix(Gs, res['layers'], 'gf')
    energy = np.sum((sefa.normalize_rows(A) @ res['directions'].astype(np.float64).T) ** 2, axis=0)
    assert np.all(np.diff(energy) <= 1e-6 * energy[0])         # ||A n_1||^2 >= ||A n_2||^2 >= ...
    np.testing.assert_allclose(energy, eig, rtol=1e-5, atol=1e-6 * eig[0])
    # Unit rows, and the sign convention: the largest-magnitude component is positive.
    d = res['directions']
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1, atol=1e-6)
    assert np.all(d[np.arange(D), np.argmax(np.abs(d), axis=1)] > 0)


def test_ros_equals_svd_of_A():
    Gs = load_real_gs('sg2_r64.pkl', 'tf2')
    res = sefa.factorize(Gs, 'all', 'ros')
    assert not res['normalize']
    assert sorted(n.split('/', 1)[1] for n in res['weights']) == sorted(ROS_NAMES_SG2)
    A = independent_A('sg2', ROS_NAMES_SG2)                     # no normalisation
    _u, s, vt = np.linalg.svd(A)
    well_separated(s ** 2, 10)
    assert_same_directions(res['directions'].astype(np.float64), vt, 10)
    np.testing.assert_allclose(res['eigenvalues'][:s.size], s ** 2, rtol=1e-9)


def test_runtime_scale_matters_only_as_a_constant():
    # Stored and runtime weights differ by 1/sqrt(D) for every style affine: same directions,
    # eigenvalues scaled by 1/D (spec §1.3). Checked on the raw (ros) factorization.
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    res = sefa.factorize(Gs, 'all', 'ros')
    stored = np.concatenate([np.asarray(stored_weights('sg1')[n], np.float64).T
                             for n in GF_NAMES['sg1']])
    _u, s, vt = np.linalg.svd(stored)
    assert_same_directions(res['directions'].astype(np.float64), vt, 5)
    np.testing.assert_allclose(res['eigenvalues'][:5], s[:5] ** 2 / D, rtol=1e-9)


def test_legacy_impl_gives_the_same_factorization():
    a = sefa.factorize(load_real_gs('sg2_r64.pkl', 'tf2'), 'middle', 'gf')
    b = sefa.factorize(load_real_gs('sg2_r64.pkl', 'legacy'), 'middle', 'gf')
    assert a['fingerprint'] == b['fingerprint'] and a['weights'] == b['weights']
    np.testing.assert_array_equal(a['directions'], b['directions'])


@pytest.mark.slow          # the legacy graph renders (about 30 s here); the factorization test above is the short version
def test_legacy_impl_renders_the_same_edits():
    tf2_gs, legacy_gs = load_real_gs('sg2_r64.pkl', 'tf2'), load_real_gs('sg2_r64.pkl', 'legacy')
    directions = sefa.factorize(tf2_gs, 'middle', 'gf')
    images = []
    for Gs in (tf2_gs, legacy_gs):
        w = mixing.map_seeds(Gs, [4])
        edits = sefa.sefa_edits(Gs, w, directions['directions'], [2], [6.0], directions['layers'],
                                0.5, None)
        images.append(mixing.synthesize(Gs, edits[:, 0, 0]))
    assert np.abs(images[0] - images[1]).max() <= 1e-4 * np.abs(images[1]).max()


@pytest.mark.parametrize('text, rows', [
    ('all', list(range(10))), ('coarse', [0, 1, 2, 3]), ('fine', [8, 9]), ('0-3', [0, 1, 2, 3]),
    ('0,2,5', [0, 2, 5]), ('8-', [8, 9]), ('coarse,fine', [0, 1, 2, 3, 8, 9]), ('odd', [1, 3, 5, 7, 9]),
    ('gf-low', [0, 1]), ('gf-high', [6, 7, 8, 9])])
def test_parse_layers(text, rows):
    notes = []
    assert sefa.parse_layers(text, 10, log=notes.append).tolist() == rows
    assert bool(notes) == text.startswith('gf-')         # genforce's sets are for 14-row networks


@pytest.mark.parametrize('text, words', [('12', 'out of range'), ('0-12', 'out of range'),
                                         ('none', 'selects no row'), ('wide', 'unknown scheme')])
def test_parse_layers_errors(text, words):
    with pytest.raises(ValueError, match=words):
        sefa.parse_layers(text, 10, log=None)


def test_edit_moves_only_the_chosen_rows():
    rng = np.random.RandomState(0)
    w = rng.randn(2, L, D).astype(np.float32)
    n = rng.randn(D).astype(np.float32)
    out = sefa.edit_dlatents(w, n, [-2.0, 0.0, 3.0], [0, 1, 2, 3])
    assert out.shape == (2, 3, L, D)
    np.testing.assert_array_equal(out[:, :, 4:], np.repeat(w[:, None, 4:], 3, axis=1))
    np.testing.assert_array_equal(out[:, 1], w)                          # d = 0: unchanged
    np.testing.assert_allclose(out[:, 2, :4] - w[:, :4], np.broadcast_to(3 * n, (2, 4, D)), atol=1e-5)


def test_edit_order_truncation():
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    d = sefa.factorize(Gs, 'all', 'gf')['directions']
    w = mixing.map_seeds(Gs, [3])
    avg = Gs.get_var('dlatent_avg')
    gf = sefa.sefa_edits(Gs, w, d, [1], [2.0], range(L), 0.7, 8)[0, 0, 0]
    ros = sefa.sefa_edits(Gs, w, d, [1], [2.0], range(L), 0.7, 8, edit_before_truncation=True)[0, 0, 0]
    base = mixing.truncate(w, avg, 0.7, 8)[0]
    np.testing.assert_allclose(gf - base, np.broadcast_to(2 * d[1], (L, D)), atol=1e-5)
    step = np.where(np.arange(L)[:, None] < 8, 0.7, 1.0) * 2 * d[1]       # psi shrinks the step
    np.testing.assert_allclose(ros - base, step, atol=1e-5)


@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_degree_zero_reproduces_the_unedited_image(prefix):
    Gs = load_real_gs(f'{prefix}_r64.pkl', 'tf2')
    d = sefa.factorize(Gs, 'middle', 'gf')
    w = mixing.map_seeds(Gs, [5, 6])
    psi, cutoff = sefa.default_truncation(Gs)
    edits = sefa.sefa_edits(Gs, w, d['directions'], [0, 3], [-4.0, 0.0, 4.0], d['layers'], psi, cutoff)
    base = mixing.truncate(w, Gs.get_var('dlatent_avg'), psi, cutoff)
    for k in range(2):
        np.testing.assert_array_equal(edits[:, k, 1], base)
    images = mixing.synthesize(Gs, edits[:, :, 1].reshape(-1, L, D), minibatch_size=1)
    ref = mixing.synthesize(Gs, base, minibatch_size=1)
    np.testing.assert_array_equal(images.reshape(2, 2, *ref.shape[1:])[:, 0], ref)
    np.testing.assert_array_equal(images.reshape(2, 2, *ref.shape[1:])[:, 1], ref)
    moved = mixing.synthesize(Gs, edits[:, 0, 2], minibatch_size=1)
    assert np.abs(moved - ref).max() > 1e-2                             # an edit changes the image


def test_cli_out_npz_only(tmp_path):
    out = tmp_path / 'dirs' / 'd.npz'
    proc = run_script('sefa.py', '--network', fixture_path('sg2_r64.pkl'), '--layers', 'all',
                      '--out-npz', out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'top eigenvalues' in proc.stdout
    with np.load(out) as f:
        assert f['directions'].shape == (D, D) and f['directions'].dtype == np.float32
        assert f['eigenvalues'].shape == (D,) and np.all(np.diff(f['eigenvalues']) <= 0)
        assert f['layers'].tolist() == list(range(L))
        assert str(f['method']) == 'gf' and bool(f['normalize'])
        assert str(f['source_pkl']).endswith('sg2_r64.pkl') and len(str(f['weights_sha256'])) == 64
    assert os.listdir(out.parent) == ['d.npz']                          # no temporary left


def test_cli_grid_and_dlatents_file(tmp_path, monkeypatch):
    use_loaded_networks(monkeypatch, 'tf2')
    net = fixture_path('sg1_r64.pkl')
    rc = sefa_script.main(['--network', net, '--layers', 'coarse', '--seeds', '1,2', '--indices',
                           '0,5,12', '--degrees', '-10,-5,0,5,10', '--outdir', str(tmp_path / 'a'),
                           '--out-npz', str(tmp_path / 'a' / 'd.npz')])
    assert rc == 0
    from PIL import Image
    img = Image.open(tmp_path / 'a' / 'sefa-grid.png')
    assert img.size[0] == 96 + 5 * 64 and img.size[1] > 6 * 64
    with np.load(tmp_path / 'a' / 'sefa-edits.npz') as f:
        edits = f['dlatents']
        assert edits.shape == (2 * 3 * 5, L, D) and f['rows'].tolist() == [0, 1, 2, 3]
        # Edit the saved (edited) dlatents again from a file with ADA-PyTorch's key w: d = 0
        # leaves them as they are.
        np.savez(tmp_path / 'w.npz', w=edits[:2])
    rc = sefa_script.main(['--network', net, '--dlatents', str(tmp_path / 'w.npz'), '--indices', '1',
                           '--degrees', '0,2', '--outdir', str(tmp_path / 'b')])
    assert rc == 0
    with np.load(tmp_path / 'b' / 'sefa-edits.npz') as f:
        np.testing.assert_array_equal(f['dlatents'][[0, 2]], edits[:2])
        assert f['distance'].tolist() == [0, 2, 0, 2]


SG2 = 'FIXTURE:sg2_r64.pkl'
SEFA_ERRORS = [   # (id, arguments, words in the error line); each runs the script in a subprocess
    ('index-out-of-range', ['--network', SG2, '--seeds', '1', '--indices', '0,48', '--outdir', 'TMP:out'],
     ['--indices', 'index 48 out of range', '48 directions']),
    ('dlatent-size-mismatch', ['--network', SG2, '--dlatents', 'TMP:small.npz', '--outdir', 'TMP:out'],
     ['small.npz', '--dlatents', 'dlatent size mismatch', 'D=8', 'D=48']),
    ('layers-out-of-range', ['--network', SG2, '--layers', '3-12', '--out-npz', 'TMP:d.npz'],
     ['--layers 3-12', 'out of range', '0-9']),
    ('missing-network', ['--network', 'TMP:nope.pkl', '--out-npz', 'TMP:d.npz'],
     ['nope.pkl', 'network pickle not found']),
    ('nothing-to-write', ['--network', SG2], ['--out-npz', '--outdir']),
    ('bad-degrees', ['--network', SG2, '--seeds', '1', '--degrees', '1,x', '--outdir', 'TMP:out'],
     ['--degrees']),
]


@pytest.mark.parametrize('case,args,words', SEFA_ERRORS, ids=[c[0] for c in SEFA_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, case, args, words):
    np.savez(tmp_path / 'small.npz', dlatents=np.zeros([1, 8], np.float32))
    assert_user_error('sefa.py', expand_args(args, tmp_path), words, untouched=[tmp_path])


def test_cli_errors_in_process(tmp_path, monkeypatch, capsys):
    use_loaded_networks(monkeypatch, 'tf2')
    net = fixture_path('sg2_r64.pkl')
    np.savez(tmp_path / 'rows.npz', dlatents=np.zeros([1, 14, D], np.float32))
    cases = [(['--dlatents', str(tmp_path / 'rows.npz'), '--outdir', str(tmp_path / 'o')],
              'dlatent rows mismatch: the file has L=14'),
             (['--seeds', '1', '--dlatents', str(tmp_path / 'rows.npz'), '--outdir', str(tmp_path / 'o')],
              'exactly one of --seeds and --dlatents'),
             (['--out-npz', str(tmp_path)], 'is a folder')]
    before = tree_state(tmp_path)
    for argv, words in cases:
        assert sefa_script.main(['--network', net] + argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith('sefa.py: error: ') and words in err[0], err
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize('layout', ['gf', 'ros'])
def test_edit_grid_layouts(layout):
    from editing.figures import MARK_COLOR
    h = 32
    images = np.random.RandomState(0).uniform(-1, 1, [2, 1, 3, 3, h, h]).astype(np.float32)
    fig = np.asarray(sefa.edit_grid(images, ['seed 1', 'seed 2'], [4], None, [5.0, 0.0, -5.0],
                                    'corner', layout))
    rows, cols = (2, 3) if layout == 'gf' else (3, 2)      # ros: +d / original / -d rows
    label_w = 96
    top = fig.shape[0] - rows * h
    assert fig.shape[1] == label_w + cols * h and top > 0
    # The unedited images are framed: column 1 (gf) or row 1 (ros).
    y, x = (top + h, label_w + h) if layout == 'gf' else (top + h, label_w + 5)
    assert tuple(fig[y, x]) == MARK_COLOR


def test_revised_stylegan2_torgb_names():
    # G_synthesis_stylegan_revised (configs b-d) names its ToRGBs ToRGB_lod<k>: gf takes the final
    # one (lod 0) for the last row, ros the 4x4 one (lod 4 at 64 px).
    import types
    names = ['4x4/Conv', '8x8/Conv0_up', '8x8/Conv1', '16x16/Conv0_up', '16x16/Conv1',
             '32x32/Conv0_up', '32x32/Conv1', '64x64/Conv0_up', '64x64/Conv1']
    var_names = [f'G_synthesis/{n}/mod_weight' for n in names] + [
        f'G_synthesis/ToRGB_lod{k}/mod_weight' for k in range(5)]
    Gs = types.SimpleNamespace(
        build_func_name='G_main', vars={n: None for n in var_names},
        components=types.SimpleNamespace(synthesis=types.SimpleNamespace(input_shape=[None, L, D])))
    gf = dict((n, r) for r, n in sefa.style_affines(Gs, 'gf'))
    assert gf['G_synthesis/ToRGB_lod0/mod_weight'] == L - 1 and len(gf) == L
    assert sorted(gf.values()) == list(range(L))                  # one affine per row
    ros = dict((n, r) for r, n in sefa.style_affines(Gs, 'ros'))
    assert ros['G_synthesis/ToRGB_lod4/mod_weight'] == 1 and len(ros) == 10
