"""Tests for style_mixing.py: the CLI on a numpy fake network and on the official fixtures."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import (REPO_DIR, TOL, FakeGs, assert_user_error, expand_args, fixture_path, load_real_gs, rel,
                      seed_latents, use_fake_networks)
from editing import mixing

import style_mixing


def test_help_runs_without_a_network():
    out = subprocess.run([sys.executable, os.path.join(REPO_DIR, 'style_mixing.py'), '--help'],
                         capture_output=True, text=True, timeout=120, cwd=REPO_DIR)
    assert out.returncode == 0
    for flag in ('--network', '--dst-seeds', '--src-seeds', '--scheme', '--trunc',
                 '--trunc-cutoff', '--noise-mode', '--impl', '--outdir', '--out-npz'):
        assert flag in out.stdout


def test_cli_fake_network_outputs(tmp_path, monkeypatch, capsys):
    Gs = FakeGs()
    use_fake_networks(monkeypatch, {'net.pkl': Gs})
    outdir, npz = tmp_path / 'out', tmp_path / 'arrays' / 'mix.npz'
    rc = style_mixing.main(['--network', 'net.pkl', '--dst-seeds', '1,2', '--src-seeds', '3-5',
                            '--scheme', 'coarse;rows:8,10-12', '--outdir', str(outdir),
                            '--out-npz', str(npz)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert '10-12 are past the last row (9)' in printed      # the cut is reported
    files = sorted(os.listdir(outdir))
    assert 'style-mixing-coarse.png' in files and 'style-mixing-rows8_10-12.png' in files
    assert 'style-mixing-coarse-dst2-src5.png' in files
    assert len(files) == 2 + 2 * 2 * 3
    with np.load(npz) as f:
        assert f['rows_coarse'].tolist() == [0, 1, 2, 3]
        assert f['rows_rows8_10-12'].tolist() == [8]
        assert f['images_coarse'].shape == (2, 3, 3, 8, 8)
        assert f['dst_seeds'].tolist() == [1, 2] and f['src_seeds'].tolist() == [3, 4, 5]
        dst = Gs.components.mapping.run(seed_latents([2], 8), None)[0]
        src = Gs.components.mapping.run(seed_latents([4], 8), None)[0]
        want = dst.copy()
        want[8] = src[8]
        np.testing.assert_allclose(f['mixed_dlatents_rows8_10-12'][1, 1], want, atol=1e-6)
        ref = Gs.components.synthesis.run(want[None], randomize_noise=False)[0]
        np.testing.assert_allclose(f['images_rows8_10-12'][1, 1], ref, atol=1e-6)


@pytest.mark.parametrize('argv, words', [
    (['--scheme', 'coarse,wide'], 'unknown scheme'),
    (['--scheme', '7-2'], 'backwards'),
    (['--src-seeds', '4,x'], 'is not N or N-M'),
    (['--trunc-cutoff', '4'], '--trunc-cutoff needs --trunc'),
    (['--noise-mode', 'fresh'], 'invalid choice'),
])
def test_cli_bad_input_writes_nothing(tmp_path, monkeypatch, capsys, argv, words):
    use_fake_networks(monkeypatch, {'net.pkl': FakeGs()})
    base = ['--network', 'net.pkl', '--dst-seeds', '1', '--src-seeds', '2',
            '--outdir', str(tmp_path / 'out'), '--out-npz', str(tmp_path / 'm.npz')]
    with pytest.raises(SystemExit) as e:
        style_mixing.main(base + argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_missing_network_writes_nothing(tmp_path, capsys):
    missing = str(tmp_path / 'nope.pkl')
    rc = style_mixing.main(['--network', missing, '--dst-seeds', '1', '--src-seeds', '2',
                            '--outdir', str(tmp_path / 'out')])
    assert rc == 1
    assert f'{missing}: network pickle not found' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


SG1 = 'FIXTURE:sg1_r64.pkl'
STYLE_MIXING_ERRORS = [   # (id, arguments, words in the error line)
    ('network-missing', ['--network', 'PKL:missing'], ['missing.pkl', 'network pickle not found']),
    ('network-is-a-folder', ['--network', 'PKL:folder'], ['folder.pkl', 'not a file']),
    ('network-not-a-pickle', ['--network', 'PKL:text'], ['text.pkl', 'not a pickle']),
    ('network-truncated', ['--network', 'PKL:truncated'], ['truncated.pkl', 'truncated']),
    ('network-hostile', ['--network', 'PKL:hostile'], ['hostile.pkl', 'system']),
    ('network-hostile-legacy', ['--network', 'PKL:hostile', '--impl', 'legacy'], ['hostile.pkl', 'system']),
    ('pickle-without-networks', ['--network', 'PKL:dict'], ['dict.pkl', 'no networks']),
    ('two-networks-only', ['--network', 'PKL:pair'], ['pair.pkl', '(G, D, Gs)']),
    ('discriminator-as-Gs', ['--network', 'PKL:d_as_gs'], ['d_as_gs.pkl', 'D_basic', 'not a generator']),
    ('rows-beyond-the-network', ['--network', SG1, '--scheme', 'rows:12-15'],
     ['rows12-15', 'replaces no rows', 'sg1_r64.pkl', '10 style rows']),
    ('empty-destination-seeds', ['--network', SG1, '--dst-seeds', ''], ['bad seed list']),
    ('empty-source-seeds', ['--network', SG1, '--src-seeds', ' '], ['bad seed list']),
    ('unknown-scheme', ['--network', SG1, '--scheme', 'coarse,wide'], ['unknown scheme']),
    ('psi-not-a-number', ['--network', SG1, '--trunc', 'nan'], ['--trunc']),
    ('outdir-inside-a-file', ['--network', SG1, '--outdir', 'TMP:afile/out'], ['afile', 'is a file']),
    ('out-npz-is-a-folder', ['--network', SG1, '--out-npz', 'TMP:folder'], ['--out-npz', 'is a folder']),
]


@pytest.mark.parametrize('case,args,words', STYLE_MIXING_ERRORS, ids=[c[0] for c in STYLE_MIXING_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, bad_pickles, case, args, words):
    (tmp_path / 'afile').write_text('a file where a folder should be')
    (tmp_path / 'folder').mkdir()
    args = expand_args(args, tmp_path, bad_pickles)
    defaults = {'--dst-seeds': '1', '--src-seeds': '2', '--outdir': str(tmp_path / 'out')}
    args += [x for flag, value in defaults.items() if flag not in args for x in (flag, value)]
    assert_user_error('style_mixing.py', args, words, untouched=[tmp_path, os.path.dirname(bad_pickles['text'])])
    assert not os.path.exists(os.path.join(os.path.dirname(bad_pickles['hostile']), 'HACKED'))


@pytest.mark.parametrize('impl', ['tf2', 'legacy'])
@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_cli_out_npz_matches_official(tmp_path, prefix, impl):
    load_real_gs(f'{prefix}_r64.pkl', impl)          # skips while the loader is missing
    ref = np.load(fixture_path(f'{prefix}_r64_ref.npz'))
    npz = tmp_path / 'mix.npz'
    rc = style_mixing.main(['--network', fixture_path(f'{prefix}_r64.pkl'), '--dst-seeds', '12',
                            '--src-seeds', '11', '--scheme', 'coarse,fine', '--trunc', '1',
                            '--impl', impl, '--outdir', str(tmp_path / 'out'),
                            '--out-npz', str(npz)])
    assert rc == 0
    with np.load(npz) as f:
        assert f['rows_coarse'].tolist() == [0, 1, 2, 3]
        assert f['images_coarse'].shape == (1, 1, 3, 64, 64)
        assert f['images_coarse'].dtype == np.float32
        assert rel(f['mixed_dlatents_coarse'][0, 0], ref['mix_dlatents'][0]) <= TOL
        assert rel(f['images_coarse'][0, 0], ref['mix_images'][0]) <= TOL
        assert rel(f['dst_dlatents'][0], ref['mix_dlatents_B'][0]) <= TOL
        assert rel(f['src_dlatents'][0], ref['mix_dlatents_A'][0]) <= TOL
        # fine: rows 8-9 from A; B's dlatents elsewhere (all rows of a mapping output are equal)
        want = ref['mix_dlatents_B'][0].copy()
        want[8:] = ref['mix_dlatents_A'][0, 8:]
        assert f['rows_fine'].tolist() == [8, 9]
        assert rel(f['mixed_dlatents_fine'][0, 0], want) <= TOL
    assert len(os.listdir(tmp_path / 'out')) == 4
