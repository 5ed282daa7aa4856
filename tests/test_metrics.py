"""FID, KID, PPL and LPIPS maths, image sets, cached statistics and result files (metrics/)."""
import json
import os

import numpy as np
import pytest
import scipy.linalg

from conftest import fixture_path
from metrics import (frechet_inception_distance as fid_lib, image_sets, kernel_inception_distance as kid_lib,
                     metric_base, perceptual_path_length as ppl_lib, vgg16)
from test_metrics_torchscript import OrderedState, write_torch_legacy, write_torch_zip


def random_spd(rng, d, rank=None):
    a = rng.randn(d, rank or d)
    return a @ a.T / (rank or d) + (0 if rank else 0.1 * np.eye(d))


# ------------------------------------------------------------------------------------------------
# Fréchet distance

def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    rng = np.random.RandomState(0)
    mu1, mu2 = rng.randn(6), rng.randn(6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    want = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    for impl in fid_lib.IMPLS:
        assert fid_lib.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), impl=impl) == pytest.approx(want, rel=1e-10)


def test_frechet_distance_of_scaled_covariance_is_closed_form():
    # sqrtm(S c S) = sqrt(c) S for a covariance S: FID = |dmu|^2 + (1 + c - 2 sqrt(c)) Tr S.
    rng = np.random.RandomState(1)
    s, c = random_spd(rng, 20), 2.7
    mu1, mu2 = rng.randn(20), rng.randn(20)
    want = np.sum((mu1 - mu2) ** 2) + (1 + c - 2 * np.sqrt(c)) * np.trace(s)
    assert fid_lib.frechet_distance(mu1, s, mu2, c * s) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize('rank', [None, 5])
def test_frechet_distance_eigh_matches_scipy_sqrtm(rank):
    # rank 5 in 30 dimensions: singular covariances, as with fewer images than features.
    rng = np.random.RandomState(2)
    s1, s2 = random_spd(rng, 30, rank), random_spd(rng, 30, rank)
    mu1, mu2 = rng.randn(30), rng.randn(30)
    fast = fid_lib.frechet_distance(mu1, s1, mu2, s2, impl='eigh')
    ref = fid_lib.frechet_distance(mu1, s1, mu2, s2, impl='scipy')
    assert np.isfinite(fast) and fast == pytest.approx(ref, rel=1e-6, abs=1e-8)
    assert np.trace(scipy.linalg.sqrtm(s1 @ s2)).real == pytest.approx(fid_lib.trace_sqrtm_product(s1, s2), rel=1e-6)


@pytest.mark.parametrize('n1,n2', [(10, 25), (40, 7), (80, 90)])
def test_fid_from_features_matches_covariance_forms(n1, n2):
    # 64 dimensions: (10, 25) and (40, 7) take the low-rank path, (80, 90) the covariance one.
    rng = np.random.RandomState(n1)
    a, b = rng.randn(n1, 64), rng.randn(n2, 64) * 0.7 + 0.1
    stats_a, stats_b = fid_lib.feature_statistics(a), fid_lib.feature_statistics(b)
    want = fid_lib.frechet_distance(*stats_a, *stats_b, impl='scipy')
    assert fid_lib.fid_from_features(a, b) == pytest.approx(want, rel=1e-7)
    assert fid_lib.trace_sqrtm_from_features(a, b) == pytest.approx(
        fid_lib.trace_sqrtm_product(stats_a[1], stats_b[1]), rel=1e-7)


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    rng = np.random.RandomState(3)
    a, b = rng.randn(300, 64), rng.randn(200, 64) * 1.3 + 0.2
    stats_a, stats_b = fid_lib.feature_statistics(a), fid_lib.feature_statistics(b)
    assert abs(fid_lib.frechet_distance(*stats_a, *stats_a)) < 1e-9
    ab, ba = fid_lib.frechet_distance(*stats_a, *stats_b), fid_lib.frechet_distance(*stats_b, *stats_a)
    assert ab > 1 and ab == pytest.approx(ba, rel=1e-10)
    np.testing.assert_allclose(stats_a[1], np.cov(a, rowvar=False))     # N - 1, as SG1/SG2
    with pytest.raises(ValueError, match='at least 2'):
        fid_lib.feature_statistics(a[:1])


