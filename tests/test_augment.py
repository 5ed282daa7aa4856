"""training/augment.py: --augment parsing, albumentations pipelines, DiffAugment ops and ADA."""
import json
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

from training import augment as aug
from training.augment import (AdaptiveAugment, AugmentLeakWarning, AugmentSpecError, DiffAugment,
                         diff_augment, make_albu_augment_fn, map_albu_augment, parse_augment)

# ------------------------------------------------------------------------------------------------
# parse_augment


def test_parse_forms():
    assert parse_augment('none').kind == 'none'
    for preset in ('default', 'mild', 'strong'):
        cfg = parse_augment(f'albu:{preset}')
        assert (cfg.kind, cfg.preset) == ('albu', preset)
        assert [g['name'] for g in cfg.albu_spec['groups']][:2] == ['geometric', 'colour']
    assert parse_augment('albu').preset == 'default'
    cfg = parse_augment('diff:color,translation,cutout')
    assert cfg.policy == ('color', 'translation', 'cutout') and cfg.aug_p == 1.0
    cfg = parse_augment('diff:xflip,rotate90', aug_target=0.6)
    assert cfg.aug_target == 0.6 and cfg.aug_p is None and cfg.ada_kimg == 500
    assert parse_augment('diff', aug_p=0.3).aug_p == 0.3
    assert json.loads(json.dumps(parse_augment('albu:mild').to_dict()))['kind'] == 'albu'


@pytest.mark.parametrize('spec,kwargs,match', [
    ('blur', {}, "unknown kind 'blur'"),
    ('diff:color,zoom', {}, 'unknown augmentation.*zoom'),
    ('diff:color,color', {}, 'more than once'),
    ('albu:wild', {}, 'neither a preset'),
    ('albu:missing.yaml', {}, 'missing.yaml: augmentation file not found'),
    ('albu:default', dict(aug_p=0.5), 'apply to --augment diff'),
    ('diff:color', dict(aug_p=0.5, aug_target=0.6), 'exclude each other'),
    ('diff:color', dict(aug_p=1.5), r'--aug-p must be in \[0, 1\]'),
    ('none:x', {}, 'takes no argument'),
])
def test_parse_errors(spec, kwargs, match):
    with pytest.raises(AugmentSpecError, match=match):
        parse_augment(spec, **kwargs)


# ------------------------------------------------------------------------------------------------
# Custom albumentations files

CUSTOM_YAML = """\
groups:
  - name: flips
    p: 1.0
    transforms:
      - name: HorizontalFlip
      - name: VerticalFlip
        p: 1.0
  - name: blur
    p: 0.0
    transforms:
      - name: GaussianBlur
        args: {blur_limit: [3, 5], sigma_limit: [0.1, 1.0]}
"""


def _write(tmp_path, name, text):
    path = os.path.join(tmp_path, name)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


def test_custom_yaml_and_json(tmp_path):
    path = _write(tmp_path, 'aug.yaml', CUSTOM_YAML)
    cfg = parse_augment(f'albu:{path}')
    assert cfg.path == path and cfg.albu_spec['groups'][1]['transforms'][0]['args'] == {
        'blur_limit': (3, 5), 'sigma_limit': (0.1, 1.0)}
    jpath = _write(tmp_path, 'aug.json', json.dumps(
        {'groups': [{'p': 0.5, 'transforms': [
            {'name': 'Affine', 'args': {'rotate': [-5, 5], 'border_mode': 'reflect_101'}}]}]}))
    spec = parse_augment(f'albu:{jpath}').albu_spec
    assert spec['groups'][0]['transforms'][0]['args']['border_mode'] == 4


