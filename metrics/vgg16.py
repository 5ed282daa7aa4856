"""LPIPS (Zhang et al. 2018, v0.1 "lin", VGG16) in Keras, from weights read as plain data (spec 3.6).

    distance(img0, img1) for two NCHW float batches in [0, 255] -> [N]

1. x / 127.5 - 1, then (x - shift) / scale per channel (shift -0.030, -0.088, -0.188; scale
   0.458, 0.448, 0.450);
2. VGG16's `features` (3x3 SAME convolutions with bias and ReLU, 2x2 max pools), tapped after
   relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3;
3. per tap: unit-normalise along channels (f / (|f| + 1e-10)), squared difference, weighted by
   the non-negative `lin` weights, summed over channels and averaged over H x W;
4. the sum over the five taps.

Weights (no package ships them; `load_lpips` refuses without one, naming the files to supply):

* NVIDIA's `vgg16_zhang_perceptual.pkl` (dnnlib Network pickle, safe reader): its variable
  names are not documented (spec 7.1), so the 13 convolutions (kernel + bias) and the 5 `lin`
  vectors are taken by shape, in stored order, and the inventory is printed. Whether it is
  numerically identical to torchvision + lpips is not verified;
* torchvision's `vgg16-397923af.pth` (state dict `features.<i>.weight/bias`) together with
  lpips' `weights/v0.1/vgg.pth` (`lin<l>.model.1.weight`), read with metrics.torchscript.
"""

import hashlib
import os
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

# (name, in channels, out channels), a 'pool' between stages; taps after the last conv of a stage.
VGG16_CONVS = [('conv1_1', 3, 64), ('conv1_2', 64, 64), ('conv2_1', 64, 128), ('conv2_2', 128, 128),
               ('conv3_1', 128, 256), ('conv3_2', 256, 256), ('conv3_3', 256, 256),
               ('conv4_1', 256, 512), ('conv4_2', 512, 512), ('conv4_3', 512, 512),
               ('conv5_1', 512, 512), ('conv5_2', 512, 512), ('conv5_3', 512, 512)]
TAPS = ('conv1_2', 'conv2_2', 'conv3_3', 'conv4_3', 'conv5_3')
TAP_CHANNELS = (64, 128, 256, 512, 512)
TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)   # features.<i> of each conv
SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
NEEDS_WEIGHTS = ('needs VGG16 weights, which no package ships: pass --vgg16 vgg16_zhang_perceptual.pkl '
                 '(NVIDIA\'s), or --vgg16 vgg16-397923af.pth (torchvision) together with --lpips vgg.pth '
                 '(the lpips package\'s weights/v0.1/vgg.pth)')


class LPIPSWeightsError(ValueError):
    """Missing or unusable VGG16 / LPIPS weights; the message names the file or what to supply."""


def _sha12(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()[:12]


class LPIPS:
    """The distance network. `weights` names the files it was built from.

    Args:
        convs: 13 (kernel HWIO float32, bias) pairs in VGG16_CONVS order.
        lins: 5 non-negative weight vectors, one per tap.
        weights: the text the results report.
    """

    def __init__(self, convs: Sequence[Tuple[np.ndarray, np.ndarray]], lins: Sequence[np.ndarray],
                 weights: str):
        import tensorflow as tf
        _check_shapes(convs, lins, weights)
        self.weights = weights
        self.kernels = [tf.constant(k, tf.float32) for k, _ in convs]
        self.biases = [tf.constant(b, tf.float32) for _, b in convs]
        self.lins = [tf.constant(np.reshape(w, [-1]), tf.float32) for w in lins]
        self._distance = tf.function(self._graph, reduce_retracing=True)

    @classmethod
    def random(cls, seed: int) -> 'LPIPS':
        """He-initialised VGG16 and uniform lin weights from RandomState(seed): for tests."""
        rng = np.random.RandomState(seed)
        convs = [(rng.randn(3, 3, cin, cout).astype(np.float32) * np.sqrt(2 / (9 * cin)),
                  rng.randn(cout).astype(np.float32) * 0.1) for _, cin, cout in VGG16_CONVS]
        lins = [rng.uniform(0, 1, c).astype(np.float32) for c in TAP_CHANNELS]
        return cls(convs, lins, f'random VGG16 (seed {seed})')

    def features(self, images):                                       # [N, 3, H, W] in [0, 255]
        """Unit-normalised taps, each [N, H_l, W_l, C_l]."""
        import tensorflow as tf
        x = tf.transpose(tf.convert_to_tensor(images, tf.float32), [0, 2, 3, 1])   # [N, H, W, 3]
        x = (x / 127.5 - 1 - SHIFT) / SCALE
        taps = []
        for (name, _, _), kernel, bias in zip(VGG16_CONVS, self.kernels, self.biases):
            if name.endswith('_1') and name != 'conv1_1':
                x = tf.nn.max_pool2d(x, 2, 2, 'VALID')
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, 'SAME') + bias)
            if name in TAPS:
                norm = tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1, keepdims=True))
                taps.append(x / (norm + 1e-10))
        return taps

    def _graph(self, img0, img1):
        import tensorflow as tf
        f0, f1 = self.features(img0), self.features(img1)
        return tf.add_n([tf.reduce_mean(tf.reduce_sum(tf.square(a - b) * w, axis=-1), axis=[1, 2])
                         for a, b, w in zip(f0, f1, self.lins)])                    # [N]

    def distance(self, img0: np.ndarray, img1: np.ndarray) -> np.ndarray:
        """LPIPS of two NCHW float batches in [0, 255] (grayscale is tiled to RGB): float32 [N]."""
        img0, img1 = (np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x for x in (img0, img1))
        if img0.shape != img1.shape or img0.shape[1] != 3:
            raise ValueError(f'LPIPS needs two NCHW batches of one shape, got {img0.shape} and {img1.shape}')
        return self._distance(np.asarray(img0, np.float32), np.asarray(img1, np.float32)).numpy()