# ------------------------------------------------------------------------------------------------
# KID

def kid_brute_force(real, fake, num_subsets, max_subset_size, seed):
    """The unbiased MMD^2 estimate with a double loop, on the same subsets."""
    n = real.shape[1]
    k = lambda a, b: (float(a @ b) / n + 1) ** 3
    m = min(len(real), len(fake), max_subset_size)
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        same = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
        total += same / (m * (m - 1)) - 2 * cross / (m * m)
    return total / num_subsets


def test_kid_matches_brute_force():
    rng = np.random.RandomState(4)
    real, fake = rng.randn(9, 5), rng.randn(7, 5) + 0.5
    got = kid_lib.kernel_inception_distance(real, fake, num_subsets=4, max_subset_size=6, seed=11)
    assert got == pytest.approx(kid_brute_force(real, fake, 4, 6, 11), rel=1e-12)
    assert got > 0


def test_kid_of_two_samples_of_one_distribution_is_near_zero():
    rng = np.random.RandomState(5)
    x = rng.randn(2000, 16)
    same = kid_lib.kernel_inception_distance(x[:1000], x[1000:], num_subsets=20, max_subset_size=500)
    other = kid_lib.kernel_inception_distance(x[:1000], x[1000:] + 0.3, num_subsets=20, max_subset_size=500)
    assert abs(same) < 0.05 * other
    with pytest.raises(ValueError, match='at least 2'):
        kid_lib.kernel_inception_distance(x[:1], x[:5])


# ------------------------------------------------------------------------------------------------
# Names

@pytest.mark.parametrize('name,want', [('fid', ('fid', None)), ('fid50k', ('fid', 50000)), ('kid1k', ('kid', 1000)),
                                       ('fid500', ('fid', 500)), ('fid50k_full', ('fid', 50000)),
                                       ('kid_full', ('kid', None)), ('ppl_wend', ('ppl_wend', None)),
                                       ('ppl2_wend', ('ppl2_wend', None))])
def test_metric_names(name, want):
    assert metric_base.parse_metric_name(name) == want


@pytest.mark.parametrize('name', ['fid50x', 'is50k', 'ppl_wend1k', 'fid1', 'FID', 'fid_fulll'])
def test_bad_metric_names(name):
    with pytest.raises(metric_base.MetricError, match=name):
        metric_base.parse_metric_name(name)


# ------------------------------------------------------------------------------------------------
# PPL pieces

def test_slerp_and_lerp():
    rng = np.random.RandomState(6)
    a, b = rng.randn(5, 8), rng.randn(5, 8)
    t = rng.uniform(size=[5, 1])
    s = ppl_lib.slerp(a, b, t)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(ppl_lib.slerp(a, b, np.zeros([5, 1])), ppl_lib.normalize(a), atol=1e-12)
    np.testing.assert_allclose(ppl_lib.slerp(a, b, np.ones([5, 1])), ppl_lib.normalize(b), atol=1e-12)
    angle = lambda u, v: np.arccos(np.clip(np.sum(ppl_lib.normalize(u) * ppl_lib.normalize(v), axis=1), -1, 1))
    np.testing.assert_allclose(angle(a, s), t[:, 0] * angle(a, b), rtol=1e-9)    # constant angular speed
    np.testing.assert_allclose(ppl_lib.lerp(a, b, t), a * (1 - t) + b * t, rtol=1e-12)