@pytest.mark.parametrize('text,match', [
    ('groups: []', 'groups must be a non-empty list'),
    ('stages: []', "lacks 'groups'"),
    ('groups:\n  - {p: 0.5}', r"groups\[0\] lacks 'transforms'"),
    ('groups:\n  - {p: 2, transforms: [{name: HorizontalFlip}]}', r'groups\[0\]\.p must be'),
    ('groups:\n  - {p: 1, transforms: [{name: HorizontalFlip}, {name: Sparkle}]}',
     r"groups\[0\]\.transforms\[1\]\.name 'Sparkle' is not an albumentations transform"),
    ('groups:\n  - {p: 1, transforms: [{name: GaussianBlur, args: {radius: 3}}]}',
     r"groups\[0\]\.transforms\[0\]\.args has 'radius'"),
    ('groups:\n  - {p: 1, transforms: [{name: GaussianBlur, args: {sigma_limit: [-1, 2]}}]}',
     r'groups\[0\]\.transforms\[0\] \(GaussianBlur\) rejected its args'),
    ('groups:\n  - {p: 1, transforms: [{name: Affine, args: {border_mode: mirror}}]}',
     "border_mode 'mirror' is not one of"),
    ('groups:\n  - {p: 1, transforms: [{name: OneOf}]}', 'is not an albumentations transform'),
    ('groups: [unclosed', 'cannot parse augmentation file'),
])
def test_custom_file_errors_name_file_and_entry(tmp_path, text, match):
    path = _write(tmp_path, 'bad.yml', text)
    with pytest.raises(AugmentSpecError, match=match) as info:
        parse_augment(f'albu:{path}')
    assert str(info.value).startswith(path)


# ------------------------------------------------------------------------------------------------
# make_albu_augment_fn

def _images(n=6, size=16, channels=3, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, size, size, channels)).astype(np.uint8)


def test_albu_warns_and_is_deterministic_per_seed_and_counter():
    images = tf.constant(_images())
    with pytest.warns(AugmentLeakWarning, match='real images only'):
        fn = make_albu_augment_fn('strong', seed=5)
    a, b = fn(images, 3).numpy(), fn(images, 3).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == images.shape and a.dtype == np.uint8
    assert not np.array_equal(a, fn(images, 4).numpy())
    with pytest.warns(AugmentLeakWarning):
        other = make_albu_augment_fn('strong', seed=6)
    assert not np.array_equal(a, other(images, 3).numpy())
    with pytest.warns(AugmentLeakWarning):
        same = make_albu_augment_fn('strong', seed=5)
    np.testing.assert_array_equal(a, same(images, 3).numpy())


def test_albu_one_transform_per_group(tmp_path):
    # Group 'flips' (p=1) picks exactly one of HorizontalFlip / VerticalFlip; 'blur' has p=0.
    path = _write(tmp_path, 'aug.yaml', CUSTOM_YAML)
    images = _images(n=32, size=8)
    with pytest.warns(AugmentLeakWarning):
        fn = make_albu_augment_fn(path, seed=0)
    out = fn(tf.constant(images), 0).numpy()
    picks = []
    for x, y in zip(images, out):
        h, v = np.array_equal(y, x[:, ::-1]), np.array_equal(y, x[::-1, :])
        assert h != v, 'each image must get exactly one flip'
        picks.append(h)
    assert 0 < sum(picks) < len(picks)  # both members get picked


@pytest.mark.filterwarnings('ignore:HueSaturationValue')  # gray: hue/sat are no-ops
def test_albu_in_parallel_tf_data_reproducible_nchw_and_gray():
    images = _images(n=4, size=16, channels=1)
    nchw = np.transpose(images, [0, 3, 1, 2])
    ds = tf.data.Dataset.from_tensors((tf.constant(nchw), tf.zeros([4, 0]))).repeat(6)

    def run():
        with pytest.warns(AugmentLeakWarning):
            mapped = map_albu_augment(ds, 'default', seed=11, data_format='NCHW',
                                      num_parallel_calls=3)
        assert mapped.element_spec[0].shape == (4, 1, 16, 16)
        return [x.numpy() for x, _ in mapped]

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, nchw) for a in first)
    assert not all(np.array_equal(first[0], a) for a in first[1:])  # per-element seeds differ


def test_albu_without_counter_reproducible_in_parallel_map():
    # The training/dataset.py hook calls fn(images) with no counter inside a parallel map.
    def run(batches, parallel):
        with pytest.warns(AugmentLeakWarning):
            fn = make_albu_augment_fn('strong', seed=2)
        ds = tf.data.Dataset.from_tensor_slices(np.stack(batches))
        mapped = ds.map(fn, num_parallel_calls=parallel, deterministic=True) if parallel \
            else ds.map(fn)
        return [x.numpy() for x in mapped]

    distinct = [_images(n=3, size=8, seed=i) for i in range(8)]
    for a, b in zip(run(distinct, 3), run(distinct, 3)):
        np.testing.assert_array_equal(a, b)
    repeated = run([_images(n=3, size=8, seed=0)] * 4, None)
    assert not np.array_equal(repeated[0], repeated[1])  # later occurrences are reseeded


