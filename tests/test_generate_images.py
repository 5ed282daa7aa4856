"""generate_images.py and editing.generate_images: seeds, PNGs, grid, CLI, both implementations."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

import reference_sg1_numpy as R1
from conftest import REPO_DIR, assert_user_error, bad_pickle_errors, expand_args, fixture_path
from dnnlib import legacy_pickle
from dnnlib.util import parse_seeds
from editing.generate_images import generate_images, image_grid, seed_latents


def test_parse_seeds():
    assert parse_seeds('0-3,7,10-12') == [0, 1, 2, 3, 7, 10, 11, 12]
    assert parse_seeds('5') == [5]
    for bad in ('', '1-', 'a', '3-1', '-2', '1,,2'):
        with pytest.raises(ValueError, match='bad seed list'):
            parse_seeds(bad)


def test_seed_latents_follow_nvidia_convention():
    z = seed_latents([3, 9], 5)
    np.testing.assert_array_equal(z[1], np.random.RandomState(9).randn(1, 5)[0])


def test_image_grid_layout():
    imgs = np.arange(5)[:, None, None, None] * np.ones([5, 2, 3, 1], np.uint8)
    grid = image_grid(imgs)
    assert grid.shape == (4, 9, 1)                      # 3 columns, 2 rows
    assert grid[2, 3, 0] == 4 and grid[3, 8, 0] == 0    # 5th image, then black padding


def _expected_uint8(seed, psi, cutoff):
    """Independent NumPy StyleGAN forward (tests/reference_sg1_numpy.py) -> uint8 HWC."""
    _, _, gs = legacy_pickle.load(fixture_path('sg1_r64.pkl'))
    img, _ = R1.G_style(gs, np.random.RandomState(seed).randn(1, 32), psi, cutoff)
    return np.clip(img[0] * 127.5 + 128, 0, 255).astype(np.uint8).transpose(1, 2, 0)


def _check_written(outdir, seeds, psi, cutoff):
    for seed in seeds:
        png = np.asarray(PIL.Image.open(os.path.join(outdir, f'seed{seed:04d}.png')))
        expect = _expected_uint8(seed, psi, cutoff)
        assert png.shape == (64, 64, 3) and png.dtype == np.uint8
        assert np.mean(png != expect) <= 0.001 and np.abs(png.astype(int) - expect).max() <= 1


def test_generate_images_library(tmp_path):
    written = generate_images(fixture_path('sg1_r64.pkl'), [0, 3], 0.5, 4, 'const',
                              str(tmp_path), grid=True, impl='tf2')
    assert sorted(os.path.basename(p) for p in written) == ['grid.png', 'seed0000.png',
                                                            'seed0003.png']
    _check_written(tmp_path, [0, 3], 0.5, 4)
    grid = np.asarray(PIL.Image.open(tmp_path / 'grid.png'))
    assert grid.shape == (64, 128, 3)
    seed3 = np.asarray(PIL.Image.open(tmp_path / 'seed0003.png'))
    np.testing.assert_array_equal(grid[:, 64:], seed3)


def test_generate_images_defaults_and_random_noise(tmp_path):
    generate_images(fixture_path('sg1_r64.pkl'), [1], None, None, 'const', str(tmp_path / 'a'))
    _check_written(tmp_path / 'a', [1], 0.7, 8)           # v1 defaults: psi 0.7, cutoff 8
    generate_images(fixture_path('sg1_r64.pkl'), [1], None, None, 'random', str(tmp_path / 'b'))
    a = np.asarray(PIL.Image.open(tmp_path / 'a' / 'seed0001.png'))
    b = np.asarray(PIL.Image.open(tmp_path / 'b' / 'seed0001.png'))
    assert not np.array_equal(a, b)


def test_cli(tmp_path):
    out = tmp_path / 'out'
    cmd = [sys.executable, 'generate_images.py', '--network', fixture_path('sg1_r64.pkl'),
           '--seeds', '0-1,5', '--trunc', '0.7', '--trunc-cutoff', '8', '--outdir', str(out),
           '--grid']
    proc = subprocess.run(cmd, cwd=REPO_DIR, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == ['grid.png', 'seed0000.png', 'seed0001.png', 'seed0005.png']
    _check_written(out, [5], 0.7, 8)


def test_cli_bad_input_writes_nothing(tmp_path):
    out = tmp_path / 'out'
    base = [sys.executable, 'generate_images.py', '--outdir', str(out)]
    proc = subprocess.run(base + ['--network', 'x.pkl', '--seeds', '3-1'], cwd=REPO_DIR,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and 'reversed' in proc.stderr
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'not a pickle')
    proc = subprocess.run(base + ['--network', str(bad), '--seeds', '0'], cwd=REPO_DIR,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and 'bad.pkl' in proc.stderr
    assert not out.exists()


GENERATE_ERRORS = bad_pickle_errors('--network', '--seeds', '0') + [   # (id, arguments, words)
    ('network-hostile-legacy', ['--network', 'PKL:hostile', '--seeds', '0', '--impl', 'legacy'],
     ['hostile.pkl', 'system']),
    ('discriminator-as-Gs-legacy', ['--network', 'PKL:d_as_gs', '--seeds', '0', '--impl', 'legacy'],
     ['d_as_gs.pkl', 'not a generator']),
    ('empty-seed-list', ['--network', 'FIXTURE:sg1_r64.pkl', '--seeds', ''], ['--seeds', 'bad seed list']),
    ('reversed-seeds', ['--network', 'FIXTURE:sg1_r64.pkl', '--seeds', '3-1'], ['--seeds', 'reversed']),
    ('negative-cutoff', ['--network', 'FIXTURE:sg1_r64.pkl', '--seeds', '0', '--trunc-cutoff', '-1'],
     ['--trunc-cutoff']),
    ('psi-not-a-number', ['--network', 'FIXTURE:sg1_r64.pkl', '--seeds', '0', '--trunc', 'nan'], ['--trunc']),
    ('outdir-inside-a-file', ['--network', 'FIXTURE:sg1_r64.pkl', '--seeds', '0', '--outdir', 'TMP:afile/out'],
     ['afile', 'is a file']),
]


@pytest.mark.parametrize('case,args,words', GENERATE_ERRORS, ids=[c[0] for c in GENERATE_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, bad_pickles, case, args, words):
    (tmp_path / 'afile').write_text('a file where a folder should be')
    args = expand_args(args, tmp_path, bad_pickles)
    if '--outdir' not in args:
        args += ['--outdir', str(tmp_path / 'out')]
    assert_user_error('generate_images.py', args, words,
                      untouched=[tmp_path, os.path.dirname(bad_pickles['text'])])
    assert not os.path.exists(os.path.join(os.path.dirname(bad_pickles['hostile']), 'HACKED'))


def test_cli_help():
    proc = subprocess.run([sys.executable, 'generate_images.py', '--help'], cwd=REPO_DIR,
                          capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ('--network', '--seeds', '--trunc', '--trunc-cutoff', '--noise-mode', '--outdir',
                 '--grid', '--impl'):
        assert flag in proc.stdout


def test_legacy_impl(tmp_path):
    generate_images(fixture_path('sg1_r64.pkl'), [0, 3], 0.5, 4, 'const', str(tmp_path),
                    impl='legacy')
    _check_written(tmp_path, [0, 3], 0.5, 4)