def test_crop_downsample_and_filtered_mean():
    x = np.arange(2 * 3 * 1024 * 1024, dtype=np.float64).reshape(2, 3, 1024, 1024)
    y = ppl_lib.crop_and_downsample(x, crop=True)
    assert y.shape == (2, 3, 256, 256)              # crop 512 x 512, then StyleGAN2's factor 2
    np.testing.assert_allclose(y[0, 0, 0, 0], x[0, 0, 384:386, 256:258].mean())
    assert ppl_lib.crop_and_downsample(x[:, :, :64, :64], crop=True).shape == (2, 3, 32, 32)
    assert ppl_lib.crop_and_downsample(x[:, :, :64, :64], crop=False).shape == (2, 3, 64, 64)
    d = np.arange(1000.0)
    d[0], d[-1] = -1e9, 1e9
    lo, hi = np.percentile(d, 1, method='lower'), np.percentile(d, 99, method='higher')
    assert ppl_lib.filtered_mean(d) == pytest.approx(d[(d >= lo) & (d <= hi)].mean())
    assert abs(ppl_lib.filtered_mean(d)) < 1000


class _LinearNet:
    """A network with the official API, linear in its input: components for PPL's tests."""

    def __init__(self, run, **attrs):
        self._run, self.vars, self.static_kwargs = run, {}, {}
        self.__dict__.update(attrs)

    def run(self, *args, **kwargs):
        return self._run(*args)


def linear_generator(seed, z_dim=6, rows=3, res=16):
    from dnnlib.util import EasyDict
    rng = np.random.RandomState(seed)
    a = rng.randn(z_dim, z_dim).astype(np.float32) * 0.3
    b = rng.randn(z_dim, 3 * res * res).astype(np.float32) * 0.05
    mapping = _LinearNet(lambda z, labels: np.repeat((z @ a)[:, None], rows, axis=1))
    synthesis = _LinearNet(lambda w: (w[:, 0] @ b).reshape(-1, 3, res, res))
    gs = _LinearNet(None, input_shape=[None, z_dim], input_shapes=[[None, z_dim], [None, 0]],
                    output_shape=[None, 3, res, res], components=EasyDict(mapping=mapping, synthesis=synthesis))
    return gs, a, b


class SquaredL2:
    weights = 'squared L2 (test stub)'

    def distance(self, x, y):
        return np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2, axis=(1, 2, 3))


def test_ppl_of_a_linear_generator_has_a_closed_form():
    # w-space, t = 0, no crop: the images differ by eps * (w1 - w0) B * 127.5 exactly.
    gs, a, b = linear_generator(0)
    num, seed = 40, 3
    result = metric_base.compute('ppl2_wend', Gs=gs, num=num, vgg16=SquaredL2(), seed=seed,
                                 minibatch_size=2 * num, progress=False)
    z = np.random.RandomState(seed).randn(2 * num, 6).astype(np.float32)
    w = z.astype(np.float64) @ a
    want = ppl_lib.filtered_mean(np.sum(((w[1::2] - w[0::2]) @ b * 127.5) ** 2, axis=1))
    # float32 dlatents: eps = 1e-4 steps keep about 3 significant digits of the difference.
    assert result['results']['ppl2_wend'] == pytest.approx(want, rel=1e-2)
    assert result['num_images'] == num and result['weights'] == SquaredL2.weights


@pytest.fixture(scope='module')
def sg1_Gs():
    import tf2
    return tf2.load_network(fixture_path('sg1_r64.pkl'))[2]


def test_ppl_pipeline_on_a_real_network_with_a_random_vgg(sg1_Gs):
    lpips = vgg16.LPIPS.random(0)
    noise_before = {n: np.array(sg1_Gs.components.synthesis.get_var(n)) for n in ppl_lib._noise_names(
        sg1_Gs.components.synthesis)}
    assert len(noise_before) == 10
    runs = [metric_base.compute(name, Gs=sg1_Gs, num=6, vgg16=lpips, seed=1, minibatch_size=6, progress=False)
            for name in ('ppl_wend', 'ppl_wend', 'ppl_zfull')]
    values = [r['results'][r['metric']] for r in runs]
    assert all(np.isfinite(v) and v > 0 for v in values)
    assert values[0] == values[1] and values[2] != values[0]
    for name, value in noise_before.items():          # the network's own noise is restored
        np.testing.assert_array_equal(sg1_Gs.components.synthesis.get_var(name), value)


