"""Running a metric: names, image sources, feature extraction with cached statistics, results.

One call computes one metric (the training loop can call it per snapshot)::

    from metrics import metric_base
    result = metric_base.compute('fid1k', Gs=Gs, data='datasets/demo')        # a network vs reals
    result = metric_base.compute('kid', data='folder_a', compare='folder_b')  # two image sets
    metric_base.append_jsonl(result, run_dir)          # -> run_dir/metric-fid1k.jsonl

`result` holds `metric`, `results` (name -> value), `num_images`, `weights` (the feature
network's file), `total_time` and a few more keys (`num_reals`, `data`, `network`, ...).

Names (`METRICS`): `fid`, `kid` with an optional count (`fid1k`, `fid50k`, `kid1k`, `fid500`) and
an optional `_full` (every real image, as stylegan2-ada's `fid50k_full`),
and `ppl_zfull`, `ppl_wfull`, `ppl_zend`, `ppl_wend` (crop on; StyleGAN2's defaults) and
`ppl2_wend` (no crop: the StyleGAN2 paper's PPL). With a network, the count is the number of
generated images (default 50,000, as in the papers); the reals are the first
min(count, dataset size) images of the dataset. Comparing two image sets, a count asks for that
many images from each set (a set with fewer is an error); without one, all images are used.
"""

import json
import os
import re
import sys
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from dnnlib.util import atomic_write
from metrics.image_sets import ImageSet, ImageSetError, open_image_set

CACHE_VERSION = 1
DEFAULT_NUM_IMAGES = 50000
MIN_IMAGES = 2          # a covariance (FID) and an unbiased MMD (KID) need two images per set
CACHE_ENV = 'STYLEGAN_METRICS_CACHE'

# name -> (family, default count): a PPL's count is its number of samples.
PPL_METRICS = {'ppl_zfull': dict(space='z', sampling='full', crop=True),
               'ppl_wfull': dict(space='w', sampling='full', crop=True),
               'ppl_zend': dict(space='z', sampling='end', crop=True),
               'ppl_wend': dict(space='w', sampling='end', crop=True),
               'ppl2_wend': dict(space='w', sampling='end', crop=False)}
METRICS = ('fid', 'kid') + tuple(PPL_METRICS)


class MetricError(ValueError):
    """A request a metric cannot serve (unknown name, too few images, missing weights...)."""


def parse_metric_name(name: str) -> Tuple[str, Optional[int]]:
    """'fid50k' -> ('fid', 50000); 'kid' -> ('kid', None); 'ppl_wend' -> ('ppl_wend', None).

    A `_full` suffix (stylegan2-ada's `fid50k_full`) is accepted: with a network it takes every
    real image instead of the first `count` (see Context.counts)."""
    if name in PPL_METRICS:
        return name, None
    m = re.fullmatch(r'(fid|kid)(?:(\d+)(k?))?(?:_full)?', name)
    if not m:
        raise MetricError(f'unknown metric {name!r}; choose fid, kid (optionally with a count such as '
                          f'fid1k or fid50k, and _full) or {", ".join(PPL_METRICS)}')
    if m.group(2) is None:
        return m.group(1), None
    count = int(m.group(2)) * (1000 if m.group(3) else 1)
    if count < MIN_IMAGES:
        raise MetricError(f'{name}: needs at least {MIN_IMAGES} images')
    return m.group(1), count


def default_cache_dir() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache',
                                                    'stylegan_tf2_metrics')


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='img', disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """The official convert_images_to_uint8 of [-1, 1] NCHW floats: x * 127.5 + 128 in float32,
    then a clamping, truncating cast (saturate_cast)."""
    x = np.asarray(images, np.float32) * np.float32(127.5) + np.float32(128)
    return np.clip(x, 0, 255).astype(np.uint8)


def as_rgb(images: np.ndarray) -> np.ndarray:
    """Grayscale NCHW tiled to 3 channels (stylegan2-ada's convention); RGB passes through."""
    return np.repeat(images, 3, axis=1) if images.shape[1] == 1 else images


class Labels:
    """Labels for generated images: rows of the dataset's label file when it has one of the
    network's size, else uniformly drawn one-hot classes for a conditional network."""

    def __init__(self, label_size: int, image_set: Optional[ImageSet]):
        self.label_size = label_size
        self.image_set = image_set if image_set is not None and image_set.label_size == label_size else None

    def draw(self, rng: np.random.RandomState, n: int) -> np.ndarray:
        if self.label_size == 0:
            return np.zeros([n, 0], np.float32)
        if self.image_set is not None:
            return self.image_set.random_labels(rng, n)
        return np.eye(self.label_size, dtype=np.float32)[rng.randint(self.label_size, size=n)]


