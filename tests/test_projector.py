"""Projection (editing/projector.py, projector.py): schedules and noise maths against the spec's
formulas, recovery of a generated image, determinism, LPIPS, grayscale, and the CLI's errors."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import assert_user_error, fixture_path, load_real_gs, run_script
from editing import projector as P


# ------------------------------------------------------------------------------------------------
# Schedules (spec §2.1, step()).

def test_learning_rate_schedule_matches_spec():
    # Hand values of 0.1 * (0.5 - 0.5 cos(pi * min(1, (1 - t) / 0.25))) * min(1, t / 0.05).
    want = {0.0: 0.0, 0.01: 0.02, 0.025: 0.05, 0.05: 0.1, 0.5: 0.1, 0.75: 0.1,
            0.875: 0.05, 1 - 0.25 / 3: 0.1 * 0.25, 1.0: 0.0}
    for t, lr in want.items():
        assert P.learning_rate(t) == pytest.approx(lr, abs=1e-12), t
    assert P.learning_rate(0.9, initial_learning_rate=1.0, lr_rampdown_length=0.5) == \
        pytest.approx(0.5 - 0.5 * np.cos(np.pi * 0.2))


def test_noise_strength_schedule_matches_spec():
    std = 4.0
    assert P.noise_strength(0.0, std) == pytest.approx(0.2)                   # std * 0.05
    assert P.noise_strength(0.375, std) == pytest.approx(0.2 * 0.25)          # (1 - 0.5)^2
    assert P.noise_strength(0.6, std) == pytest.approx(0.2 * 0.2 ** 2)
    assert P.noise_strength(0.75, std) == 0.0 and P.noise_strength(0.9, std) == 0.0


@pytest.fixture(scope='module')
def sg1_projector():
    """One W projector on the StyleGAN fixture (pixel loss, 20 steps), shared: tracing the step
    takes most of a projector's time."""
    return P.Projector(load_real_gs('sg1_r64.pkl', 'tf2'), 'w', 'pixel', seed=0, num_steps=20,
                       dlatent_avg_samples=500)


def test_projector_steps_follow_the_schedules(sg1_projector):
    proj = sg1_projector
    proj.start(np.zeros([3, 64, 64], np.uint8))
    for k in range(4):
        proj.step()
        assert float(proj.optimizer.learning_rate.numpy()) == pytest.approx(0.1 * min(1, (k / 20) / 0.05))
    assert int(proj.optimizer.iterations.numpy()) == 4
    assert proj.optimizer.epsilon == 1e-8 and proj.optimizer.beta_1 == 0.9 and proj.optimizer.beta_2 == 0.999
    proj.start(np.zeros([3, 64, 64], np.uint8))                 # a new target: fresh Adam state
    assert int(proj.optimizer.iterations.numpy()) == 0


# ------------------------------------------------------------------------------------------------
# Noise maps.

def np_noise_reg(noises):
    """Spec §2.1 step 7 written out in NumPy (float64)."""
    total = 0.0
    for v in noises:
        v = np.asarray(v, np.float64)[0, 0]
        while True:
            total += np.mean(v * np.roll(v, 1, axis=1)) ** 2 + np.mean(v * np.roll(v, 1, axis=0)) ** 2
            if v.shape[0] <= 8:
                break
            s = v.shape[0] // 2
            v = v.reshape(s, 2, s, 2).mean(axis=(1, 3))
    return total


def test_noise_regularization_against_hand_values():
    checker = (np.indices([4, 4]).sum(axis=0) % 2 * 2 - 1).astype(np.float32)[None, None]
    # Every neighbour of a +-1 checkerboard has the other sign: each autocorrelation is -1.
    assert float(P.noise_regularization([checker])) == pytest.approx(2.0)
    # Ones at 16x16: octaves 16 and 8, each (1^2 + 1^2).
    assert float(P.noise_regularization([np.ones([1, 1, 16, 16], np.float32)])) == pytest.approx(4.0)
    # A 32x32 checkerboard averages to zero at 16x16 and below: only its own octave counts.
    big = (np.indices([32, 32]).sum(axis=0) % 2 * 2 - 1).astype(np.float32)[None, None]
    assert float(P.noise_regularization([big])) == pytest.approx(2.0)
    # Stripes along W: lag-1 along W is -1, along H is +1; their 2x2 means vanish.
    stripes = np.tile(np.array([1, -1], np.float32), [16, 8])[None, None]
    assert float(P.noise_regularization([stripes])) == pytest.approx(2.0)