def test_ppl_refuses_without_vgg_weights(sg1_Gs, tmp_path):
    with pytest.raises(metric_base.MetricError, match='--vgg16 vgg16_zhang_perceptual.pkl'):
        metric_base.prepare('ppl_wend', Gs=sg1_Gs)
    with pytest.raises(metric_base.MetricError, match='--lpips'):
        path = write_torch_legacy(tmp_path / 'vgg16.pth', OrderedState(x=np.zeros(2, np.float32)))
        metric_base.prepare('ppl_wend', Gs=sg1_Gs, vgg16=(path, None))
    with pytest.raises(metric_base.MetricError, match='file not found'):
        metric_base.prepare('ppl_wend', Gs=sg1_Gs, vgg16=(str(tmp_path / 'none.pkl'), None))


# ------------------------------------------------------------------------------------------------
# LPIPS

def np_lpips(img0, img1, convs, lins):
    """LPIPS v0.1 in float64 NumPy (spec 3.6), NCHW [0, 255] images."""
    from numpy.lib.stride_tricks import sliding_window_view

    def feats(img):
        x = (img.transpose(0, 2, 3, 1) / 127.5 - 1 - vgg16.SHIFT.astype(np.float64)) / vgg16.SCALE.astype(np.float64)
        taps = []
        for (name, _, _), (k, bias) in zip(vgg16.VGG16_CONVS, convs):
            if name.endswith('_1') and name != 'conv1_1':
                n, h, w, c = x.shape
                x = x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
            win = sliding_window_view(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), (3, 3), axis=(1, 2))
            x = np.maximum(np.tensordot(win, k.astype(np.float64), axes=([4, 5, 3], [0, 1, 2])) + bias, 0)
            if name in vgg16.TAPS:
                taps.append(x / (np.sqrt(np.sum(x ** 2, axis=-1, keepdims=True)) + 1e-10))
        return taps
    return sum(np.mean(np.sum((a - b) ** 2 * w, axis=-1), axis=(1, 2))
               for a, b, w in zip(feats(img0), feats(img1), lins))


def random_vgg(seed):
    rng = np.random.RandomState(seed)
    convs = [(rng.randn(3, 3, cin, cout).astype(np.float32) * np.sqrt(2 / (9 * cin)),
              rng.randn(cout).astype(np.float32) * 0.1) for _, cin, cout in vgg16.VGG16_CONVS]
    return convs, [rng.uniform(0, 1, c).astype(np.float32) for c in vgg16.TAP_CHANNELS]


@pytest.fixture(scope='module')
def vgg_arrays():
    return random_vgg(7)


def test_lpips_matches_numpy_twin(vgg_arrays):
    convs, lins = vgg_arrays
    rng = np.random.RandomState(8)
    a = rng.uniform(0, 255, (3, 3, 32, 32)).astype(np.float32)
    b = np.clip(a + rng.randn(*a.shape).astype(np.float32) * 20, 0, 255)
    got = vgg16.LPIPS(convs, lins, 'test').distance(a, b)
    want = np_lpips(a.astype(np.float64), b.astype(np.float64), convs, lins)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert np.all(vgg16.LPIPS(convs, lins, 'test').distance(a, a) == 0)