def test_albu_shape_restored_inside_tf_function():
    with pytest.warns(AugmentLeakWarning):
        fn = make_albu_augment_fn('mild', seed=1)

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.uint8)])
    def run(x):
        y = fn(x)
        assert y.shape.as_list() == [None, 16, 16, 3]
        return y

    assert run(tf.constant(_images())).shape == (6, 16, 16, 3)


# ------------------------------------------------------------------------------------------------
# diff_augment

def _x(n=4, c=3, size=16, seed=0, low=-1.0, dtype=np.float32):
    return np.random.RandomState(seed).uniform(low, 1.0, (n, c, size, size)).astype(dtype)


def _gen(seed=0):
    return tf.random.Generator.from_seed(seed)


def test_p_zero_is_identity_and_seed_deterministic():
    x = _x()
    policy = aug.DIFF_OPS
    np.testing.assert_array_equal(diff_augment(x, policy, 0.0, _gen()).numpy(), x)
    a = diff_augment(x, policy, 1.0, _gen(3)).numpy()
    np.testing.assert_array_equal(a, diff_augment(x, policy, 1.0, _gen(3)).numpy())
    assert not np.array_equal(a, diff_augment(x, policy, 1.0, _gen(4)).numpy())


def test_xflip_and_rotate90():
    x = _x()
    np.testing.assert_array_equal(diff_augment(x, ['xflip'], 1.0, _gen()).numpy(),
                                  x[:, :, :, ::-1])
    out = diff_augment(_x(n=32), ['rotate90'], 1.0, _gen()).numpy()
    ks = []
    for xi, yi in zip(_x(n=32), out):
        ks.append([k for k in range(4) if np.array_equal(yi, np.rot90(xi, k, axes=(1, 2)))])
        assert len(ks[-1]) == 1
    assert {k[0] for k in ks} == {0, 1, 2, 3}


