"""Tests for cross_mixing.py: rows reconciled by resolution, --src-dlatents, official fixtures."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import (REPO_DIR, TOL, FakeGs, assert_user_error, expand_args, fixture_path, load_real_gs, rel,
                      seed_latents, use_fake_networks, use_loaded_networks)
from dnnlib import legacy_pickle
from editing import mixing

import cross_mixing


def test_help_runs_without_a_network():
    out = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'cross_mixing.py'), '--help'],
                         capture_output=True, text=True, timeout=120, cwd=REPO_DIR)
    assert out.returncode == 0
    for flag in ('--dst-network', '--src-network', '--src-dlatents', '--dst-seeds', '--src-seeds',
                 '--scheme', '--trunc', '--noise-mode', '--impl', '--outdir', '--out-npz'):
        assert flag in out.stdout


@pytest.mark.parametrize('rows_a, rows_b', [(10, 14), (18, 14), (14, 18)])
def test_cli_fake_cross_rows_by_resolution(tmp_path, monkeypatch, rows_a, rows_b):
    A, B = FakeGs(num_rows=rows_a, seed=1), FakeGs(num_rows=rows_b, seed=2)
    use_fake_networks(monkeypatch, {'a.pkl': A, 'b.pkl': B})
    npz = tmp_path / 'x.npz'
    rc = cross_mixing.main(['--dst-network', 'b.pkl', '--src-network', 'a.pkl', '--dst-seeds',
                            '1,2', '--src-seeds', '3', '--scheme', 'fine', '--outdir',
                            str(tmp_path / 'out'), '--out-npz', str(npz)])
    assert rc == 0
    src_a = A.components.mapping.run(seed_latents([3], 8), None)[0]      # [rows_a, D]
    dst_b = B.components.mapping.run(seed_latents([1, 2], 8), None)       # [2, rows_b, D]
    with np.load(npz) as f:
        mixed = f['mixed_dlatents']
        assert mixed.shape == (2, 1, rows_b, 6)
        assert f['rows'].tolist() == list(range(8, rows_b))
        assert f['src_dlatents'].shape == (1, rows_b, 6)
        np.testing.assert_allclose(f['src_dlatents_native'][0], src_a, atol=1e-6)
        for i in range(2):
            np.testing.assert_allclose(mixed[i, 0, :8], dst_b[i, :8], atol=1e-6)
            for r in range(8, rows_b):         # A's row r, or A's last row past A's end
                np.testing.assert_allclose(mixed[i, 0, r], src_a[min(r, rows_a - 1)], atol=1e-6)
            ref = B.components.synthesis.run(mixed[i, 0][None], randomize_noise=False)[0]
            np.testing.assert_allclose(f['images'][i, 0], ref, atol=1e-6)
    assert 'cross-mixing-fine.png' in os.listdir(tmp_path / 'out')


def test_cli_size_mismatch_names_both_and_writes_nothing(tmp_path, monkeypatch, capsys):
    use_fake_networks(monkeypatch, {'a.pkl': FakeGs(dlatent_size=5), 'b.pkl': FakeGs()})
    rc = cross_mixing.main(['--dst-network', 'b.pkl', '--src-network', 'a.pkl', '--dst-seeds', '1',
                            '--src-seeds', '2', '--outdir', str(tmp_path / 'out')])
    assert rc == 1
    err = capsys.readouterr().err
    assert 'dlatent sizes differ' in err and 'b.pkl has 6' in err and 'a.pkl has 5' in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('argv, words', [
    (['--src-network', 'a.pkl', '--src-dlatents', 'x.npz', '--src-seeds', '2'], 'not allowed'),
    (['--src-network', 'a.pkl'], '--src-seeds is required'),
    ([], 'one of the arguments'),
])
def test_cli_source_choice_errors(tmp_path, monkeypatch, capsys, argv, words):
    use_fake_networks(monkeypatch, {'a.pkl': FakeGs(), 'b.pkl': FakeGs()})
    with pytest.raises(SystemExit) as e:
        cross_mixing.main(['--dst-network', 'b.pkl', '--dst-seeds', '1',
                           '--outdir', str(tmp_path / 'out')] + argv)
    assert e.value.code == 2 and words in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_bad_src_dlatents_file(tmp_path, monkeypatch, capsys):
    use_fake_networks(monkeypatch, {'b.pkl': FakeGs()})
    bad = tmp_path / 'proj.npz'
    np.savez(bad, latents=np.zeros((2, 6), np.float32))   # neither 'dlatents' nor ADA's 'w'
    rc = cross_mixing.main(['--dst-network', 'b.pkl', '--src-dlatents', str(bad), '--dst-seeds',
                            '1', '--outdir', str(tmp_path / 'out')])
    assert rc == 1
    assert f'{bad}: no "dlatents" (or "w") array' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['proj.npz']


def test_cli_fake_src_dlatents_w_with_seeds(tmp_path, monkeypatch):
    B = FakeGs()
    use_fake_networks(monkeypatch, {'b.pkl': B})
    w = np.random.RandomState(3).randn(3, 6).astype(np.float32)
    src = tmp_path / 'proj.npz'
    np.savez(src, dlatents=w, seeds=np.array([70, 71, 72]))
    npz = tmp_path / 'x.npz'
    rc = cross_mixing.main(['--dst-network', 'b.pkl', '--src-dlatents', str(src), '--src-seeds',
                            '72,70', '--dst-seeds', '1', '--scheme', 'odd', '--outdir',
                            str(tmp_path / 'out'), '--out-npz', str(npz)])
    assert rc == 0
    with np.load(npz) as f:
        assert f['src_seeds'].tolist() == [72, 70]
        assert np.array_equal(f['mixed_dlatents'][0, 0, 1::2], np.stack([w[2]] * 5))
        assert np.array_equal(f['mixed_dlatents'][0, 1, 1::2], np.stack([w[0]] * 5))
    assert 'cross-mixing-odd-dst1-src72.png' in os.listdir(tmp_path / 'out')


def _latent16_pickle(path):
    """sg1_r64 with 16-d latents (the first 16 rows of the mapping's first layer): a network that
    loads and runs but whose latent size differs from the fixture's 32."""
    nets = legacy_pickle.load(fixture_path('sg1_r64.pkl'))
    for net in (nets[0], nets[2]):
        mapping = net.components['mapping']
        for state in (net, mapping):
            state.static_kwargs['latent_size'] = 16
        mapping.variables['Dense0/weight'] = mapping.variables['Dense0/weight'][:16].copy()
    legacy_pickle.save(nets, path)
    return path


SG1, SG2 = 'FIXTURE:sg1_r64.pkl', 'FIXTURE:sg2_r64.pkl'
CROSS_MIXING_ERRORS = [   # (id, arguments, words in the error line)
    ('destination-missing', ['--dst-network', 'PKL:missing', '--src-network', SG1], ['missing.pkl', 'not found']),
    ('destination-not-a-pickle', ['--dst-network', 'PKL:text', '--src-network', SG1], ['text.pkl', 'not a pickle']),
    ('source-hostile', ['--dst-network', SG1, '--src-network', 'PKL:hostile'], ['hostile.pkl', 'system']),
    ('destination-hostile-legacy', ['--dst-network', 'PKL:hostile', '--src-network', SG1, '--impl', 'legacy'],
     ['hostile.pkl', 'system']),
    ('source-discriminator-as-Gs', ['--dst-network', SG1, '--src-network', 'PKL:d_as_gs'], ['d_as_gs.pkl', 'D_basic']),
    ('source-two-networks-only', ['--dst-network', SG2, '--src-network', 'PKL:pair'], ['pair.pkl', '(G, D, Gs)']),
    ('latent-sizes-differ', ['--dst-network', SG1, '--src-network', 'TMP:latent16.pkl'],
     ['latent sizes differ', 'sg1_r64.pkl has 32', 'latent16.pkl has 16']),
    ('dlatent-file-size-differs', ['--dst-network', SG1, '--src-dlatents', 'TMP:w7.npz'],
     ['dlatent sizes differ', 'has 48', 'w7.npz']),
    ('dlatent-file-missing', ['--dst-network', SG1, '--src-dlatents', 'TMP:nope.npz'],
     ['nope.npz', 'not found']),
    ('dlatent-file-not-npz', ['--dst-network', SG1, '--src-dlatents', 'TMP:afile'],
     ['afile', 'not a readable .npz']),
    ('empty-destination-seeds', ['--dst-network', SG1, '--src-network', SG1, '--dst-seeds', ','], ['bad seed list']),
    ('empty-source-seeds', ['--dst-network', SG1, '--src-network', SG1, '--src-seeds', ''], ['bad seed list']),
    ('outdir-inside-a-file', ['--dst-network', SG1, '--src-network', SG1, '--outdir', 'TMP:afile/x'],
     ['afile', 'is a file']),
]


@pytest.mark.parametrize('case,args,words', CROSS_MIXING_ERRORS, ids=[c[0] for c in CROSS_MIXING_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, bad_pickles, case, args, words):
    (tmp_path / 'afile').write_text('a file where a folder should be')
    np.savez(tmp_path / 'w7.npz', dlatents=np.zeros([2, 7], np.float32))
    if case == 'latent-sizes-differ':
        _latent16_pickle(str(tmp_path / 'latent16.pkl'))
    defaults = {'--dst-seeds': '1', '--outdir': str(tmp_path / 'out')}
    if '--src-network' in args:
        defaults['--src-seeds'] = '2'
    args = expand_args(list(args) + [x for flag, value in defaults.items() if flag not in args for x in (flag, value)],
                       tmp_path, bad_pickles)
    assert_user_error('cross_mixing.py', args, words, untouched=[tmp_path, os.path.dirname(bad_pickles['text'])])
    assert not os.path.exists(os.path.join(os.path.dirname(bad_pickles['hostile']), 'HACKED'))


# ------------------------------------------------------------------------------------------------
# Official fixtures.

@pytest.mark.parametrize('impl', ['tf2', 'legacy'])
def test_cross_same_network_matches_official(tmp_path, monkeypatch, impl):
    load_real_gs('sg1_r64.pkl', impl)
    use_loaded_networks(monkeypatch, impl)
    ref = np.load(fixture_path('sg1_r64_ref.npz'))
    pkl = fixture_path('sg1_r64.pkl')
    npz = tmp_path / 'x.npz'
    rc = cross_mixing.main(['--dst-network', pkl, '--src-network', pkl, '--dst-seeds', '12',
                            '--src-seeds', '11', '--scheme', 'coarse', '--impl', impl,
                            '--outdir', str(tmp_path / 'out'), '--out-npz', str(npz)])
    assert rc == 0
    with np.load(npz) as f:
        assert rel(f['mixed_dlatents'][0, 0], ref['mix_dlatents'][0]) <= TOL
        assert rel(f['images'][0, 0], ref['mix_images'][0]) <= TOL


@pytest.mark.parametrize('w_only', [False, True])
def test_src_dlatents_file_matches_official(tmp_path, monkeypatch, w_only):
    """The official A dlatents from a file (W+ or W), B = seed 12: both fixture mixes."""
    load_real_gs('sg1_r64.pkl', 'tf2')
    use_loaded_networks(monkeypatch, 'tf2')
    ref = np.load(fixture_path('sg1_r64_ref.npz'))
    src = tmp_path / 'a.npz'
    dl = ref['mix_dlatents_A'][:, 0] if w_only else ref['mix_dlatents_A']
    np.savez(src, dlatents=dl)
    npz = tmp_path / 'x.npz'
    rc = cross_mixing.main(['--dst-network', fixture_path('sg1_r64.pkl'), '--src-dlatents',
                            str(src), '--dst-seeds', '12', '--scheme', 'coarse',
                            '--outdir', str(tmp_path / 'out'), '--out-npz', str(npz)])
    assert rc == 0
    with np.load(npz) as f:
        assert f['images'].shape == (1, 2, 3, 64, 64)
        assert rel(f['images'][0, 0], ref['mix_images'][0]) <= TOL
        assert f['src_seeds'].tolist() == [-1, -1]
    assert 'cross-mixing-coarse-dst12-src-item1.png' in os.listdir(tmp_path / 'out')


@pytest.mark.parametrize('impl', ['tf2', 'legacy'])
def test_cross_v1_source_into_v2_destination(tmp_path, monkeypatch, impl):
    """StyleGAN A (sg1) into StyleGAN2 B (sg2): each half of the mix is the official mapping's."""
    Gs_b = load_real_gs('sg2_r64.pkl', impl)
    load_real_gs('sg1_r64.pkl', impl)
    use_loaded_networks(monkeypatch, impl)
    ref1 = np.load(fixture_path('sg1_r64_ref.npz'))
    ref2 = np.load(fixture_path('sg2_r64_ref.npz'))
    npz = tmp_path / 'x.npz'
    rc = cross_mixing.main(['--dst-network', fixture_path('sg2_r64.pkl'), '--src-network',
                            fixture_path('sg1_r64.pkl'), '--dst-seeds', '12', '--src-seeds', '11',
                            '--scheme', 'coarse', '--trunc', '1', '--impl', impl,
                            '--outdir', str(tmp_path / 'out'), '--out-npz', str(npz)])
    assert rc == 0
    want = ref2['mix_dlatents_B'][0].copy()
    want[:4] = ref1['mix_dlatents_A'][0, :4]
    with np.load(npz) as f:
        assert rel(f['mixed_dlatents'][0, 0], want) <= TOL
        rendered = Gs_b.components.synthesis.run(want[None], randomize_noise=False)[0]
        assert rel(f['images'][0, 0], rendered) <= TOL
