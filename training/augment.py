"""Augmentation for training on small data sets: albumentations on reals, or DiffAugment/ADA.

Two kinds, chosen by the `--augment` string (see `parse_augment`):

* ``albu:PRESET`` or ``albu:FILE.yaml|.json`` -- albumentations on the *real* images only, inside
  the tf.data pipeline (`make_albu_augment_fn`, `map_albu_augment`). Cheap and easy, but D only
  ever sees augmented reals, so G learns to produce augmented-looking images ("leaking"): use
  only transforms whose results are acceptable as outputs (flips, mild colour changes).
* ``diff:OP,OP,...`` -- differentiable augmentation in TensorFlow (`diff_augment`,
  `DiffAugment`), applied to reals and fakes alike right before D, so the distortions do not leak
  into G. Each op is applied per sample with probability p, fixed (`--aug-p`) or adjusted
  during training towards an overfitting target (`--aug-target`, `AdaptiveAugment`, ADA style).

``none`` disables both. The official StyleGAN training has neither (only mirror augment).
"""
import dataclasses
import inspect
import hashlib
import json
import os
import threading
import warnings
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

# ----------------------------------------------------------------------------------------------
# Errors and warnings.


class AugmentSpecError(ValueError):
    """A bad `--augment` string, augmentation file or augmentation argument."""


class AugmentLeakWarning(UserWarning):
    """Augmenting reals only (albumentations) can leak the augmentations into generated images."""


LEAK_MESSAGE = (
    'albumentations augments the real images only: D never sees an un-augmented real, so G '
    'learns to generate augmented-looking images (rotated borders, tints, blur, holes leak into '
    'the fakes). Use only transforms whose results are acceptable outputs, or use '
    '--augment diff:... (applied to reals and fakes, non-leaking).')

# ----------------------------------------------------------------------------------------------
# Albumentations pipelines: schema, presets, validation.

ALBU_EXTENSIONS = ('.yaml', '.yml', '.json')

# Names accepted for cv2 constants in files, so a YAML file need not know cv2's integers.
_CV2_NAMED_ARGS = {
    'border_mode': {'constant': 0, 'replicate': 1, 'reflect': 2, 'wrap': 3, 'reflect_101': 4},
    'interpolation': {'nearest': 0, 'linear': 1, 'cubic': 2, 'area': 3, 'lanczos4': 4},
}


def _group(name: str, p: float, transforms: Sequence[Tuple[str, Dict[str, Any]]]) -> Dict:
    return {'name': name, 'p': p,
            'transforms': [{'name': t, 'args': dict(a)} for t, a in transforms]}


# A blue tint: red down a little, blue up.
_BLUE_TINT = {'r_shift_limit': [-10, 0], 'g_shift_limit': [-5, 5], 'b_shift_limit': [5, 20]}
_BLUE_TINT_STRONG = {'r_shift_limit': [-20, 0], 'g_shift_limit': [-10, 10],
                     'b_shift_limit': [10, 30]}

ALBU_PRESETS: Dict[str, Dict] = {
    # The seed project's pipeline: one transform per group, four groups.
    'default': {'groups': [
        _group('geometric', 0.5, [
            ('HorizontalFlip', {}),
            ('Affine', {'translate_percent': [-0.0625, 0.0625], 'scale': [0.9, 1.1],
                        'rotate': [-10, 10], 'border_mode': 'reflect_101'})]),
        _group('colour', 0.5, [
            ('RandomBrightnessContrast', {'brightness_limit': 0.2, 'contrast_limit': 0.2}),
            ('CLAHE', {'clip_limit': 2.0}),
            ('HueSaturationValue', {'hue_shift_limit': 10, 'sat_shift_limit': 15,
                                    'val_shift_limit': 10}),
            ('RGBShift', _BLUE_TINT)]),
        _group('blur', 0.2, [
            ('GaussianBlur', {'blur_limit': [3, 5], 'sigma_limit': [0.1, 1.0]})]),
        _group('dropout', 0.2, [
            ('CoarseDropout', {'num_holes_range': [1, 1], 'hole_height_range': [0.1, 0.25],
                               'hole_width_range': [0.1, 0.25], 'fill': 0})]),
    ]},
    # Flips and gentle photometric changes only: least leaking.
    'mild': {'groups': [
        _group('geometric', 0.5, [
            ('HorizontalFlip', {}),
            ('Affine', {'translate_percent': [-0.03, 0.03], 'scale': [0.97, 1.03],
                        'rotate': [-3, 3], 'border_mode': 'reflect_101'})]),
        _group('colour', 0.3, [
            ('RandomBrightnessContrast', {'brightness_limit': 0.1, 'contrast_limit': 0.1}),
            ('HueSaturationValue', {'hue_shift_limit': 5, 'sat_shift_limit': 10,
                                    'val_shift_limit': 5})]),
        _group('blur', 0.1, [
            ('GaussianBlur', {'blur_limit': [3, 3], 'sigma_limit': [0.1, 0.5]})]),
    ]},
    # Larger ranges and higher probabilities, for a few hundred images.
    'strong': {'groups': [
        _group('geometric', 0.8, [
            ('HorizontalFlip', {}),
            ('Affine', {'translate_percent': [-0.1, 0.1], 'scale': [0.85, 1.15],
                        'rotate': [-15, 15], 'border_mode': 'reflect_101'})]),
        _group('colour', 0.8, [
            ('RandomBrightnessContrast', {'brightness_limit': 0.3, 'contrast_limit': 0.3}),
            ('CLAHE', {'clip_limit': 4.0}),
            ('HueSaturationValue', {'hue_shift_limit': 20, 'sat_shift_limit': 30,
                                    'val_shift_limit': 20}),
            ('RGBShift', _BLUE_TINT_STRONG)]),
        _group('blur', 0.3, [
            ('GaussianBlur', {'blur_limit': [3, 7], 'sigma_limit': [0.1, 2.0]})]),
        _group('dropout', 0.5, [
            ('CoarseDropout', {'num_holes_range': [1, 2], 'hole_height_range': [0.1, 0.3],
                               'hole_width_range': [0.1, 0.3], 'fill': 0})]),
    ]},
}