def _check_shapes(convs, lins, where: str) -> None:
    if len(convs) != len(VGG16_CONVS) or len(lins) != len(TAPS):
        raise LPIPSWeightsError(f'{where}: {len(convs)} convolutions and {len(lins)} lin layers; LPIPS-VGG16 '
                                f'has {len(VGG16_CONVS)} and {len(TAPS)}')
    for (name, cin, cout), (kernel, bias) in zip(VGG16_CONVS, convs):
        if tuple(np.shape(kernel)) != (3, 3, cin, cout) or tuple(np.shape(bias)) != (cout,):
            raise LPIPSWeightsError(f'{where}: {name} has kernel {np.shape(kernel)} and bias {np.shape(bias)}, '
                                    f'expected (3, 3, {cin}, {cout}) and ({cout},)')
    for c, w in zip(TAP_CHANNELS, lins):
        if np.size(w) != c:
            raise LPIPSWeightsError(f'{where}: a lin layer has {np.size(w)} weights, expected {c}')


# ------------------------------------------------------------------------------------------------
# Reading the weights.

def _state_dict(path: str, flag: str) -> dict:
    from metrics import torchscript
    try:
        obj = torchscript.load(path)
    except torchscript.TorchFileError as e:
        raise LPIPSWeightsError(f'{flag}: {e}') from None
    return dict(torchscript.named_tensors(obj))


def read_torchvision_lpips(vgg_path: str, lin_path: str) -> LPIPS:
    """torchvision's vgg16-397923af.pth plus lpips' v0.1 vgg.pth."""
    tensors = _state_dict(vgg_path, '--vgg16')
    convs = []
    for (name, _, _), index in zip(VGG16_CONVS, TORCHVISION_INDEX):
        w, b = tensors.get(f'features.{index}.weight'), tensors.get(f'features.{index}.bias')
        if w is None or b is None or w.ndim != 4:
            raise LPIPSWeightsError(f'{vgg_path}: no features.{index}.weight/bias ({name}); expected '
                                    'torchvision\'s VGG16 state dict (vgg16-397923af.pth)')
        convs.append((np.transpose(w, (2, 3, 1, 0)).astype(np.float32), b.astype(np.float32)))
    lin_tensors = _state_dict(lin_path, '--lpips')
    lins = []
    for l in range(len(TAPS)):
        w = lin_tensors.get(f'lin{l}.model.1.weight')
        if w is None:
            raise LPIPSWeightsError(f'{lin_path}: no lin{l}.model.1.weight; expected lpips\' '
                                    'weights/v0.1/vgg.pth')
        lins.append(np.reshape(w, [-1]).astype(np.float32))
    weights = (f'{os.path.basename(vgg_path)} (sha256 {_sha12(vgg_path)}) + '
               f'{os.path.basename(lin_path)} (sha256 {_sha12(lin_path)})')
    return LPIPS(convs, lins, weights)