def test_lpips_from_torchvision_and_lpips_files(vgg_arrays, tmp_path):
    convs, lins = vgg_arrays
    state = OrderedState()
    for (kernel, bias), index in zip(convs, vgg16.TORCHVISION_INDEX):
        state[f'features.{index}.weight'] = np.transpose(kernel, (3, 2, 0, 1)).copy()   # OIHW
        state[f'features.{index}.bias'] = bias
    state['classifier.0.weight'] = np.zeros([4, 3], np.float32)                          # ignored
    vgg_path = write_torch_legacy(tmp_path / 'vgg16-397923af.pth', state)                # 2017: legacy format
    lin_path = write_torch_zip(tmp_path / 'vgg.pth', OrderedState(
        **{f'lin{l}.model.1.weight': w.reshape(1, -1, 1, 1) for l, w in enumerate(lins)}))
    lpips = vgg16.load_lpips(vgg_path, lin_path)
    assert lpips.weights.startswith('vgg16-397923af.pth (sha256 ') and ' + vgg.pth (sha256 ' in lpips.weights
    rng = np.random.RandomState(9)
    a, b = rng.uniform(0, 255, (2, 3, 16, 16)), rng.uniform(0, 255, (2, 3, 16, 16))
    np.testing.assert_array_equal(lpips.distance(a, b), vgg16.LPIPS(convs, lins, 'x').distance(a, b))
    with pytest.raises(vgg16.LPIPSWeightsError, match='lin0.model.1.weight'):
        vgg16.load_lpips(vgg_path, vgg_path)


def test_lpips_from_an_nvidia_style_pickle(vgg_arrays, tmp_path):
    from dnnlib import legacy_pickle
    convs, lins = vgg_arrays
    variables = {}
    for (name, _, _), (kernel, bias) in zip(vgg16.VGG16_CONVS, convs):
        variables[f'{name}/weight'], variables[f'{name}/bias'] = kernel, bias
    for l, w in enumerate(lins):
        variables[f'lin{l}/weight'] = w.reshape(1, 1, -1, 1)
    path = str(tmp_path / 'vgg16_zhang_perceptual.pkl')
    legacy_pickle.save(legacy_pickle.NetworkState('vgg16_perceptual_distance', 'lpips_network', variables=variables),
                       path)
    lpips = vgg16.load_lpips(path)
    a = np.random.RandomState(10).uniform(0, 255, (2, 3, 16, 16))
    np.testing.assert_array_equal(lpips.distance(a, a[::-1]), vgg16.LPIPS(convs, lins, 'x').distance(a, a[::-1]))


# ------------------------------------------------------------------------------------------------
# Image sets

def write_png_folder(folder, images):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):                  # [C, H, W] uint8
        Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(
            os.path.join(folder, f'img{i:04d}.png'))
    return str(folder)