def test_noise_regularization_and_normalization_match_numpy():
    rng = np.random.RandomState(3)
    noises = [rng.randn(1, 1, r, r).astype(np.float32) + 0.3 * rng.randn() for r in (4, 8, 16, 32, 64)]
    noises[2] += np.linspace(0, 1, 16, dtype=np.float32)[None, None, None]        # correlated
    assert float(P.noise_regularization(noises)) == pytest.approx(np_noise_reg(noises), rel=1e-5)
    for v in noises:
        got = P.normalize_noise(v).numpy()
        x = v.astype(np.float64) - v.mean()
        want = x / np.sqrt(np.mean(x ** 2))                 # population std, not N - 1
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        assert abs(got.mean()) < 1e-6 and np.mean(got ** 2) == pytest.approx(1.0, rel=1e-5)


def test_noise_maps_are_normalized_after_every_step(sg1_projector):
    proj = sg1_projector
    proj.start(np.full([3, 64, 64], 128, np.uint8))
    assert [n.shape for n in proj.noises] == [(1, 1, 2 ** (2 + i // 2), 2 ** (2 + i // 2)) for i in range(10)]
    proj.step()
    proj.step()
    for v in proj.noises:
        assert abs(float(v.mean())) < 1e-5 and float(np.mean(v.astype(np.float64) ** 2)) == pytest.approx(1, rel=1e-4)
    # The caller's network is untouched (the projector works on a clone).
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    from dnnlib import legacy_pickle
    stored = legacy_pickle.load(fixture_path('sg1_r64.pkl'))[2].components['synthesis'].variables['noise9']
    np.testing.assert_array_equal(Gs.components.synthesis.get_var('noise9'), stored)


def test_a_step_with_non_finite_gradients_is_skipped(sg1_projector):
    proj = sg1_projector
    target = np.full([3, 64, 64], 100.0, np.float32)
    target[0, 5, 5] = np.nan
    proj.start(target)
    before = proj.dlatents
    for _ in range(3):
        assert proj.step()['skipped']
    assert int(proj.optimizer.iterations.numpy()) == 0
    np.testing.assert_array_equal(proj.dlatents, before)
    for v in proj.noises:      # the noise maps are still normalised after every step
        assert abs(float(v.mean())) < 1e-5 and float(np.mean(v.astype(np.float64) ** 2)) == pytest.approx(1, rel=1e-4)


def test_dlatent_statistics_formula():
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    avg, std = P.dlatent_statistics(Gs, num_samples=300)
    w = Gs.components.mapping.run(np.random.RandomState(123).randn(300, 32), None)[:, 0].astype(np.float64)
    np.testing.assert_allclose(avg[0, 0], w.mean(axis=0), rtol=1e-5, atol=1e-6)
    # Divides by N, not N * D: the RMS norm of the deviation, about sqrt(D) x the per-dimension std.
    assert std == pytest.approx(np.sqrt(np.sum((w - w.mean(axis=0)) ** 2) / 300), rel=1e-5)
    assert avg.shape == (1, 1, 48)


# ------------------------------------------------------------------------------------------------
# Projection.

def psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def generated_target(Gs, seed):
    """A target the network makes from a known dlatent with its stored noise: (uint8 [C, R, R], w)."""
    w = Gs.components.mapping.run(np.random.RandomState(seed).randn(1, Gs.input_shape[1]), None)
    image = Gs.components.synthesis.run(w, randomize_noise=False)
    return P.to_uint8(image)[0].transpose(2, 0, 1), w


def test_projection_recovers_a_generated_image_in_w_plus(tmp_path):
    # StyleGAN2 fixture, W+, pixel loss, 800 of the default 1000 steps: 31.2 dB on this machine
    # (27 dB after 300 steps, 30.1 after 600, 32.2 after 1000). The noise maps start random and
    # must be found as well, which is what takes the steps.
    Gs = load_real_gs('sg2_r64.pkl', 'tf2')
    target, _ = generated_target(Gs, 5)
    proj = P.Projector(Gs, 'w+', 'pixel', seed=1, num_steps=800)
    result = P.project(proj, target[None], progress=False)
    got = P.to_uint8(result['images'])[0].transpose(2, 0, 1)
    reached = psnr(got, target)
    print(f'W+ projection of a generated image: PSNR {reached:.2f} dB after 800 steps')
    assert reached >= 30.0
    assert result['dist'][0] == pytest.approx(np.mean((result['images'][0] * 127.5 + 127.5 - target) ** 2), rel=1e-3)
    # Rendering the saved file with its noise maps reproduces the projection; the network's own
    # noise maps do not.
    path = P.save_projection(str(tmp_path / 'projected.npz'), result, 'w+', 'pixel', ['generated'])
    from editing import dlatents_io
    dl, seeds = dlatents_io.load_dlatents(path, 10, 48)
    noises = P.load_noises(path, Gs, 1)
    again = P.render(Gs, dl, noises)
    np.testing.assert_array_equal(P.to_uint8(again), P.to_uint8(result['images']))
    assert psnr(P.to_uint8(P.render(Gs, dl))[0].transpose(2, 0, 1), target) < reached - 5
    assert list(seeds) == [0]


@pytest.mark.slow
def test_projection_recovers_a_generated_image_stylegan_v1_default_steps():
    # StyleGAN (v1) fixture, W+, pixel loss, the default 1000 steps: 34.0 dB on this machine.
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    target, _ = generated_target(Gs, 5)
    result = P.project(P.Projector(Gs, 'w+', 'pixel', seed=1), target[None], progress=False)
    reached = psnr(P.to_uint8(result['images'])[0].transpose(2, 0, 1), target)
    print(f'StyleGAN v1 W+ projection of a generated image: PSNR {reached:.2f} dB after 1000 steps')
    assert reached >= 32.0


def test_projection_is_deterministic_with_a_seed(sg1_projector):
    proj = sg1_projector
    target, _ = generated_target(load_real_gs('sg1_r64.pkl', 'tf2'), 2)
    runs = []
    for seed in (7, 7, 8):
        proj.set_seed(seed)
        runs.append(P.project(proj, np.stack([target, target[:, ::-1]]), snapshot_steps=[6], progress=False))
    a, b, c = runs
    for key in ('dlatents', 'dist', 'images'):
        np.testing.assert_array_equal(a[key], b[key])
    for x, y in zip(a['noises'], b['noises']):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a['dlatents'], c['dlatents'])
    # W space: one row, repeated on every layer; two targets, two different projections.
    assert a['dlatents'].shape == (2, 10, 48) and np.all(a['dlatents'] == a['dlatents'][:, :1])
    assert not np.array_equal(a['dlatents'][0], a['dlatents'][1])
    assert sorted(a['snapshots']) == [6] and a['snapshots'][6].shape == (2, 3, 64, 64)


def test_grayscale_network_and_target_preparation(tmp_path):
    from tf2 import networks_stylegan2 as nets2
    from tf2.network import Network
    Gs = Network(nets2.G_main(name='Gs', num_channels=1, resolution=32, label_size=0, latent_size=8,
                              dlatent_size=8, mapping_layers=2, mapping_fmaps=8, fmap_base=64, fmap_max=8))
    rgb = np.zeros([60, 100, 3], np.uint8)
    rgb[:, 20:80] = [255, 0, 0]                     # a red square in the middle, columns 20..79
    Image.fromarray(rgb).save(tmp_path / 'red.png')
    lines = []
    target = P.load_target(str(tmp_path / 'red.png'), 32, 1, log=lines.append)
    assert 'centre crop 60x60' in lines[0] and 'resized to 32x32' in lines[0] and 'grayscale' in lines[0]
    assert target.shape == (1, 32, 32) and target.min() == target.max() == 76    # L of pure red
    proj = P.Projector(Gs, 'w', 'pixel', seed=0, num_steps=5, dlatent_avg_samples=100)
    result = P.project(proj, target[None], progress=False)
    assert result['images'].shape == (1, 1, 32, 32) and np.isfinite(result['dist']).all()


# ------------------------------------------------------------------------------------------------
# The script.

def test_cli_writes_the_spec_outputs(tmp_path):
    img = np.random.RandomState(0).randint(0, 256, [80, 100, 3]).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / 'photo.jpg')
    out = tmp_path / 'out'
    proc = run_script('projector.py', '--network', fixture_path('sg2_r64.pkl'), '--target',
                      tmp_path / 'photo.jpg', tmp_path / 'photo.jpg', '--outdir', out, '--loss', 'pixel',
                      '--space', 'w+', '--num-steps', '8', '--snapshot-steps', '4,8', '--save-video',
                      '--no-progress')
    assert proc.returncode == 0, proc.stderr
    assert 'centre crop 80x80, resized to 64x64' in proc.stdout and 'not the paper' in proc.stdout
    assert sorted(os.listdir(out)) == ['proj.gif', 'proj.png', 'projected.npz', 'step0004.png',
                                       'step0008.png', 'target.png']
    with np.load(out / 'projected.npz') as f:
        assert f['dlatents'].shape == (2, 10, 48) and f['dlatents'].dtype == np.float32
        assert str(f['space']) == 'w+' and str(f['loss']) == 'pixel' and f['dist'].shape == (2,)
        assert list(f['seeds']) == [0, 1] and f['noises_8'].shape == (2, 1, 1, 64, 64)
        assert 'noises_9' not in f.files and list(f['target_names']) == [str(tmp_path / 'photo.jpg')] * 2
    assert Image.open(out / 'proj.png').size == (128, 64)
    with Image.open(out / 'proj.gif') as gif:
        assert gif.size == (128, 128) and gif.n_frames == 9      # steps 0..8, two targets stacked


def test_lpips_loss_from_weight_files(tmp_path):
    """run_projector with torchvision + lpips files: the distance it reports is LPIPS (computed
    from target features taken once) of the rendered projection."""
    from metrics import vgg16
    from test_metrics import random_vgg
    from test_metrics_torchscript import OrderedState, write_torch_legacy, write_torch_zip
    convs, lins = random_vgg(4)
    state = OrderedState()
    for (kernel, bias), index in zip(convs, vgg16.TORCHVISION_INDEX):
        state[f'features.{index}.weight'] = np.transpose(kernel, (3, 2, 0, 1)).copy()
        state[f'features.{index}.bias'] = bias
    vgg_path = write_torch_legacy(tmp_path / 'vgg16-397923af.pth', state)
    lin_path = write_torch_zip(tmp_path / 'vgg.pth', OrderedState(
        **{f'lin{l}.model.1.weight': w.reshape(1, -1, 1, 1) for l, w in enumerate(lins)}))
    Gs = load_real_gs('sg1_r64.pkl', 'tf2')
    target, _ = generated_target(Gs, 1)
    Image.fromarray(target.transpose(1, 2, 0)).save(tmp_path / 't.png')
    lines = []
    written = P.run_projector(fixture_path('sg1_r64.pkl'), [str(tmp_path / 't.png')], str(tmp_path / 'o'),
                              space='w+', loss='lpips', vgg16=str(vgg_path), lpips_lin=str(lin_path),
                              num_steps=10, log=lines.append, progress=False)
    assert any('LPIPS-VGG16 (vgg16-397923af.pth' in l for l in lines) and 'used as is' in lines[0]
    with np.load(written['npz']) as f:
        assert str(f['loss']) == 'lpips' and str(f['space']) == 'w+' and f['dlatents'].shape == (1, 10, 48)
        dl, dist = f['dlatents'], f['dist']
    images = P.render(Gs, dl, P.load_noises(written['npz'], Gs, 1))
    want = vgg16.LPIPS(convs, lins, 'x').distance((images + 1) * 127.5, target[None].astype(np.float32))
    assert dist[0] == pytest.approx(float(want[0]), rel=1e-4)


@pytest.fixture(scope='module')
def bad_targets(tmp_path_factory):
    d = tmp_path_factory.mktemp('targets')
    (d / 'text.png').write_text('not an image\n')
    rgba = np.full([64, 64, 4], 200, np.uint8)
    rgba[:10, :10, 3] = 0
    Image.fromarray(rgba, 'RGBA').save(d / 'alpha.png')
    opaque = np.full([64, 64, 4], 255, np.uint8)
    Image.fromarray(opaque, 'RGBA').save(d / 'opaque.png')
    Image.fromarray(np.zeros([12, 40, 3], np.uint8)).save(d / 'tiny.png')
    Image.fromarray(np.zeros([64, 64], np.uint16)).save(d / 'int16.png')
    Image.fromarray(np.zeros([64, 64, 3], np.uint8)).save(d / 'ok.png')
    return d


@pytest.mark.parametrize('args, words', [
    (['--target', 'T:text.png', '--loss', 'pixel'], ['text.png (--target)', 'not a readable image']),
    (['--target', 'T:ok.png', 'T:alpha.png', '--loss', 'pixel'], ['alpha.png (--target)', 'transparent pixels']),
    (['--target', 'T:tiny.png', '--loss', 'pixel'], ['tiny.png (--target)', '40x12 is too small', 'at least 16 px']),
    (['--target', 'T:missing.png', '--loss', 'pixel'], ['missing.png (--target)', 'not found']),
    (['--target', 'T:int16.png', '--loss', 'pixel'], ['int16.png (--target)', 'is not supported']),
    (['--target', 'T:ok.png', '--loss', 'lpips'], ['--vgg16', 'vgg16_zhang_perceptual.pkl', '--loss pixel']),
    (['--target', 'T:ok.png', '--vgg16', 'T:none.pkl'], ['--vgg16', 'none.pkl', 'not found']),
    (['--target', 'T:ok.png', '--impl', 'legacy', '--loss', 'pixel'], ['--impl legacy', 'tf2']),
    (['--target', 'T:ok.png', '--loss', 'pixel', '--snapshot-steps', '0,5'], ['--snapshot-steps', 'outside 1..1000']),
    (['--target', 'T:ok.png', '--loss', 'pixel', '--num-steps', '0'], ['--num-steps']),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(bad_targets, tmp_path, args, words):
    out = tmp_path / 'out'
    argv = ['--network', fixture_path('sg1_r64.pkl'), '--outdir', out] + \
        [str(bad_targets / a[2:]) if str(a).startswith('T:') else a for a in args]
    assert_user_error('projector.py', argv, words, untouched=[out, bad_targets])


def test_opaque_alpha_is_accepted(bad_targets):
    target = P.load_target(str(bad_targets / 'opaque.png'), 64, 3, log=None)
    assert target.shape == (3, 64, 64) and np.all(target == 255)