def read_network_pickle_lpips(path: str) -> LPIPS:
    """NVIDIA's vgg16_zhang_perceptual.pkl, by introspection (see the module docstring)."""
    from dnnlib import legacy_pickle
    try:
        nets = legacy_pickle.load(path)
    except legacy_pickle.PickleFormatError as e:
        raise LPIPSWeightsError(f'--vgg16: {e}') from None
    net = nets[0] if isinstance(nets, (tuple, list)) and nets else nets
    if not isinstance(net, legacy_pickle.NetworkState):
        raise LPIPSWeightsError(f'{path}: holds no network (expected vgg16_zhang_perceptual.pkl)')
    variables = list(net.all_variables().items())
    print(f'{path}: {net.build_func_name}, {len(variables)} variables: '
          + ', '.join(f'{n} {tuple(np.shape(v))}' for n, v in variables[:40]), file=sys.stderr)
    # A TF network stores kernels HWIO; lin layers are 1x1 convolutions to one channel (or vectors).
    kernels = [(n, v) for n, v in variables if np.ndim(v) == 4 and np.shape(v)[:2] == (3, 3)]
    lins = [np.reshape(v, [-1]) for n, v in variables
            if np.size(v) in TAP_CHANNELS and (np.ndim(v) == 1 and 'lin' in n.lower()
                                               or np.ndim(v) == 4 and np.shape(v)[-1] == 1)]
    biases = [v for n, v in variables if np.ndim(v) == 1 and 'lin' not in n.lower()]
    if len(kernels) != len(VGG16_CONVS) or len(biases) != len(VGG16_CONVS) or len(lins) != len(TAPS):
        raise LPIPSWeightsError(f'{path}: found {len(kernels)} 3x3 kernels, {len(biases)} biases and '
                                f'{len(lins)} lin vectors; LPIPS-VGG16 has 13, 13 and 5')
    convs = [(np.asarray(k, np.float32), np.asarray(b, np.float32)) for (_, k), b in zip(kernels, biases)]
    return LPIPS(convs, lins, f'{os.path.basename(path)} (sha256 {_sha12(path)})')


def load_lpips(vgg16: Optional[str] = None, lpips_lin: Optional[str] = None, what: str = 'PPL') -> LPIPS:
    """LPIPS from the user's files.

    Args:
        vgg16: NVIDIA's vgg16_zhang_perceptual.pkl, or torchvision's vgg16-397923af.pth.
        lpips_lin: lpips' v0.1 vgg.pth; required with a torchvision file, refused with the pickle.

    Raises:
        LPIPSWeightsError saying which file to supply, or naming the file that is wrong.
    """
    if vgg16 is None:
        raise LPIPSWeightsError(f'{what} {NEEDS_WEIGHTS}')
    for flag, path in (('--vgg16', vgg16), ('--lpips', lpips_lin)):
        if path is not None and not os.path.isfile(path):
            raise LPIPSWeightsError(f'{flag}: {path}: file not found')
    with open(vgg16, 'rb') as f:
        head = f.read(2)
    if head[:1] == b'\x80' and not _is_legacy_torch(vgg16):
        if lpips_lin is not None:
            raise LPIPSWeightsError(f'--lpips: not needed with a network pickle ({vgg16} holds the lin weights)')
        return read_network_pickle_lpips(vgg16)
    if lpips_lin is None:
        raise LPIPSWeightsError(f'--lpips: {vgg16} is a PyTorch VGG16; LPIPS also needs the lin weights: '
                                'pass --lpips vgg.pth (the lpips package\'s weights/v0.1/vgg.pth)')
    return read_torchvision_lpips(vgg16, lpips_lin)


def _is_legacy_torch(path: str) -> bool:
    """Legacy torch.save files are pickles too; they start with the pickled magic number."""
    import pickletools
    with open(path, 'rb') as f:
        head = f.read(64)
    try:
        for op, arg, _ in pickletools.genops(head):
            if op.name in ('LONG1', 'LONG4', 'BININT', 'BININT1', 'BININT2', 'LONG'):
                from metrics.torchscript import LEGACY_MAGIC_NUMBER
                return arg == LEGACY_MAGIC_NUMBER
            if op.name not in ('PROTO', 'FRAME'):
                return False
    except (ValueError, EOFError):
        return False
    return False
