"""training/schedule.py against the spec's formula (spec 6.2), written out independently here."""

import math

import numpy as np
import pytest

from training.schedule import OFFICIAL_TICK_KIMG_DICT, normalize_sched_args, training_schedule

# The official 8-GPU FFHQ preset of train.py (spec 6.1).
FFHQ_8GPU = dict(lod_initial_resolution=8, minibatch_base=32,
                 minibatch_dict={4: 512, 8: 256, 16: 128, 32: 64, 64: 32},
                 G_lrate_dict={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
                 D_lrate_dict={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003})


def spec_lod(kimg, rl, init_res=4, training=600.0, transition=600.0):
    """The spec's lod formula, element-wise with numpy."""
    kimg = np.asarray(kimg, np.float64)
    phase_dur = training + transition
    phase_idx = np.floor(kimg / phase_dur)
    phase_kimg = kimg - phase_idx * phase_dur
    lod = rl - np.floor(np.log2(init_res)) - phase_idx - np.maximum(phase_kimg - training, 0) / transition
    return np.maximum(lod, 0.0)


def test_ffhq_1024_hand_computed_points():
    # Hand-derived from the formula of spec 6.2: lod starts at 7 (8x8); each phase is 600 kimg
    # stable + 600 kimg fade, so the seventh fade ends at 7 * 1200 = 8400 kimg. (The prose of
    # spec 6.2 says 7800; its own formula gives lod 1.0 there.)
    cases = [  # kimg, lod, resolution, minibatch, G_lrate, tick_kimg
        (0, 7.0, 8, 256, 0.001, 140),
        (600, 7.0, 8, 256, 0.001, 140),
        (900, 6.5, 16, 128, 0.001, 120),
        (1200, 6.0, 16, 128, 0.001, 120),
        (1800, 6.0, 16, 128, 0.001, 120),
        (2100, 5.5, 32, 64, 0.001, 100),
        (5400, 3.0, 128, 32, 0.0015, 60),
        (5700, 2.5, 256, 32, 0.002, 40),
        (7200, 1.0, 512, 32, 0.003, 30),
        (7500, 1.0, 512, 32, 0.003, 30),
        (7800, 1.0, 512, 32, 0.003, 30),
        (8100, 0.5, 1024, 32, 0.003, 20),
        (8400, 0.0, 1024, 32, 0.003, 20),
        (25000, 0.0, 1024, 32, 0.003, 20),
    ]
    for kimg, lod, res, mb, lr, tick in cases:
        s = training_schedule(kimg * 1000, 10, 8, **FFHQ_8GPU)
        assert s.kimg == kimg
        assert s.lod == pytest.approx(lod, abs=1e-12), kimg
        assert (s.resolution, s.minibatch, s.tick_kimg) == (res, mb, tick), kimg
        assert s.G_lrate == s.D_lrate == lr
        assert s.minibatch_gpu == mb // 8 and s.rounds == 1


@pytest.mark.parametrize('rl,init_res,training,transition', [
    (10, 8, 600, 600), (8, 4, 600, 600), (6, 8, 6, 6), (6, 16, 3, 0), (3, 4, 0.5, 0.5)])
def test_lod_and_resolution_match_formula_at_many_points(rl, init_res, training, transition):
    kimgs = np.linspace(0, 3 * (rl + 2) * (training + transition) + 1, 997)
    expected = spec_lod(kimgs, rl, init_res, training, transition) if transition > 0 else None
    for i, kimg in enumerate(kimgs):
        nimg = int(round(kimg * 1000))
        s = training_schedule(nimg, rl, 1, lod_initial_resolution=init_res,
                              lod_training_kimg=training, lod_transition_kimg=transition)
        if expected is not None:
            want = spec_lod(nimg / 1000, rl, init_res, training, transition)
        else:   # no fade: lod drops by whole steps after each stable phase
            want = max(rl - math.floor(math.log2(init_res)) - math.floor(nimg / 1000 / training), 0)
        assert s.lod == pytest.approx(float(want), abs=1e-9), (kimg, s.lod, want)
        assert s.resolution == 2 ** (rl - math.floor(s.lod))
        assert s.tick_kimg == OFFICIAL_TICK_KIMG_DICT.get(s.resolution, 160)


def test_defaults_are_official():
    s = training_schedule(0, 10)
    assert s.lod == 8.0 and s.resolution == 4           # lod_initial_resolution 4
    assert s.minibatch == 16 and s.G_lrate == 0.001 and s.D_lrate == 0.001 and s.tick_kimg == 160
    s = training_schedule(1500 * 1000, 10)               # phase 1, stable part
    assert s.lod == 7.0 and s.resolution == 8 and s.tick_kimg == 140
    s = training_schedule(2100 * 1000, 10)               # phase 1, 300 kimg into its fade
    assert s.lod == pytest.approx(6.5) and s.resolution == 16 and s.tick_kimg == 120


def test_minibatch_divisible_by_gpus_and_capped():
    s = training_schedule(0, 10, 3, minibatch_base=16)
    assert s.minibatch == 15 and s.minibatch_gpu == 5
    s = training_schedule(0, 10, 2, minibatch_base=16, max_minibatch_per_gpu={4: 3})
    assert s.minibatch == 6 and s.minibatch_gpu == 3


def test_lrate_rampup():
    for kimg in (0, 50, 100, 150):
        s = training_schedule(kimg * 1000, 10, 1, lrate_rampup_kimg=100, G_lrate_base=0.002,
                              D_lrate_base=0.004)
        ramp = min(kimg / 100, 1.0)
        assert s.G_lrate == pytest.approx(0.002 * ramp) and s.D_lrate == pytest.approx(0.004 * ramp)


def test_gradient_accumulation_rounds():
    s = training_schedule(0, 6, 1, lod_initial_resolution=64, minibatch_base=32, minibatch_gpu_base=4)
    assert (s.minibatch, s.minibatch_gpu, s.rounds) == (32, 4, 8)
    s = training_schedule(0, 6, 2, lod_initial_resolution=64, minibatch_base=32,
                          minibatch_gpu_dict={64: 8}, minibatch_gpu_base=2)
    assert (s.minibatch, s.minibatch_gpu, s.rounds) == (32, 8, 2)
    # minibatch_gpu larger than the per-device share: one round of the whole share.
    s = training_schedule(0, 6, 1, lod_initial_resolution=64, minibatch_base=4, minibatch_gpu_base=16)
    assert (s.minibatch_gpu, s.rounds) == (4, 1)
    with pytest.raises(ValueError, match='minibatch_gpu must divide 32'):
        training_schedule(0, 6, 1, lod_initial_resolution=64, minibatch_base=32, minibatch_gpu_base=3)
    # Fewer images than devices: named as such, not as a minibatch rounded down to 0.
    with pytest.raises(ValueError, match='a minibatch of 4 images is fewer than the 8 devices'):
        training_schedule(0, 6, 8, lod_initial_resolution=64, minibatch_base=4)


def test_json_keys_become_ints():
    args = normalize_sched_args({'minibatch_dict': {'8': 4}, 'G_lrate_dict': {'128': 0.1},
                                 'max_minibatch_per_gpu': {'8': 2}, 'lod_training_kimg': 5})
    assert args == {'minibatch_dict': {8: 4}, 'G_lrate_dict': {128: 0.1},
                    'max_minibatch_per_gpu': {8: 2}, 'lod_training_kimg': 5}