def test_translation_is_zero_padded_integer_shift():
    x = _x(n=16, size=16)
    out = diff_augment(x, ['translation'], 1.0, _gen(1)).numpy()
    limit = 2  # int(16 / 8 + 0.5)
    seen = set()
    for xi, yi in zip(x, out):
        matches = []
        for ty in range(-limit, limit + 1):
            for tx in range(-limit, limit + 1):
                ref = np.zeros_like(xi)
                src = xi[:, max(0, -ty):16 - max(0, ty), max(0, -tx):16 - max(0, tx)]
                ref[:, max(0, ty):16 - max(0, -ty), max(0, tx):16 - max(0, -tx)] = src
                if np.array_equal(ref, yi):
                    matches.append((ty, tx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 3


def test_cutout_zeroes_one_rectangle():
    x = _x(n=16, size=16, low=0.5)  # no zeros in the input
    out = diff_augment(x, ['cutout'], 1.0, _gen(2)).numpy()
    for xi, yi in zip(x, out):
        zero = (yi == 0).all(axis=0)
        assert np.array_equal(yi[:, ~zero], xi[:, ~zero])
        rows, cols = np.where(zero.any(axis=1))[0], np.where(zero.any(axis=0))[0]
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8  # side 8, clipped at most to half
        assert zero[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
        assert zero.sum() == len(rows) * len(cols)


def test_color_is_a_per_sample_affine_map_on_gray_images():
    gray = np.repeat(_x(n=8, c=1), 3, axis=1)  # saturation has no effect on gray
    out = diff_augment(gray, ['color'], 1.0, _gen(5)).numpy()
    for xi, yi in zip(gray, out):
        a, b = np.polyfit(xi.ravel(), yi.ravel(), 1)
        np.testing.assert_allclose(a * xi + b, yi, atol=1e-5)
        assert 0.5 <= a < 1.5  # contrast factor


def test_per_sample_probability():
    x = _x(n=1000, c=1, size=2)
    out = diff_augment(x, ['xflip'], 0.3, _gen(7)).numpy()
    flipped = np.mean([np.array_equal(y, xi[:, :, ::-1]) and not np.array_equal(y, xi)
                       for xi, y in zip(x, out)])
    assert 0.25 < flipped < 0.35


def test_gradients_first_and_second_order_match_finite_differences():
    # D(y) = sum(tanh(theta * y)); R1 = sum((dD/dx)^2) through the augmentation; d R1 / d theta
    # by nested tapes must match central differences with identical random draws.
    x = tf.constant(_x(n=2, size=8, dtype=np.float64))
    policy = ['color', 'translation', 'cutout', 'xflip', 'rotate90']

    gen = _gen(9)

    def r1(theta, nested):
        gen.reset_from_seed(9)  # identical draws on every evaluation
        with tf.GradientTape() as outer:
            outer.watch(theta)
            with tf.GradientTape() as inner:
                inner.watch(x)
                score = tf.reduce_sum(tf.tanh(theta * diff_augment(x, policy, 0.7, gen)))
            grad = inner.gradient(score, x)
            penalty = tf.reduce_sum(tf.square(grad))
        return penalty, (outer.gradient(penalty, theta) if nested else None), grad

    theta = tf.constant(0.8, tf.float64)
    _, d_theta, grad = r1(theta, True)
    # First order: the input gradient against a directional finite difference.
    direction = tf.constant(np.random.RandomState(1).randn(*x.shape))

    def score_at(xv):
        gen.reset_from_seed(9)
        return float(tf.reduce_sum(tf.tanh(theta * diff_augment(xv, policy, 0.7, gen))))

    fd_x = (score_at(x + 1e-6 * direction) - score_at(x - 1e-6 * direction)) / 2e-6
    np.testing.assert_allclose(float(tf.reduce_sum(grad * direction)), fd_x, rtol=1e-6)
    assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0
    h = 1e-5
    fd = (r1(theta + h, False)[0] - r1(theta - h, False)[0]) / (2 * h)
    np.testing.assert_allclose(float(d_theta), float(fd), rtol=1e-5)

    # The same computation traced by tf.function.
    traced = tf.function(lambda t: r1(t, True)[1])
    np.testing.assert_allclose(float(traced(theta)), float(d_theta), rtol=1e-10)


def test_diffaugment_inside_tf_function_reads_ada_p():
    cfg = parse_augment('diff:color,translation,cutout', aug_target=0.6)
    pipe = DiffAugment.from_config(cfg, seed=0)
    assert isinstance(pipe.ada, AdaptiveAugment) and float(pipe.p) == 0.0
    run = tf.function(pipe)
    x = _x()
    np.testing.assert_array_equal(run(x).numpy(), x)
    pipe.ada.p.assign(1.0)
    assert not np.allclose(run(x).numpy(), x)  # same trace, new p


# ------------------------------------------------------------------------------------------------
# AdaptiveAugment

def test_ada_adjusts_every_interval_by_images_over_ada_kimg():
    ada = AdaptiveAugment(target=0.6, interval=2, ada_kimg=0.1)  # 100 images for p: 0 -> 1
    positive = tf.constant([[1.5], [0.2], [3.0], [0.1]])  # r_t = 1 > 0.6
    ada.update(positive)
    assert float(ada.p) == 0.0  # no adjustment before `interval` steps
    ada.update(positive)
    assert float(ada.p) == pytest.approx(8 / 100)  # batch 4 * interval 2 / (0.1 * 1000)
    assert float(ada.r_t) == pytest.approx(1.0)
    mixed = tf.constant([[1.0], [-1.0], [-2.0], [0.5]])  # r_t = 0 < 0.6
    step = tf.function(ada.update)
    step(mixed)
    step(mixed)
    assert float(ada.p) == pytest.approx(0.0, abs=1e-7)
    step(mixed)
    step(mixed)
    assert float(ada.p) == 0.0  # clipped at 0
    for _ in range(40):
        step(positive)
    assert float(ada.p) == 1.0  # clipped at 1


def test_ada_state_round_trip():
    ada = AdaptiveAugment(target=0.6, interval=3, ada_kimg=0.05)
    scores = [tf.constant(np.random.RandomState(i).randn(4, 1).astype(np.float32) + 0.5)
              for i in range(7)]
    for s in scores[:5]:
        ada.update(s)
    state = json.loads(json.dumps(ada.get_state()))
    resumed = AdaptiveAugment(target=0.6, interval=3, ada_kimg=0.05)
    resumed.set_state(state)
    for s in scores[5:]:
        ada.update(s)
        resumed.update(s)
    assert ada.get_state() == resumed.get_state()
    assert ada.get_state()['p'] > 0
    with pytest.raises(AugmentSpecError, match='keys'):
        resumed.set_state({'p': 0.5})


def test_no_unexpected_warnings_for_presets():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for preset in aug.ALBU_PRESETS:
            aug.build_albu_pipeline(parse_augment(f'albu:{preset}').albu_spec)
