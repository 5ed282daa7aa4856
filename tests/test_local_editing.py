"""Mask-based local editing (editing/local_editing.py, local_editing.py): exact limits of the
blend (zero mask = source, one mask = reference at the blended layers), the plain pass equals the
network's own synthesis, and the CLI's outputs and one-line errors."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_user_error, expand_args, fixture_path
from editing import local_editing as le, sefa
from test_sefa import load_real_gs, use_loaded_networks
from editing import mixing
from editing import figures

import local_editing as le_script

R = 64


def src_ref(Gs):
    psi, cutoff = sefa.default_truncation(Gs)
    w = mixing.truncate(mixing.map_seeds(Gs, [1, 2, 3]), Gs.get_var('dlatent_avg'), psi, cutoff)
    return w[:2], w[2:]                          # two sources, one reference


@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_zero_mask_returns_the_source(prefix):
    Gs = load_real_gs(f'{prefix}_r64.pkl')
    src, ref = src_ref(Gs)
    plain = le.blended_synthesis(Gs, src, ref, np.zeros([R, R]), [])
    out = le.blended_synthesis(Gs, src, ref, np.zeros([R, R]), [8, 32])
    np.testing.assert_array_equal(out, plain)
    # The block-by-block pass is the network's own synthesis.
    official = mixing.synthesize(Gs, src)
    assert np.abs(plain - official).max() <= 1e-4 * np.abs(official).max()


@pytest.mark.parametrize('prefix', ['sg1', 'sg2'])
def test_one_mask_gives_the_reference_at_the_blended_layers(prefix):
    Gs = load_real_gs(f'{prefix}_r64.pkl')
    src, ref = src_ref(Gs)
    ones = np.ones([R, R])
    out, f = le.blended_synthesis(Gs, src, ref, ones, [16], return_features=True)
    np.testing.assert_array_equal(f[16][:2], f[16][2:])          # source half = reference half
    assert np.abs(f[8][:2] - f[8][2:]).max() > 1e-3               # before the blend: the source's
    assert np.abs(f[32][:2] - f[32][2:]).max() > 1e-3             # after: the source's styles again
    # Blending at the last resolution hands over everything: the image is the reference's.
    out, f = le.blended_synthesis(Gs, src, ref, ones, [R], return_features=True)
    np.testing.assert_array_equal(out, f['images'][2:])


def test_half_mask_splits_the_features():
    Gs = load_real_gs('sg2_r64.pkl')
    src, ref = src_ref(Gs)
    _, s = le.blended_synthesis(Gs, src, ref, np.zeros([R, R]), [], return_features=True)
    _, out = le.blended_synthesis(Gs, src, ref, le.half_mask('right', R), [16], return_features=True)
    np.testing.assert_array_equal(out[16][:2, ..., :8], s[16][:2, ..., :8])   # NCHW: left = source
    np.testing.assert_array_equal(out[16][:2, ..., 8:], out[16][2:, ..., 8:])  # right = reference


def test_mask_helpers():
    m = np.zeros([8, 8])
    m[:2, :2] = 1
    np.testing.assert_allclose(le.resize_mask(m, 4)[0, 0], 1.0)
    np.testing.assert_allclose(le.resize_mask(m, 2)[0, 0], 0.25)        # area: soft at low res
    assert le.parse_resolutions('32,8', 64) == [8, 32]
    with pytest.raises(ValueError, match='--layer-res'):
        le.parse_resolutions('12', 64)
    assert le.half_mask('top', 4)[:2].all() and not le.half_mask('top', 4)[2:].any()


def test_cli_figure_and_dlatents_source(tmp_path, monkeypatch):
    use_loaded_networks(monkeypatch, 'tf2')
    Gs = load_real_gs('sg1_r64.pkl')
    src, ref = src_ref(Gs)
    np.savez(tmp_path / 'proj.npz', dlatents=src, seeds=np.array([11, 12]))
    mask = np.zeros([R, R], np.uint8)
    mask[20:40, 10:50] = 255
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    rc = le_script.main(['--network', fixture_path('sg1_r64.pkl'), '--src-dlatents',
                         str(tmp_path / 'proj.npz'), '--src-index', '1', '--ref-seed', '3',
                         '--mask', str(tmp_path / 'mask.png'), '--layer-res', '16,32',
                         '--outdir', str(tmp_path / 'out')])
    assert rc == 0
    assert sorted(os.listdir(tmp_path / 'out')) == ['local-edit-result.png', 'local-edit.png']
    fig = Image.open(tmp_path / 'out' / 'local-edit.png')
    assert fig.size[0] == 4 * R and fig.size[1] > R
    want = le.blended_synthesis(Gs, src[1:], ref, mask / 255.0, [16, 32])
    got = np.asarray(Image.open(tmp_path / 'out' / 'local-edit-result.png'))
    # The CLI maps seed 3 on its own: its last float bits may differ from this batch's, so the
    # uint8 images may differ by one level.
    assert np.abs(got.astype(int) - figures.images_to_uint8(want)[0]).max() <= 1


SG1 = 'FIXTURE:sg1_r64.pkl'
LOCAL_ERRORS = [   # each runs the script in a subprocess
    ('mask-of-the-wrong-size', ['--network', SG1, '--mask', 'TMP:m32.png'],
     ['m32.png', '--mask', 'mask size 32x32', '64x64']),
    ('legacy-impl', ['--network', SG1, '--mask-half', 'left', '--impl', 'legacy'], ['--impl legacy', 'tf2']),
    ('blend-resolution', ['--network', SG1, '--mask-half', 'left', '--layer-res', '12'], ['--layer-res', '12']),
    ('dlatent-size-mismatch', ['--network', SG1, '--mask-half', 'left', '--src-dlatents', 'TMP:small.npz'],
     ['small.npz', '--src-dlatents', 'dlatent size mismatch']),
    ('no-mask', ['--network', SG1], ['--mask', '--mask-half']),
]


@pytest.mark.parametrize('case,args,words', LOCAL_ERRORS, ids=[c[0] for c in LOCAL_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, case, args, words):
    Image.fromarray(np.zeros([32, 32], np.uint8)).save(tmp_path / 'm32.png')
    np.savez(tmp_path / 'small.npz', dlatents=np.zeros([1, 8], np.float32))
    args = expand_args(args, tmp_path)
    if '--src-dlatents' not in args:
        args += ['--src-seed', '1']
    args += ['--ref-seed', '2', '--outdir', str(tmp_path / 'out')]
    assert_user_error('local_editing.py', args, words, untouched=[tmp_path])


def test_feathered_mask_fades_across_the_edge():
    m = le.half_mask('right', 64)
    soft = le.feather_mask(m, 3.0)
    assert soft[0, 0] == 0 and soft[0, 63] == 1                # far from the edge: unchanged
    assert 0.1 < soft[10, 31] < 0.5 < soft[10, 32] < 0.9        # across the edge: a ramp
    np.testing.assert_array_equal(le.feather_mask(m, 0), m)
    with pytest.raises(ValueError, match='--feather'):
        le.feather_mask(m, -1)
