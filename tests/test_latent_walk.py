"""Latent walks (editing/latent_walk.py, latent_walk.py): interpolation maths, NVIDIA's keyframe
layout, GIF frame count and size, frames equal to the network's own images, one-line errors."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_user_error, expand_args, fixture_path
from test_sefa import load_real_gs, use_loaded_networks
from editing import figures, latent_walk as lw, sefa
from editing import mixing

import latent_walk as walk_script

D, L = 48, 10


def test_frame_positions_and_counts():
    assert lw.frame_positions(3, 4, loop=True).shape == (12,)
    assert lw.frame_positions(3, 4, loop=False).shape == (9,)
    assert lw.frame_positions(3, 4, loop=False)[-1] == 2.0


@pytest.mark.parametrize('kind', ['linear', 'cubic'])
def test_interpolation_hits_keyframes_and_loops(kind):
    keys = np.random.RandomState(0).randn(5, 2, 3)
    pos = np.arange(6, dtype=np.float64)            # position 5 = keyframe 0 again when looping
    out = lw.interpolate(keys, pos, kind, loop=True)
    np.testing.assert_allclose(out[:5], keys, atol=1e-12)
    np.testing.assert_allclose(out[5], keys[0], atol=1e-12)
    mid = lw.interpolate(keys, np.array([0.5]), kind, loop=False)[0]
    if kind == 'linear':
        np.testing.assert_allclose(mid, (keys[0] + keys[1]) / 2)
    else:                                            # a spline, not the chord
        assert np.abs(mid - (keys[0] + keys[1]) / 2).max() > 1e-3


def test_cubic_without_loop_needs_four_keyframes():
    with pytest.raises(ValueError, match='at least 4 keyframes'):
        lw.interpolate(np.zeros([3, 2]), np.array([0.5]), 'cubic', loop=False)


def test_slerp_stays_on_the_sphere():
    rng = np.random.RandomState(1)
    a, b = rng.randn(32), rng.randn(32)
    out = lw.slerp(a, b, np.linspace(0, 1, 7))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.sqrt(32), rtol=1e-12)
    np.testing.assert_allclose(out[0], a / np.linalg.norm(a) * np.sqrt(32), atol=1e-12)
    np.testing.assert_allclose(out[-1], b / np.linalg.norm(b) * np.sqrt(32), atol=1e-12)
    lerp_mid = (out[0] + out[-1]) / 2
    assert np.linalg.norm(lerp_mid) < np.linalg.norm(out[3])      # lerp cuts inside the sphere


def test_nvidia_keyframe_layout():
    layout = lw.assign_keyframes([10, 11, 12, 13, 14, 15], 3, 1)
    assert layout.shape == (1, 3, 2) and layout.reshape(-1).tolist() == [0, 1, 2, 3, 4, 5]
    assert lw.assign_keyframes([7], 2, 2, num_keyframes=3).shape == (2, 2, 3)
    with pytest.raises(ValueError, match='do not divide into a 2x2 grid'):
        lw.assign_keyframes([1, 2, 3], 2, 2)
    assert lw.parse_grid('4x2') == (4, 2) and lw.parse_grid('4,2') == (4, 2)


def test_direction_walk_moves_only_the_rows():
    base = np.random.RandomState(2).randn(1, 2, L, D).astype(np.float32)
    n = np.random.RandomState(3).randn(D).astype(np.float32)
    out = lw.direction_walk_dlatents(base, n, [0, 1], 8, 4.0, loop=True)
    assert out.shape == (8, 1, 2, L, D)
    np.testing.assert_array_equal(out[0], base)                     # sin(0) = 0: the start image
    np.testing.assert_array_equal(out[:, :, :, 2:], np.broadcast_to(base[None, :, :, 2:], out[:, :, :, 2:].shape))
    np.testing.assert_allclose(out[2, :, :, :2] - base[:, :, :2], np.broadcast_to(4.0 * n, (1, 2, 2, D)), atol=1e-5)


@pytest.mark.parametrize('loop, frames', [(True, 6), (False, 4)])
def test_gif_frame_count_size_and_first_frame(tmp_path, monkeypatch, loop, frames):
    use_loaded_networks(monkeypatch, 'tf2')
    Gs = load_real_gs('sg2_r64.pkl', 'tf2')
    out = tmp_path / 'walk.gif'
    res = lw.run_latent_walk(fixture_path('sg2_r64.pkl'), str(out), seeds=[0, 1, 2, 3], grid='2x1',
                             kind='linear', frames_per_keyframe=3, fps=10, loop=loop,
                             frames_dir=str(tmp_path / 'frames'), progress=False, log=None)
    assert res['frames'] == frames and res['size'] == (128, 64)
    gif = Image.open(out)
    assert gif.n_frames == frames and gif.size == (128, 64)
    assert gif.info['duration'] == 100 and (gif.info.get('loop') == 0) == loop
    assert sorted(os.listdir(tmp_path / 'frames')) == [f'frame{i:06d}.png' for i in range(frames)]
    # Frame 0 = the first keyframes' own images, tiled: NVIDIA's layout [H, W, K] gives cell 0
    # seeds 0, 1 and cell 1 seeds 2, 3 (truncated as the default).
    psi, cutoff = sefa.default_truncation(Gs)
    w = mixing.truncate(mixing.map_seeds(Gs, [0, 2]), Gs.get_var('dlatent_avg'), psi, cutoff)
    want = figures.images_to_uint8(mixing.synthesize(Gs, w))
    got = np.asarray(Image.open(tmp_path / 'frames' / 'frame000000.png'))
    assert np.abs(got[:, :64].astype(int) - want[0]).max() <= 1
    assert np.abs(got[:, 64:].astype(int) - want[1]).max() <= 1


def test_z_walk_and_direction_walk_cli(tmp_path, monkeypatch):
    use_loaded_networks(monkeypatch, 'tf2')
    net = fixture_path('sg1_r64.pkl')
    assert walk_script.main(['--network', net, '--seeds', '1,2', '--space', 'z',
                             '--frames-per-keyframe', '2', '--output', str(tmp_path / 'z.gif'),
                             '--no-progress']) == 0
    assert Image.open(tmp_path / 'z.gif').n_frames == 4
    d = sefa.factorize(load_real_gs('sg1_r64.pkl', 'tf2'), 'coarse')
    sefa.save_factorization(d, str(tmp_path / 'd.npz'), net)
    assert walk_script.main(['--network', net, '--seeds', '1', '--directions', str(tmp_path / 'd.npz'),
                             '--index', '3', '--num-frames', '5', '--output', str(tmp_path / 'd.gif'),
                             '--no-progress']) == 0
    assert Image.open(tmp_path / 'd.gif').n_frames == 5


def test_mp4_without_imageio_ffmpeg_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(figures, 'mp4_available', lambda: False)
    rc = walk_script.main(['--network', fixture_path('sg2_r64.pkl'), '--seeds', '1', '--output',
                           str(tmp_path / 'v.mp4')])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'imageio-ffmpeg' in err[0] and '--output' in err[0]
    assert os.listdir(tmp_path) == []


SG2 = 'FIXTURE:sg2_r64.pkl'
WALK_ERRORS = [   # each runs the script in a subprocess
    ('direction-index-out-of-range', ['--network', SG2, '--seeds', '1', '--directions', 'TMP:d.npz',
                                      '--index', '7'], ['--index', 'index 7 out of range', '4 directions']),
    ('direction-size-mismatch', ['--network', SG2, '--seeds', '1', '--directions', 'TMP:d8.npz'],
     ['d8.npz', 'direction size mismatch', 'D=8']),
    ('dlatent-size-mismatch', ['--network', SG2, '--dlatents', 'TMP:small.npz'],
     ['small.npz', '--dlatents', 'dlatent size mismatch']),
    ('seeds-do-not-fill-the-grid', ['--network', SG2, '--seeds', '1-3', '--grid', '2x2'],
     ['3 seeds', '2x2 grid']),
    ('not-a-video-name', ['--network', SG2, '--seeds', '1', '--output', 'TMP:out/walk.avi'],
     ['--output', '.gif or .mp4']),
    ('bad-seeds', ['--network', SG2, '--seeds', '1,x'], ['--seeds']),
]


@pytest.mark.parametrize('case,args,words', WALK_ERRORS, ids=[c[0] for c in WALK_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, case, args, words):
    np.savez(tmp_path / 'd.npz', directions=np.eye(4, D, dtype=np.float32))
    np.savez(tmp_path / 'd8.npz', directions=np.eye(8, dtype=np.float32))
    np.savez(tmp_path / 'small.npz', dlatents=np.zeros([2, 8], np.float32))
    args = expand_args(args, tmp_path)
    if '--output' not in args:
        args += ['--output', str(tmp_path / 'out' / 'walk.gif')]
    assert_user_error('latent_walk.py', args, words, untouched=[tmp_path])


def test_mp4_frames_and_size(tmp_path):
    """With imageio-ffmpeg (requirements-dev.txt) the walk is an H.264 MP4 of the same frames."""
    import imageio.v3 as iio
    out = tmp_path / 'w.mp4'
    assert walk_script.main(['--network', fixture_path('sg2_r64.pkl'), '--seeds', '1,2,3',
                             '--frames-per-keyframe', '4', '--output', str(out), '--no-progress']) == 0
    frames = iio.imread(out)
    assert frames.shape == (12, 64, 64, 3)
    assert sorted(os.listdir(tmp_path)) == ['w.mp4']