def write_tfrecords(folder, images, labels=None):
    import tensorflow as tf
    os.makedirs(folder, exist_ok=True)
    res_log2 = int(np.log2(images.shape[2]))
    with tf.io.TFRecordWriter(os.path.join(folder, f'{os.path.basename(folder)}-r{res_log2:02d}.tfrecords')) as w:
        for img in images:
            w.write(tf.train.Example(features=tf.train.Features(feature={
                'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=img.shape)),
                'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[img.tobytes()]))})).SerializeToString())
    if labels is not None:
        with open(os.path.join(folder, f'{os.path.basename(folder)}-rxx.labels'), 'wb') as f:
            np.save(f, labels)
    return str(folder)


def random_images(seed, n, channels=3, res=16):
    return np.random.RandomState(seed).randint(0, 256, (n, channels, res, res)).astype(np.uint8)


def test_folder_and_tfrecord_sets_give_the_same_images(tmp_path):
    images = random_images(0, 7)
    folder = image_sets.open_image_set(write_png_folder(tmp_path / 'pngs', images))
    records = image_sets.open_image_set(write_tfrecords(tmp_path / 'recs', images, np.eye(7, dtype=np.float32)))
    assert (folder.kind, records.kind) == ('folder', 'tfrecords')
    for s in (folder, records):
        assert (s.num_images, s.channels, s.resolution) == (7, 3, 16)
        np.testing.assert_array_equal(np.concatenate(list(s.iterate(3, 5))), images[:5])
    assert records.label_size == 7 and folder.label_size == 0
    gray = image_sets.open_image_set(write_png_folder(tmp_path / 'gray', random_images(1, 3, channels=1)))
    assert gray.channels == 1 and next(gray.iterate(8, 3)).shape == (3, 1, 16, 16)


def test_fingerprint_follows_content(tmp_path):
    folder = write_png_folder(tmp_path / 'a', random_images(0, 3))
    before = image_sets.open_image_set(folder).fingerprint(str(tmp_path / 'cache'))
    assert image_sets.open_image_set(folder).fingerprint(str(tmp_path / 'cache')) == before
    write_png_folder(tmp_path / 'a', random_images(1, 1))          # img0000.png changes
    assert image_sets.open_image_set(folder).fingerprint(str(tmp_path / 'cache')) != before


def test_bad_image_sets(tmp_path):
    from PIL import Image
    with pytest.raises(image_sets.ImageSetError, match='no such folder'):
        image_sets.open_image_set(str(tmp_path / 'nothing'))
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(image_sets.ImageSetError, match='no images'):
        image_sets.open_image_set(str(tmp_path / 'empty'))
    mixed = write_png_folder(tmp_path / 'mixed', random_images(0, 2))
    Image.new('RGB', (8, 8)).save(os.path.join(mixed, 'img9999.png'))
    with pytest.raises(image_sets.ImageSetError, match='img9999.png'):
        list(image_sets.open_image_set(mixed).iterate(4, 3))
    with open(os.path.join(tmp_path / 'empty', 'broken.png'), 'wb') as f:
        f.write(b'not a png')
    with pytest.raises(image_sets.ImageSetError, match='broken.png'):
        image_sets.open_image_set(str(tmp_path / 'empty'))


# ------------------------------------------------------------------------------------------------
# compute(): the narrow Inception of test_metrics_inception stands in for the real one.

@pytest.fixture(scope='module')
def narrow_inception(tmp_path_factory):
    from metrics.inception import InceptionFeatures
    from test_metrics_inception import DIVISOR, random_params, write_inception_torchscript
    path = write_inception_torchscript(tmp_path_factory.mktemp('narrow') / 'narrow.pt', random_params(0))
    return InceptionFeatures(path, channel_divisor=DIVISOR)


class CountingFeatures:
    """Wraps a feature network and counts the images it sees."""

    def __init__(self, net):
        self.net, self.seen = net, 0
        self.weights, self.detector_id = net.weights, net.detector_id

    def __call__(self, images):
        self.seen += len(images)
        return self.net(images)


def test_compare_two_sets_with_cached_statistics(narrow_inception, tmp_path):
    a = write_png_folder(tmp_path / 'a', random_images(0, 6))
    b = write_png_folder(tmp_path / 'b', random_images(1, 5) // 2)
    net = CountingFeatures(narrow_inception)
    kw = dict(inception=net, cache_dir=str(tmp_path / 'cache'), progress=False)
    same = metric_base.compute('fid', data=a, compare=a, **kw)
    assert abs(same['results']['fid']) < 1e-6 and net.seen == 6      # the second side came from the cache
    ab = metric_base.compute('fid', data=a, compare=b, **kw)
    ba = metric_base.compute('fid', data=b, compare=a, **kw)
    assert net.seen == 11 and ab['results']['fid'] == pytest.approx(ba['results']['fid'], rel=1e-9)
    assert ab['results']['fid'] > 1e-3                            # far above the 1e-6 of a set with itself
    assert (ab['num_images'], ab['num_reals'], ab['weights']) == (5, 6, narrow_inception.weights)
    kid = metric_base.compute('kid4', data=a, compare=b, **kw)
    assert net.seen == 11 + 8 and kid['num_images'] == 4      # a new count is a new cache entry
    with pytest.raises(metric_base.MetricError, match='needs 6 images, the set has 5'):
        metric_base.prepare('fid6', data=a, compare=b, **kw)


def test_generated_against_dataset(narrow_inception, sg1_Gs, tmp_path):
    data = write_tfrecords(tmp_path / 'data', random_images(2, 5, res=64))
    kw = dict(Gs=sg1_Gs, data=data, inception=narrow_inception, cache_dir=None, progress=False, seed=4,
              minibatch_size=6, seed_noise=True)
    r1, r2 = metric_base.compute('fid6', **kw), metric_base.compute('fid6', **kw)
    assert r1['results'] == r2['results'] and np.isfinite(r1['results']['fid6'])
    assert (r1['num_images'], r1['num_reals']) == (6, 5)
    assert metric_base.prepare('fid3', **kw).counts() == (3, 3)
    assert metric_base.prepare('fid3_full', **kw).counts() == (5, 3)       # every real, as ADA's _full
    with pytest.raises(metric_base.MetricError, match='_full takes every real image'):
        metric_base.prepare('fid3_full', data=data, compare=data, inception=narrow_inception)
    assert set(r1) >= {'metric', 'results', 'num_images', 'weights', 'total_time'}


def test_prepare_once_run_per_snapshot(narrow_inception, tmp_path):
    # The training-loop pattern: one prepare, one run per snapshot; the reals are extracted once.
    gs, _, b = linear_generator(1, res=32)
    gs.run = lambda z, labels, **kw: np.tanh((z @ b).reshape(-1, 3, 32, 32))
    data = write_png_folder(tmp_path / 'reals', random_images(3, 4, res=32))
    net = CountingFeatures(narrow_inception)
    ctx = metric_base.prepare('fid4', Gs=gs, data=data, inception=net, cache_dir=None, progress=False)
    first = metric_base.run(ctx)['results']['fid4']
    b *= 3                                                  # the "network" trains on
    second = metric_base.run(ctx)['results']['fid4']
    assert first != second and net.seen == 4 + 4 + 4


def test_grayscale_and_rgb_are_not_compared(narrow_inception, sg1_Gs, tmp_path):
    gray = write_png_folder(tmp_path / 'gray', random_images(0, 3, channels=1))
    rgb = write_png_folder(tmp_path / 'rgb', random_images(0, 3))
    for kw in (dict(data=gray, compare=rgb), dict(data=gray, Gs=sg1_Gs)):
        with pytest.raises(metric_base.MetricError, match='is grayscale and the other side is RGB'):
            metric_base.prepare('fid', inception=narrow_inception, **kw)
    both = metric_base.compute('fid', data=gray, compare=gray, inception=narrow_inception, cache_dir=None,
                               progress=False)
    assert abs(both['results']['fid']) < 1e-6                   # grayscale sets are tiled to RGB


def test_append_jsonl(tmp_path):
    result = dict(metric='fid1k', results={'fid1k': 1.5}, num_images=1000, weights='w', total_time=1.0)
    path = metric_base.append_jsonl(result, str(tmp_path / 'run'))
    metric_base.append_jsonl(dict(result, results={'fid1k': 2.5}), str(tmp_path / 'run'))
    assert os.path.basename(path) == 'metric-fid1k.jsonl'
    lines = [json.loads(line) for line in open(path)]
    assert [line['results']['fid1k'] for line in lines] == [1.5, 2.5]
    assert os.listdir(tmp_path / 'run') == ['metric-fid1k.jsonl']


@pytest.mark.slow
def test_ppl_agrees_between_implementations():
    # The same seeds through tf2 and legacy_tf: the distances are LPIPS / 1e-8, so float32
    # differences of the two syntheses show; 1 % holds them together.
    from editing.impl import load_network
    lpips = vgg16.LPIPS.random(0)
    values = [metric_base.compute('ppl_wend', Gs=load_network(fixture_path('sg2_r64.pkl'), impl=impl)[2], num=8,
                                  vgg16=lpips, seed=1, minibatch_size=8, progress=False)['results']['ppl_wend']
              for impl in ('tf2', 'legacy')]
    assert values[0] == pytest.approx(values[1], rel=1e-2)