def _albumentations():
    """Imports albumentations without its start-up version check (it would go online)."""
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    import albumentations  # pylint: disable=import-outside-toplevel
    return albumentations


def _check_keys(entry: Any, where: str, required: Sequence[str], optional: Sequence[str],
                source: str) -> None:
    if not isinstance(entry, dict):
        raise AugmentSpecError(f'{source}: {where} must be a mapping, got {type(entry).__name__}')
    missing = [k for k in required if k not in entry]
    unknown = [k for k in entry if k not in required and k not in optional]
    if missing:
        raise AugmentSpecError(f'{source}: {where} lacks {", ".join(map(repr, missing))}')
    if unknown:
        raise AugmentSpecError(f'{source}: {where} has unknown key(s) '
                               f'{", ".join(map(repr, unknown))}; allowed: '
                               f'{", ".join(list(required) + list(optional))}')


def _check_probability(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise AugmentSpecError(f'{source}: {where} must be a number in [0, 1], got {value!r}')
    return float(value)


def _transform_class(name: Any, where: str, source: str):
    A = _albumentations()
    cls = getattr(A, name, None) if isinstance(name, str) else None
    if not (inspect.isclass(cls) and issubclass(cls, A.BasicTransform)):
        raise AugmentSpecError(f'{source}: {where}.name {name!r} is not an albumentations '
                               'transform (use a class name such as HorizontalFlip, Affine, '
                               'GaussianBlur; compositions are written as groups)')
    return cls


def _resolve_args(cls, args: Any, where: str, source: str) -> Dict[str, Any]:
    """Checks argument names against the transform's signature and maps cv2 constant names."""
    if not isinstance(args, dict):
        raise AugmentSpecError(f'{source}: {where}.args must be a mapping, got '
                               f'{type(args).__name__}')
    accepted = set(inspect.signature(cls.__init__).parameters) - {'self', 'p'}
    resolved = {}
    for key, value in args.items():
        if key not in accepted:
            raise AugmentSpecError(f'{source}: {where}.args has {key!r}, which {cls.__name__} '
                                   f'does not accept (accepted: {", ".join(sorted(accepted))}; '
                                   'the weight within the group is the transform\'s own "p")')
        if key in _CV2_NAMED_ARGS and isinstance(value, str):
            if value not in _CV2_NAMED_ARGS[key]:
                raise AugmentSpecError(f'{source}: {where}.args.{key} {value!r} is not one of '
                                       f'{", ".join(_CV2_NAMED_ARGS[key])}')
            value = _CV2_NAMED_ARGS[key][value]
        # YAML/JSON have no tuples; albumentations wants tuples for ranges.
        resolved[key] = tuple(value) if isinstance(value, list) else value
    return resolved


def validate_albu_spec(spec: Any, source: str = 'augment spec') -> Dict:
    """Validates an albumentations pipeline description and returns a normalised copy.

    Schema (YAML or JSON)::

        groups:                      # applied in order; each group is an albumentations OneOf
          - name: geometric          # optional, for messages
            p: 0.5                   # probability that the group applies (one transform of it)
            transforms:              # non-empty; one of them is picked when the group applies
              - name: HorizontalFlip # an albumentations transform class
                args: {}             # optional keyword arguments of that class
                p: 1.0               # optional relative weight of the pick within the group

    Args:
        spec: The parsed description (a dict).
        source: Name of the file or preset, used in error messages.

    Returns:
        A dict with the same schema, every optional key filled in and every transform checked by
        constructing it once.

    Raises:
        AugmentSpecError: Naming `source` and the bad entry, e.g. ``groups[1].transforms[0]``.
    """
    _check_keys(spec, 'the top level', ['groups'], [], source)
    groups = spec['groups']
    if not isinstance(groups, list) or not groups:
        raise AugmentSpecError(f'{source}: groups must be a non-empty list')
    normalised = []
    for gi, group in enumerate(groups):
        where = f'groups[{gi}]'
        _check_keys(group, where, ['p', 'transforms'], ['name'], source)
        name = group.get('name', f'group{gi}')
        p = _check_probability(group['p'], f'{where}.p', source)
        transforms = group['transforms']
        if not isinstance(transforms, list) or not transforms:
            raise AugmentSpecError(f'{source}: {where}.transforms must be a non-empty list')
        entries = []
        for ti, transform in enumerate(transforms):
            twhere = f'{where}.transforms[{ti}]'
            _check_keys(transform, twhere, ['name'], ['args', 'p'], source)
            cls = _transform_class(transform['name'], twhere, source)
            args = _resolve_args(cls, transform.get('args', {}), twhere, source)
            weight = _check_probability(transform.get('p', 1.0), f'{twhere}.p', source)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('error')  # albumentations warns on doubtful args
                    cls(**args, p=weight)
            except Exception as exc:  # pydantic's validation errors carry the reason
                raise AugmentSpecError(f'{source}: {twhere} ({cls.__name__}) rejected its '
                                       f'args: {exc}') from exc
            entries.append({'name': cls.__name__, 'args': args, 'p': weight})
        normalised.append({'name': str(name), 'p': p, 'transforms': entries})
    return {'groups': normalised}


def load_albu_spec(path: str) -> Dict:
    """Reads and validates a custom pipeline file (.yaml, .yml or .json).

    Raises:
        AugmentSpecError: If the file is missing, unparsable, or breaks the schema.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in ALBU_EXTENSIONS:
        raise AugmentSpecError(f'{path}: augmentation file must end in '
                               f'{", ".join(ALBU_EXTENSIONS)}')
    if not os.path.isfile(path):
        raise AugmentSpecError(f'{path}: augmentation file not found')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            if ext == '.json':
                spec = json.load(f)
            else:
                import yaml  # pylint: disable=import-outside-toplevel
                spec = yaml.safe_load(f)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError
        raise AugmentSpecError(f'{path}: cannot parse augmentation file: {exc}') from exc
    return validate_albu_spec(spec, source=path)


def build_albu_pipeline(spec: Dict):
    """An `albumentations.Compose` of one `OneOf` per group of a validated spec."""
    A = _albumentations()
    groups = []
    for group in spec['groups']:
        transforms = [getattr(A, t['name'])(**t['args'], p=t['p']) for t in group['transforms']]
        groups.append(A.OneOf(transforms, p=group['p']))
    return A.Compose(groups, p=1.0)


def _seed_pipeline(node, seed_seq: np.random.SeedSequence) -> None:
    """Gives every composition and transform its own seed derived from `seed_seq`.

    albumentations' own `set_random_seed` hands the *same* seed to every child, which makes the
    groups' apply/skip draws identical; spawning keeps them independent.
    """
    node.set_random_seed(int(seed_seq.generate_state(1)[0]))
    children = getattr(node, 'transforms', None)
    if children:
        for child, child_seq in zip(children, seed_seq.spawn(len(children))):
            _seed_pipeline(child, child_seq)


def _resolve_albu_source(spec: Any) -> Dict:
    if isinstance(spec, AugmentConfig):
        if spec.kind != 'albu':
            raise AugmentSpecError(f'--augment {spec.spec}: not an albu: augmentation')
        return spec.albu_spec
    if isinstance(spec, str):
        if spec in ALBU_PRESETS:
            return validate_albu_spec(ALBU_PRESETS[spec], source=f'albu preset {spec!r}')
        return load_albu_spec(spec)
    return validate_albu_spec(spec)


def make_albu_augment_fn(spec: Any, seed: Optional[int],
                         data_format: str = 'NHWC') -> Callable[..., tf.Tensor]:
    """Builds a tf.data-compatible albumentations augmentation of uint8 image batches.

    Emits an `AugmentLeakWarning`: augmenting reals only can leak into generated images.

    Args:
        spec: A preset name ('default', 'mild', 'strong'), a .yaml/.json path, a spec dict, or an
            `AugmentConfig` of kind 'albu'.
        seed: Base seed. The pipeline is reseeded on every call from (seed, counter), so the same
            counters give the same augmentations run to run. None draws fresh entropy.
        data_format: 'NHWC' or 'NCHW' layout of the batches given to the function.

    Returns:
        `augment(images, counter=None) -> images`: uint8 [N, H, W, C] (or NCHW) tensor in and out,
        static shape kept, via `tf.numpy_function` so it runs in a parallel `Dataset.map`.
        `counter` is an int scalar tensor, e.g. the element index from `Dataset.enumerate()`
        (as `map_albu_augment` does): the batch is seeded from (seed, counter). Without it the
        batch is seeded from (seed, hash of its pixels, how often that exact batch was seen), which
        is reproducible under a parallel map as long as the input stream is, at the cost of one
        small dict entry per batch; only batches with identical pixels may then swap their
        augmentations between runs (their occurrence order is the map's execution order).
    """
    if data_format not in ('NHWC', 'NCHW'):
        raise AugmentSpecError(f'data_format must be NHWC or NCHW, got {data_format!r}')
    pipeline_spec = _resolve_albu_source(spec)
    warnings.warn(LEAK_MESSAGE, AugmentLeakWarning, stacklevel=2)
    base_seed = int(np.random.SeedSequence().entropy % (1 << 63)) if seed is None else int(seed)
    local = threading.local()  # a pipeline per tf.data worker thread: its RNG state is not shared
    seen = {}  # content hash -> times seen, for batches given without a counter
    seen_lock = threading.Lock()

    def _batch_seed(images: np.ndarray, counter: int) -> np.random.SeedSequence:
        if counter >= 0:
            return np.random.SeedSequence([base_seed, 0, counter])
        # Execution order of a parallel map is not deterministic, a batch's content is.
        digest = int.from_bytes(hashlib.blake2b(images.tobytes(), digest_size=8).digest(), 'little')
        with seen_lock:
            occurrence = seen.get(digest, 0)
            seen[digest] = occurrence + 1
        return np.random.SeedSequence([base_seed, 1, digest, occurrence])

    def _augment_numpy(images: np.ndarray, counter: np.ndarray) -> np.ndarray:
        # [N, H, W, C] uint8
        compose = getattr(local, 'compose', None)
        if compose is None:
            compose = local.compose = build_albu_pipeline(pipeline_spec)
        _seed_pipeline(compose, _batch_seed(images, int(counter)))
        out = np.empty_like(images)
        for i in range(images.shape[0]):
            image = compose(image=np.ascontiguousarray(images[i]))['image']
            if image.ndim == 2:  # cv2 drops a trailing single channel
                image = image[:, :, None]
            if image.shape != images.shape[1:]:
                raise ValueError(f'albumentations pipeline changed the image shape from '
                                 f'{images.shape[1:]} to {image.shape}; only shape-preserving '
                                 'transforms are allowed')
            out[i] = image
        return out

    def augment(images: tf.Tensor, counter: Optional[tf.Tensor] = None) -> tf.Tensor:
        images = tf.convert_to_tensor(images)
        if images.dtype != tf.uint8 or images.shape.rank != 4:
            raise AugmentSpecError(f'albu augment wants a uint8 rank-4 batch, got {images.dtype} '
                                   f'of shape {images.shape}')
        counter = tf.constant(-1, tf.int64) if counter is None else tf.cast(counter, tf.int64)
        nhwc = images if data_format == 'NHWC' else tf.transpose(images, [0, 2, 3, 1])
        out = tf.numpy_function(_augment_numpy, [nhwc, counter], tf.uint8, stateful=True)
        out.set_shape(nhwc.shape)
        return out if data_format == 'NHWC' else tf.transpose(out, [0, 3, 1, 2])

    return augment


def map_albu_augment(dataset: tf.data.Dataset, spec: Any, seed: Optional[int],
                     data_format: str = 'NHWC',
                     num_parallel_calls: Optional[int] = tf.data.AUTOTUNE) -> tf.data.Dataset:
    """Applies `make_albu_augment_fn` to a batched dataset, reproducibly and in parallel.

    Args:
        dataset: Elements are a uint8 image batch, or a tuple whose first item is one (e.g.
            `(images, labels)`); other items pass through.
        spec, seed, data_format: As in `make_albu_augment_fn`.
        num_parallel_calls: Passed to `Dataset.map` (order stays deterministic).

    Returns:
        The dataset with augmented images; element i is seeded from (seed, i).
    """
    augment = make_albu_augment_fn(spec, seed, data_format)

    def _map(index, element):
        if isinstance(element, tuple):
            return (augment(element[0], index),) + tuple(element[1:])
        return augment(element, index)

    return dataset.enumerate().map(_map, num_parallel_calls=num_parallel_calls,
                                   deterministic=True)


# ----------------------------------------------------------------------------------------------
# Differentiable augmentation (DiffAugment ops, ADA-style probability).

DIFF_OPS = ('color', 'translation', 'cutout', 'xflip', 'rotate90')
DIFF_DEFAULT_POLICY = ('color', 'translation', 'cutout')


def _per_sample(x: tf.Tensor, x_aug: tf.Tensor, p, generator: tf.random.Generator) -> tf.Tensor:
    """Keeps `x_aug` for each sample with probability p, else `x`."""
    draw = generator.uniform([tf.shape(x)[0], 1, 1, 1], dtype=tf.float32)
    apply = draw < tf.cast(p, tf.float32)
    return tf.where(apply, x_aug, x)


def _uniform(generator: tf.random.Generator, n, dtype) -> tf.Tensor:
    """[N, 1, 1, 1] uniform [0, 1) draws in `dtype`."""
    return tf.cast(generator.uniform([n, 1, 1, 1], dtype=tf.float32), dtype)


def _color(x: tf.Tensor, p, generator: tf.random.Generator) -> tf.Tensor:
    # [N, C, H, W]; brightness, saturation, contrast each drawn per sample (DiffAugment ranges).
    n = tf.shape(x)[0]
    u = _uniform(generator, n, x.dtype)
    x = _per_sample(x, x + (u - 0.5), p, generator)
    u = _uniform(generator, n, x.dtype)
    mean = tf.reduce_mean(x, axis=1, keepdims=True)
    x = _per_sample(x, (x - mean) * (u * 2.0) + mean, p, generator)
    u = _uniform(generator, n, x.dtype)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return _per_sample(x, (x - mean) * (u + 0.5) + mean, p, generator)


def _shift_axis(x: tf.Tensor, shift: tf.Tensor, axis: int) -> tf.Tensor:
    """out[..., i, ...] = x[..., i - shift, ...] along `axis` (2 or 3), zeros shifted in."""
    size = tf.shape(x)[axis]
    source = tf.range(size)[None, :] - shift[:, None]  # [N, size]
    valid = tf.cast((source >= 0) & (source < size), x.dtype)
    out = tf.gather(x, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    valid = valid[:, None, :, None] if axis == 2 else valid[:, None, None, :]
    return out * valid


def _translation(x: tf.Tensor, p, generator: tf.random.Generator, ratio: float) -> tf.Tensor:
    # [N, C, H, W]; integer shifts in [-ratio*size, ratio*size], zero padding.
    n, h, w = tf.shape(x)[0], x.shape[2], x.shape[3]
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = generator.uniform([n], minval=-shift_h, maxval=shift_h + 1, dtype=tf.int32)
    tx = generator.uniform([n], minval=-shift_w, maxval=shift_w + 1, dtype=tf.int32)
    return _per_sample(x, _shift_axis(_shift_axis(x, ty, 2), tx, 3), p, generator)


def _cutout(x: tf.Tensor, p, generator: tf.random.Generator, ratio: float) -> tf.Tensor:
    # [N, C, H, W]; one zeroed rectangle of ratio*size per sample, centre anywhere (clipped).
    n, h, w = tf.shape(x)[0], x.shape[2], x.shape[3]
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = generator.uniform([n, 1], minval=0, maxval=h + (1 - size_h % 2), dtype=tf.int32)
    cx = generator.uniform([n, 1], minval=0, maxval=w + (1 - size_w % 2), dtype=tf.int32)
    rows = tf.range(h)[None, :] - (cy - size_h // 2)  # [N, H]
    cols = tf.range(w)[None, :] - (cx - size_w // 2)  # [N, W]
    in_rows = (rows >= 0) & (rows < size_h)
    in_cols = (cols >= 0) & (cols < size_w)
    hole = in_rows[:, :, None] & in_cols[:, None, :]  # [N, H, W]
    mask = 1.0 - tf.cast(hole, x.dtype)[:, None, :, :]
    return _per_sample(x, x * mask, p, generator)


def _xflip(x: tf.Tensor, p, generator: tf.random.Generator) -> tf.Tensor:
    return _per_sample(x, tf.reverse(x, axis=[3]), p, generator)


def _rotate90(x: tf.Tensor, p, generator: tf.random.Generator) -> tf.Tensor:
    # [N, C, H, W] with H == W; rotation by k*90 degrees, k uniform in {0, 1, 2, 3} (ADA).
    if x.shape[2] != x.shape[3]:
        raise ValueError(f'rotate90 needs square images, got {x.shape}')
    rot1 = tf.reverse(tf.transpose(x, [0, 1, 3, 2]), axis=[2])
    rot2 = tf.reverse(x, axis=[2, 3])
    rot3 = tf.reverse(rot1, axis=[2, 3])
    k = generator.uniform([tf.shape(x)[0]], minval=0, maxval=4, dtype=tf.int32)
    pick = tf.one_hot(k, 4, dtype=x.dtype)[:, :, None, None, None]  # [N, 4, 1, 1, 1]
    rotated = tf.reduce_sum(tf.stack([x, rot1, rot2, rot3], axis=1) * pick, axis=1)
    return _per_sample(x, rotated, p, generator)


def diff_augment(images: tf.Tensor, policy: Sequence[str], p,
                 generator: tf.random.Generator, translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5) -> tf.Tensor:
    """Differentiable augmentation of NCHW float images (DiffAugment ops, ADA-style p).

    Apply the same call to reals and fakes right before D. Every op is differentiable with
    respect to the images to any order (gathers, masks and affine maps only), so R1's gradient
    penalty through augmented reals works. Works eagerly and inside `tf.function`.

    Args:
        images: [N, C, H, W] float tensor, nominal [-1, 1].
        policy: Ops applied in the given order, from `DIFF_OPS`: 'color' (brightness +-0.5,
            saturation x[0, 2], contrast x[0.5, 1.5]), 'translation' (integer shift up to
            `translation_ratio` of the size, zero fill), 'cutout' (a zeroed square of
            `cutout_ratio` of the size), 'xflip', 'rotate90' (k*90 degrees, square images).
        p: Probability that each op (each colour component separately) applies to a sample; a
            float, scalar tensor or variable (e.g. `AdaptiveAugment.p`).
        generator: Source of randomness; create it outside `tf.function`.
        translation_ratio: Maximum translation as a fraction of the image size.
        cutout_ratio: Cutout square side as a fraction of the image size.

    Returns:
        The augmented images, same shape and dtype.
    """
    x = tf.convert_to_tensor(images)
    # [N, C, H, W]
    if x.shape.rank != 4 or x.shape[2] is None or x.shape[3] is None:
        raise ValueError(f'diff_augment wants [N, C, H, W] images with static H, W; '
                         f'got {x.shape}')
    for op in policy:
        if op == 'color':
            x = _color(x, p, generator)
        elif op == 'translation':
            x = _translation(x, p, generator, translation_ratio)
        elif op == 'cutout':
            x = _cutout(x, p, generator, cutout_ratio)
        elif op == 'xflip':
            x = _xflip(x, p, generator)
        elif op == 'rotate90':
            x = _rotate90(x, p, generator)
        else:
            raise AugmentSpecError(f'unknown diff augmentation {op!r}; known: '
                                   f'{", ".join(DIFF_OPS)}')
    return x


def make_generator(seed: Union[None, int, tf.random.Generator]) -> tf.random.Generator:
    """A `tf.random.Generator` from a seed (None: non-deterministic); generators pass through."""
    if isinstance(seed, tf.random.Generator):
        return seed
    if seed is None:
        return tf.random.Generator.from_non_deterministic_state()
    return tf.random.Generator.from_seed(int(seed))


class AdaptiveAugment:
    """ADA-style augmentation probability: p follows D's overfitting heuristic r_t.

    r_t = E[sign(D(real))] over the images accumulated since the last adjustment. Every
    `interval` calls of `update`, p += sign(r_t - target) * nimg / (ada_kimg * 1000), clipped to
    [0, 1], where nimg is the number of real scores accumulated (batch * interval when every
    step's real batch is accumulated). So p can move from 0 to 1 in `ada_kimg` thousand images.
    All state lives in tf.Variables: `update` works eagerly and inside `tf.function`. Save
    `get_state()` with a snapshot and `set_state()` it on resume.
    """

    def __init__(self, target: float, interval: int = 4, ada_kimg: float = 500.0,
                 p_init: float = 0.0):
        """Args:
            target: Target value of r_t (ADA uses 0.6); above it, p rises.
            interval: Number of `update` calls (training steps) between adjustments.
            ada_kimg: Thousands of images for p to go from 0 to 1 at the most.
            p_init: Initial p.
        """
        if not 0 <= target <= 1:
            raise AugmentSpecError(f'--aug-target must be in [0, 1], got {target}')
        if int(interval) < 1:
            raise AugmentSpecError(f'ADA interval must be >= 1, got {interval}')
        if not ada_kimg > 0:
            raise AugmentSpecError(f'ada_kimg must be > 0, got {ada_kimg}')
        self.target = float(target)
        self.interval = int(interval)
        self.ada_kimg = float(ada_kimg)
        self.p = tf.Variable(float(p_init), trainable=False, dtype=tf.float32, name='aug_p')
        self.r_t = tf.Variable(0.0, trainable=False, dtype=tf.float32, name='aug_rt')
        self._sign_sum = tf.Variable(0.0, trainable=False, dtype=tf.float32, name='aug_sign_sum')
        self._count = tf.Variable(0.0, trainable=False, dtype=tf.float32, name='aug_count')
        self._step = tf.Variable(0, trainable=False, dtype=tf.int64, name='aug_step')

    def accumulate(self, real_scores: tf.Tensor) -> None:
        """Adds D's raw outputs for a batch of reals (any shape, one score per element)."""
        scores = tf.reshape(tf.cast(real_scores, tf.float32), [-1])
        self._sign_sum.assign_add(tf.reduce_sum(tf.sign(scores)))
        self._count.assign_add(tf.cast(tf.size(scores), tf.float32))

    def adjust(self) -> tf.Tensor:
        """Moves p by the accumulated evidence, resets the accumulators; returns r_t."""
        count = self._count.read_value()
        r_t = tf.math.divide_no_nan(self._sign_sum.read_value(), count)
        step = tf.sign(r_t - self.target) * count / (self.ada_kimg * 1000.0)
        self.p.assign(tf.clip_by_value(self.p + step, 0.0, 1.0))
        self.r_t.assign(tf.where(count > 0, r_t, self.r_t))
        self._sign_sum.assign(0.0)
        self._count.assign(0.0)
        return r_t

    def update(self, real_scores: tf.Tensor) -> tf.Tensor:
        """Accumulates one step's real scores and adjusts p every `interval` steps; returns p."""
        self.accumulate(real_scores)
        self._step.assign_add(1)
        tf.cond(self._step % self.interval == 0, self.adjust, lambda: self.r_t.read_value())
        return self.p.read_value()

    def get_state(self) -> Dict[str, float]:
        """A JSON-serialisable dict of the state (p, last r_t, accumulators, step counter)."""
        return {'p': float(self.p.numpy()), 'r_t': float(self.r_t.numpy()),
                'sign_sum': float(self._sign_sum.numpy()), 'count': float(self._count.numpy()),
                'step': int(self._step.numpy())}

    def set_state(self, state: Dict[str, float]) -> None:
        """Restores a dict from `get_state` (e.g. on resume)."""
        expected = {'p', 'r_t', 'sign_sum', 'count', 'step'}
        if not isinstance(state, dict) or set(state) != expected:
            raise AugmentSpecError(f'AdaptiveAugment state must have keys {sorted(expected)}, '
                                   f'got {sorted(state) if isinstance(state, dict) else state!r}')
        if not 0 <= state['p'] <= 1:
            raise AugmentSpecError(f'AdaptiveAugment state p must be in [0, 1], got {state["p"]}')
        self.p.assign(float(state['p']))
        self.r_t.assign(float(state['r_t']))
        self._sign_sum.assign(float(state['sign_sum']))
        self._count.assign(float(state['count']))
        self._step.assign(int(state['step']))


class DiffAugment:
    """`diff_augment` bound to a policy, a probability and its own random generator.

    Call it on reals and on fakes (NCHW float) right before D. `p` is a float (fixed) or an
    `AdaptiveAugment`, whose variable is read at every call.
    """

    def __init__(self, policy: Sequence[str] = DIFF_DEFAULT_POLICY,
                 p: Union[float, AdaptiveAugment] = 1.0,
                 seed: Union[None, int, tf.random.Generator] = None,
                 translation_ratio: float = 0.125, cutout_ratio: float = 0.5):
        """Args:
            policy: Ops from `DIFF_OPS`, applied in order.
            p: Fixed probability in [0, 1], or an `AdaptiveAugment`.
            seed: Int seed, None (non-deterministic) or a `tf.random.Generator`.
            translation_ratio: Maximum translation as a fraction of the size (1/8).
            cutout_ratio: Cutout side as a fraction of the size (1/2).
        """
        self.policy = _check_policy(policy, 'DiffAugment policy')
        if not isinstance(p, AdaptiveAugment) and not 0 <= float(p) <= 1:
            raise AugmentSpecError(f'--aug-p must be in [0, 1], got {p}')
        self.ada = p if isinstance(p, AdaptiveAugment) else None
        self.fixed_p = None if self.ada is not None else float(p)
        self.generator = make_generator(seed)
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)

    @classmethod
    def from_config(cls, config: 'AugmentConfig',
                    seed: Union[None, int, tf.random.Generator] = None) -> 'DiffAugment':
        """Builds the pipe for a 'diff' `AugmentConfig`: ADA if aug_target, else fixed aug_p."""
        if config.kind != 'diff':
            raise AugmentSpecError(f'--augment {config.spec}: not a diff: augmentation')
        if config.aug_target is not None:
            p = AdaptiveAugment(config.aug_target, config.ada_interval, config.ada_kimg)
        else:
            p = config.aug_p
        return cls(config.policy, p, seed)

    @property
    def p(self):
        """The current probability: the ADA variable, or the fixed float."""
        return self.ada.p if self.ada is not None else self.fixed_p

    def __call__(self, images: tf.Tensor, generator=None) -> tf.Tensor:
        """Augments `images`; `generator` replaces the own generator for this call (the training
        loop's per-shard streams under tf.distribute)."""
        return diff_augment(images, self.policy, self.p,
                            self.generator if generator is None else generator,
                            self.translation_ratio, self.cutout_ratio)


# ----------------------------------------------------------------------------------------------
# The --augment string.


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Parsed `--augment` (+ `--aug-p`, `--aug-target`); `to_dict()` goes into training options.

    Attributes:
        spec: The string as given.
        kind: 'none', 'albu' or 'diff'.
        preset: albu preset name, or None.
        path: albu pipeline file, or None.
        albu_spec: Validated albu pipeline (see `validate_albu_spec`), or None.
        policy: diff ops in order; () unless kind is 'diff'.
        aug_p: Fixed diff probability (1.0 when neither aug_p nor aug_target is given), or None
            when adaptive.
        aug_target: ADA target for r_t, or None when fixed.
        ada_kimg: ADA speed, kimg for p to move by 1.
        ada_interval: ADA adjustment interval in training steps.
    """
    spec: str
    kind: str
    preset: Optional[str] = None
    path: Optional[str] = None
    albu_spec: Optional[Dict] = None
    policy: Tuple[str, ...] = ()
    aug_p: Optional[float] = None
    aug_target: Optional[float] = None
    ada_kimg: float = 500.0
    ada_interval: int = 4

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d['policy'] = list(self.policy)
        return d


def _check_policy(policy: Sequence[str], where: str) -> Tuple[str, ...]:
    policy = tuple(policy)
    if not policy:
        raise AugmentSpecError(f'{where}: no augmentation listed; known: {", ".join(DIFF_OPS)}')
    unknown = [op for op in policy if op not in DIFF_OPS]
    if unknown:
        raise AugmentSpecError(f'{where}: unknown augmentation(s) {", ".join(unknown)}; known: '
                               f'{", ".join(DIFF_OPS)}')
    repeated = sorted({op for op in policy if policy.count(op) > 1})
    if repeated:
        raise AugmentSpecError(f'{where}: {", ".join(repeated)} listed more than once')
    return policy


def parse_augment(spec: str, aug_p: Optional[float] = None, aug_target: Optional[float] = None,
                  ada_kimg: float = 500.0, ada_interval: int = 4) -> AugmentConfig:
    """Parses `--augment` and its companion flags into an `AugmentConfig`.

    Accepted: 'none'; 'albu' or 'albu:PRESET' (default, mild, strong) or 'albu:FILE' (.yaml,
    .yml, .json, validated now); 'diff' (= diff:color,translation,cutout) or
    'diff:OP,OP,...' with OPs from `DIFF_OPS`.

    Args:
        spec: The `--augment` value.
        aug_p: `--aug-p`, fixed probability for diff (default 1.0).
        aug_target: `--aug-target`, ADA target for diff (exclusive with aug_p).
        ada_kimg: ADA speed in kimg (500).
        ada_interval: ADA adjustment interval in steps (4).

    Raises:
        AugmentSpecError: With a message naming the flag and the problem.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise AugmentSpecError(f'--augment: expected none, albu:PRESET|FILE or diff:OPS, '
                               f'got {spec!r}')
    kind, _, arg = spec.strip().partition(':')
    if kind not in ('none', 'albu', 'diff'):
        raise AugmentSpecError(f'--augment {spec}: unknown kind {kind!r}; use none, '
                               'albu:PRESET|FILE or diff:OPS')
    if kind != 'diff' and (aug_p is not None or aug_target is not None):
        raise AugmentSpecError(f'--aug-p/--aug-target apply to --augment diff:..., not {spec}')
    if kind == 'none':
        if arg:
            raise AugmentSpecError(f'--augment {spec}: none takes no argument')
        return AugmentConfig(spec=spec, kind='none')
    if kind == 'albu':
        name = arg or 'default'
        if name in ALBU_PRESETS:
            return AugmentConfig(spec=spec, kind='albu', preset=name, albu_spec=validate_albu_spec(
                ALBU_PRESETS[name], source=f'albu preset {name!r}'))
        if os.path.splitext(name)[1].lower() not in ALBU_EXTENSIONS:
            raise AugmentSpecError(f'--augment {spec}: {name!r} is neither a preset '
                                   f'({", ".join(ALBU_PRESETS)}) nor a '
                                   f'{"/".join(ALBU_EXTENSIONS)} file')
        return AugmentConfig(spec=spec, kind='albu', path=name, albu_spec=load_albu_spec(name))
    policy = _check_policy([op.strip() for op in arg.split(',')] if arg else DIFF_DEFAULT_POLICY,
                           f'--augment {spec}')
    if aug_p is not None and aug_target is not None:
        raise AugmentSpecError('--aug-p (fixed) and --aug-target (adaptive) exclude each other')
    if aug_p is not None and not 0 <= aug_p <= 1:
        raise AugmentSpecError(f'--aug-p must be in [0, 1], got {aug_p}')
    if aug_target is not None and not 0 <= aug_target <= 1:
        raise AugmentSpecError(f'--aug-target must be in [0, 1], got {aug_target}')
    if not ada_kimg > 0 or int(ada_interval) < 1:
        raise AugmentSpecError(f'ada_kimg must be > 0 and ada_interval >= 1, got {ada_kimg}, '
                               f'{ada_interval}')
    return AugmentConfig(spec=spec, kind='diff', policy=policy,
                         aug_p=(1.0 if aug_p is None and aug_target is None else aug_p),
                         aug_target=aug_target, ada_kimg=float(ada_kimg),
                         ada_interval=int(ada_interval))