def generated_images(Gs, num: int, minibatch_size: int, rng: np.random.RandomState,
                     labels: Labels):
    """uint8 NCHW batches from Gs as NVIDIA's metrics draw them: z ~ N(0, I), is_validation=True
    (no truncation), randomize_noise=True."""
    done = 0
    while done < num:
        n = min(minibatch_size, num - done)
        z = rng.randn(n, *Gs.input_shape[1:]).astype(np.float32)
        images = Gs.run(z, labels.draw(rng, n), is_validation=True, randomize_noise=True)
        done += n
        yield to_uint8(images)


class Context:
    """What a metric hook needs: the images on both sides, their features and statistics (the
    reference set's are cached on disk), the feature networks, the seed.

    `reference` is an ImageSet (the dataset, or --data); `compared` is either Gs (a network) or
    a second ImageSet.
    """

    def __init__(self, name: str, reference: Optional[ImageSet], compared, num: Optional[int],
                 inception: Callable, seed: int, cache_dir: Optional[str], minibatch_size: int,
                 progress: bool):
        self.name, self.reference, self.compared = name, reference, compared
        self.is_network = compared is not None and not isinstance(compared, ImageSet)
        self.num, self.seed, self.cache_dir = num, seed, cache_dir
        self.minibatch_size, self.progress = minibatch_size, progress
        self._inception_arg, self._inception = inception, None
        self._memo: Dict[str, object] = {}
        # Set by prepare(): the metric family, PPL's weights, the network's file, noise seeding.
        self.base, self.vgg16_arg, self.network, self.seed_noise = name, None, None, False
        self.full = name.endswith('_full')        # every real image, as stylegan2-ada's *_full

    # -- feature networks ------------------------------------------------------------------
    @property
    def inception(self):
        if self._inception is None:
            from metrics.inception import InceptionFeatures
            arg = self._inception_arg
            self._inception = arg if callable(arg) else InceptionFeatures(arg)
        return self._inception

    # -- counts ------------------------------------------------------------------------------
    def counts(self) -> Tuple[int, int]:
        """(images of the reference set, images on the compared side) this run uses."""
        if self.is_network:
            n = self.num or DEFAULT_NUM_IMAGES
            return (self.reference.num_images if self.full else min(n, self.reference.num_images)), n
        if self.num is None:
            return self.reference.num_images, self.compared.num_images
        return self.num, self.num

    def check_counts(self) -> None:
        sets = [self.reference] + ([] if self.is_network else [self.compared])
        for image_set, n in zip(sets, self.counts()):
            if image_set.num_images < max(n, MIN_IMAGES):
                raise MetricError(f'{image_set.path}: {self.name} needs {max(n, MIN_IMAGES)} images, the '
                                  f'set has {image_set.num_images}')

    # -- features ----------------------------------------------------------------------------
    def _extract(self, batches, total: int, desc: str) -> np.ndarray:
        out = []
        with _progress(total, desc, self.progress) as bar:
            for images in batches:
                out.append(self.inception(as_rgb(images)))
                bar.update(len(images))
        return np.concatenate(out).astype(np.float32)

    def _set_features(self, image_set: ImageSet, n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features, mu, sigma) of the first n images of a set, from the cache when possible."""
        from metrics.frechet_inception_distance import feature_statistics
        key = self._cache_key(image_set, n)
        path = os.path.join(self.cache_dir, f'{image_set.name}-{key[:20]}.npz') if self.cache_dir else None
        if path and os.path.isfile(path):
            try:
                with np.load(path) as f:
                    if str(f['cache_key']) == key:
                        return f['features'], f['mu'], f['sigma']
            except (OSError, ValueError, KeyError):
                pass        # a damaged cache entry is recomputed
        features = self._extract(image_set.iterate(self.minibatch_size, n), n,
                                 f'{image_set.name} features')
        mu, sigma = feature_statistics(features)
        if path:
            _save_npz_atomic(path, features=features, mu=mu, sigma=sigma, cache_key=np.array(key),
                             num_items=np.array(n), detector_id=np.array(self.inception.detector_id),
                             dataset_fingerprint=np.array(image_set.fingerprint(self.cache_dir)),
                             mirror=np.array(False), version=np.array(CACHE_VERSION))
        return features, mu, sigma

    def _cache_key(self, image_set: ImageSet, n: int) -> str:
        import hashlib
        fields = dict(version=CACHE_VERSION, detector=self.inception.detector_id, kind=image_set.kind,
                      fingerprint=image_set.fingerprint(self.cache_dir), resolution=image_set.resolution,
                      channels=image_set.channels, num_images=n, mirror=False)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def _side(self, which: str):
        if which not in self._memo:
            n_ref, n_cmp = self.counts()
            if which == 'reference':
                self._memo[which] = self._set_features(self.reference, n_ref)
            elif not self.is_network:
                self._memo[which] = self._set_features(self.compared, n_cmp)
            else:
                from metrics.frechet_inception_distance import feature_statistics
                rng = np.random.RandomState(self.seed)
                labels = Labels(label_size(self.compared), self.reference)
                if self.seed_noise:
                    # randomize_noise draws inside the network from TensorFlow's global generator:
                    # seeding it makes a run in a fresh process reproducible (and resets the
                    # caller's global seed, which a training loop may not want).
                    import tensorflow as tf
                    tf.random.set_seed(self.seed)
                features = self._extract(generated_images(self.compared, n_cmp, self.minibatch_size, rng,
                                                          labels), n_cmp, 'generated features')
                self._memo[which] = (features,) + feature_statistics(features)
        return self._memo[which]

    def reference_features(self) -> np.ndarray:
        return self._side('reference')[0]

    def reference_statistics(self) -> Tuple[np.ndarray, np.ndarray]:
        return self._side('reference')[1:]

    def compared_features(self) -> np.ndarray:
        return self._side('compared')[0]

    def compared_statistics(self) -> Tuple[np.ndarray, np.ndarray]:
        return self._side('compared')[1:]


def label_size(Gs) -> int:
    """Gs's label size: its second input's width (official API: input_shapes [[None, Z], [None, L]])."""
    shapes = Gs.input_shapes
    return int(shapes[1][1]) if len(shapes) > 1 else 0


def _save_npz_atomic(path: str, **arrays) -> None:
    try:
        with atomic_write(path) as f:
            np.savez(f, **arrays)
    except OSError as e:
        print(f'warning: cannot write the statistics cache {path}: {e}', file=sys.stderr)


# ------------------------------------------------------------------------------------------------
# One call per metric.

def open_set(image_set, flag: str) -> Optional[ImageSet]:
    """An ImageSet from a path (errors name the flag), or the ImageSet / None given."""
    if image_set is None or isinstance(image_set, ImageSet):
        return image_set
    try:
        return open_image_set(os.fspath(image_set))
    except ImageSetError as e:
        raise MetricError(f'{flag}: {e}') from None


def prepare(name: str, *, Gs=None, data=None, compare=None, num: Optional[int] = None,
            inception=None, vgg16=None, cache_dir: Optional[str] = '', seed: int = 0,
            minibatch_size: int = 16, progress: bool = True, network: Optional[str] = None,
            seed_noise: bool = False) -> Context:
    """Checks a request and returns the Context `run` needs; nothing heavy happens here.

    Args:
        name: metric name (see the module docstring), e.g. 'fid50k', 'kid', 'ppl_wend'.
        Gs: generator with the official API (tf2 or legacy_tf), or None to compare two sets.
        data: the reals: an ImageSet or a path (TFRecord dataset folder or folder of images).
        compare: second image set (path or ImageSet) when Gs is None.
        num: images (FID/KID: generated, or from each set) or PPL samples; None: from the name,
            else the default (50,000 with a network; all images of two sets).
        inception: Inception weights file, a ready InceptionFeatures, or None for default_1.pt.
        vgg16: PPL only: an LPIPS object or what metrics.vgg16.load_lpips accepts.
        cache_dir: folder of cached dataset statistics; '' the default
            ($STYLEGAN_METRICS_CACHE or ~/.cache/stylegan_tf2_metrics); None disables the cache.
        seed: seeds latents, labels, noise order and KID subsets.
        minibatch_size: images per forward pass.
        progress: tqdm bars with ETA on stderr.
        network: the network's file name, recorded in the result.
        seed_noise: also seed TensorFlow's global generator with `seed` before generating, so
            that randomize_noise repeats in a fresh process (calc_metrics.py does; a training
            loop should not, as it resets the process's global TensorFlow seed).

    Raises:
        MetricError (a ValueError) naming the flag or file at fault.
    """
    base, count = parse_metric_name(name)
    num = num if num is not None else count
    if num is not None and num < (1 if base in PPL_METRICS else MIN_IMAGES):
        raise MetricError(f'{name}: --num must be at least {1 if base in PPL_METRICS else MIN_IMAGES}')
    reference, other = open_set(data, '--data'), open_set(compare, '--compare')
    if base in PPL_METRICS:
        if Gs is None:
            raise MetricError(f'{name}: a perceptual path length needs a network (--network)')
        compared = Gs
    else:
        if reference is None:
            raise MetricError(f'{name}: needs real images (--data)')
        if (Gs is None) == (other is None):
            raise MetricError(f'{name}: give either a network (--network) or a second image set '
                              '(--compare), not both' if Gs is not None else
                              f'{name}: give a network (--network) or a second image set (--compare)')
        compared = Gs if Gs is not None else other
        if Gs is None and name.endswith('_full'):
            raise MetricError(f'{name}: _full takes every real image against a network\'s; with two image '
                              'sets give a plain count (all images are used without one)')
        _check_channels(reference, compared)
    cache_dir = default_cache_dir() if cache_dir == '' else cache_dir
    ctx = Context(name, reference, compared, num, inception, seed, cache_dir, minibatch_size, progress)
    ctx.base, ctx.vgg16_arg, ctx.network, ctx.seed_noise = base, vgg16, network, seed_noise
    if base not in PPL_METRICS:
        ctx.check_counts()
    else:
        from metrics import perceptual_path_length
        perceptual_path_length.check(ctx)
    return ctx


def _check_channels(reference: ImageSet, compared) -> None:
    if isinstance(compared, ImageSet):
        a, b, what = reference.channels, compared.channels, compared.path
    else:
        a, b, what = reference.channels, int(compared.output_shape[1]), 'the network'
    for c, where in ((a, reference.path), (b, what)):
        if c not in (1, 3):
            raise MetricError(f'{where}: images have {c} channels; the metrics take grayscale or RGB')
    if a != b:
        gray = reference.path if a == 1 else what
        raise MetricError(f'{gray} is grayscale and the other side is RGB: Inception features of the two '
                          'are not comparable (convert both to one kind)')


def check_weight_files(names, inception: Optional[str], vgg16: Optional[str], lpips: Optional[str]) -> None:
    """The weight-file checks that need no network (ValueError naming the flag): PPL needs
    --vgg16, and every file given exists."""
    from metrics import vgg16 as vgg16_lib
    for name in names:
        if parse_metric_name(name)[0] in PPL_METRICS and vgg16 is None:
            raise MetricError(f'--vgg16: {name} {vgg16_lib.NEEDS_WEIGHTS}')
    for flag, path in (('--inception', inception), ('--vgg16', vgg16), ('--lpips', lpips)):
        if path is not None and not os.path.isfile(path):
            raise MetricError(f'{flag}: {path}: file not found')


def run(ctx: Context) -> dict:
    """Computes a prepared metric; returns the result dict (see the module docstring)."""
    from metrics import frechet_inception_distance, kernel_inception_distance, perceptual_path_length
    start = time.time()
    ctx._memo.pop('compared', None)      # a network may have changed since the last run (training)
    if ctx.base == 'fid':
        results = frechet_inception_distance.compute_fid(ctx)
    elif ctx.base == 'kid':
        results = kernel_inception_distance.compute_kid(ctx)
    else:
        results = perceptual_path_length.compute_ppl(ctx, **PPL_METRICS[ctx.base])
    total = time.time() - start
    if ctx.base in PPL_METRICS:
        num_images, num_reals, weights = ctx.ppl_samples, None, ctx.lpips.weights
    else:
        num_reals, num_images = ctx.counts()
        weights = ctx.inception.weights
    from dnnlib.util import format_time
    return dict(metric=ctx.name, results={k: float(v) for k, v in results.items()}, num_images=num_images,
                weights=weights, total_time=round(total, 3), total_time_str=format_time(total),
                num_reals=num_reals, network=ctx.network,
                data=ctx.reference.path if ctx.reference is not None else None,
                compare=None if ctx.is_network or ctx.compared is None else ctx.compared.path,
                seed=ctx.seed, timestamp=time.time())


def compute(name: str, **kwargs) -> dict:
    """prepare(name, **kwargs), then run: one metric, one result dict."""
    return run(prepare(name, **kwargs))


def jsonl_path(result: dict, folder: str) -> str:
    return os.path.join(folder, f'metric-{result["metric"]}.jsonl')


def append_jsonl(result: dict, folder: str) -> str:
    """Appends `result` as one JSON line to `<folder>/metric-<name>.jsonl`; returns the path.

    The file is rewritten under a temporary name and renamed, so a crash never leaves half a line.
    """
    path = jsonl_path(result, folder)
    old = b''
    if os.path.isfile(path):
        with open(path, 'rb') as f:
            old = f.read()
        if old and not old.endswith(b'\n'):
            old += b'\n'
    with atomic_write(path) as f:
        f.write(old + (json.dumps(result) + '\n').encode())
    return path
