"""tf.data reader of official-format multi-resolution TFRecord datasets (spec section 5.3).

API (used by the training loop)::

    dataset = TFRecordDataset(tfrecord_dir, resolution=None, label_file=None, max_label_size=0,
                              repeat=True, shuffle_mb=4096, prefetch_mb=2048, buffer_mb=256,
                              num_threads=2, max_images=None, mirror_augment=False,
                              augment_fn=None, seed=None)
    dataset.name, .resolution, .resolution_log2, .shape ([C, R, R]), .dtype ('uint8'),
    .dynamic_range ([0, 255]), .label_size, .label_dtype ('float32')
    dataset.configure(minibatch_size, lod=0)       # selects the file of floor(lod)
    images, labels = dataset.get_minibatch_tf()     # tf tensors from the configured pipeline
    images, labels = dataset.get_minibatch_np(minibatch_size, lod=0)
        # images: uint8 NCHW [N, C, R / 2**floor(lod), R / 2**floor(lod)], labels: float32 [N, label_size]
    dataset.get_random_labels_np(minibatch_size)    # float32 [N, label_size], rows of the label file
    dataset.close()

Loading follows the official reader: the shape of every `*.tfrecords` file comes from its first
record; `resolution` is the largest H unless given (files above it, with a negative lod, are
skipped); every lod 0 .. log2(resolution) - 2 must exist, square, with one channel count. Labels
come from `label_file` (default: the first `*.labels` in the folder, npy content);
`max_label_size` 0 means no labels, 'full' all columns, an int the first N columns.

Pipeline per lod, streaming from the file::

    TFRecordDataset(buffer_mb) -> take(max_images) -> parse (num_threads) -> zip labels
    -> shuffle(shuffle_mb) -> repeat -> prefetch(prefetch_mb) -> batch(minibatch)
    -> mirror_augment -> augment_fn (num_threads, order kept) -> NCHW

Buffer sizes are converted from MiB to records as in the official code, but never exceed the
number of records the file can hold (its size / bytes per image), so a small dataset does not
fill gigabytes with repeated copies.

Augmentation (real images only; the training loop never passes fakes through here):

* `mirror_augment=True` flips each image along W with probability 0.5 here, on the data side.
  The official code does this in `process_reals` instead (spec 6.4): enable it in one place only.
* `augment_fn(images)` is a hook called once per minibatch inside the tf.data pipeline with a
  **uint8 NHWC tf.Tensor** `[N, H, W, C]` and must return a tensor of the same shape and dtype.
  Wrap numpy code (e.g. albumentations) with `tf.numpy_function`. If the hook accepts a second
  positional argument, it is called as `augment_fn(images, index)` with the int64 minibatch index
  (0, 1, ... per pipeline) so its randomness can be seeded reproducibly. It is mapped with
  `num_parallel_calls=num_threads` and `deterministic=True`, so batch order is kept.

Determinism: with `seed` set, the shuffle order and the mirror flips are fixed (the flip of
minibatch i uses the stateless seed (seed, i)); `get_random_labels_np` uses
`np.random.RandomState(seed)`. `augment_fn` has its own randomness.
"""
import glob
import inspect
import os
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf


def _accepts_two_args(fn) -> bool:
    if fn is None:
        return False
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _pipeline_options() -> tf.data.Options:
    """tf.data options of the training pipelines: autotuning off. Every stage has a fixed
    parallelism and buffer (the official sizes), so the autotuner has nothing to choose, and
    its background thread made deleting an iterator wait for up to half a minute (the
    re-opening at each network snapshot stalled the demo's training by 5-60 s a snapshot,
    issue 20)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


class TFRecordDataset:
    """Multi-resolution official-format dataset; see the module docstring."""

    def __init__(self, tfrecord_dir: str, resolution: Optional[int] = None,
                 label_file: Optional[str] = None, max_label_size=0, repeat: bool = True,
                 shuffle_mb: int = 4096, prefetch_mb: int = 2048, buffer_mb: int = 256,
                 num_threads: int = 2, max_images: Optional[int] = None,
                 mirror_augment: bool = False,
                 augment_fn: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
                 seed: Optional[int] = None):
        self.tfrecord_dir = tfrecord_dir
        self.name = os.path.basename(os.path.normpath(tfrecord_dir))
        self.dtype = 'uint8'
        self.dynamic_range = [0, 255]
        self.label_file = label_file
        self.label_dtype = 'float32'
        self.repeat = repeat
        self.shuffle_mb = shuffle_mb
        self.prefetch_mb = prefetch_mb
        self.buffer_mb = buffer_mb
        self.num_threads = num_threads
        self.max_images = max_images
        self.mirror_augment = mirror_augment
        self.augment_fn = augment_fn
        self._augment_takes_index = _accepts_two_args(augment_fn)
        self.seed = int(seed) if seed is not None else int(np.random.randint(1 << 31))
        self._rng = np.random.RandomState(self.seed)
        self._iterators = {}     # (minibatch_size, lod) -> iterator; at most two kept.
        self._cur_key = None

        self._find_files(resolution)
        self._load_labels(max_label_size)

    # ------------------------------------------------------------------------------------------
    def _find_files(self, resolution):
        if not os.path.isdir(self.tfrecord_dir):
            raise FileNotFoundError(f'{self.tfrecord_dir}: dataset folder does not exist')
        paths = sorted(glob.glob(os.path.join(glob.escape(self.tfrecord_dir), '*.tfrecords')))
        if not paths:
            raise FileNotFoundError(f'{self.tfrecord_dir}: no .tfrecords files in the folder')
        shapes = [self._first_shape(p) for p in paths]
        channels = {s[0] for s in shapes}
        for path, (c, h, w) in zip(paths, shapes):
            if h != w or h < 1 or (h & (h - 1)):
                raise ValueError(f'{path}: images are {h}x{w}; expected square powers of two')
        if len(channels) != 1:
            raise ValueError(f'{self.tfrecord_dir}: files differ in channel count {sorted(channels)}')
        max_res = max(s[1] for s in shapes)
        self.resolution = int(resolution) if resolution is not None else max_res
        self.resolution_log2 = int(np.log2(self.resolution))
        if (1 << self.resolution_log2) != self.resolution or self.resolution < 4:
            raise ValueError(f'resolution must be a power of two >= 4, got {resolution}')
        self.shape = [shapes[0][0], self.resolution, self.resolution]
        self._tfr_files, self._tfr_shapes = {}, {}
        for path, shape in zip(paths, shapes):
            lod = self.resolution_log2 - int(np.log2(shape[1]))
            if lod < 0:
                continue  # Above the requested resolution (official behaviour).
            if lod in self._tfr_files:
                raise ValueError(f'{path}: second file for {shape[1]}x{shape[1]} '
                                 f'({self._tfr_files[lod]})')
            self._tfr_files[lod], self._tfr_shapes[lod] = path, list(shape)
        missing = [lod for lod in range(self.resolution_log2 - 1) if lod not in self._tfr_files]
        if missing:
            have = sorted(s[1] for s in self._tfr_shapes.values())
            raise ValueError(f'{self.tfrecord_dir}: no file for lod {missing} at resolution '
                             f'{self.resolution} (found resolutions {have})')

    @staticmethod
    def _first_shape(path):
        for raw in tf.data.TFRecordDataset(path).take(1):
            example = tf.train.Example.FromString(raw.numpy())
            shape = list(example.features.feature['shape'].int64_list.value)
            if len(shape) != 3:
                raise ValueError(f'{path}: first record has no [C, H, W] shape feature')
            return shape
        raise ValueError(f'{path}: file holds no records')

    def _load_labels(self, max_label_size):
        if self.label_file is None:
            found = sorted(glob.glob(os.path.join(glob.escape(self.tfrecord_dir), '*.labels')))
            self.label_file = found[0] if found else None
        labels = np.zeros([0, 0], np.float32)
        if self.label_file is not None and max_label_size != 0:
            with open(self.label_file, 'rb') as f:
                labels = np.load(f)
            if labels.ndim != 2:
                raise ValueError(f'{self.label_file}: labels must be 2-D, got shape {labels.shape}')
            if max_label_size != 'full' and labels.shape[1] > int(max_label_size):
                labels = labels[:, :int(max_label_size)]
        self._np_labels = labels.astype(np.float32)
        self.label_size = int(self._np_labels.shape[1])

    # ------------------------------------------------------------------------------------------
    def _records_cap(self, path, bytes_per_item):
        return max(1, -(-os.path.getsize(path) // bytes_per_item))

    def _build(self, minibatch_size, lod):
        path, shape = self._tfr_files[lod], self._tfr_shapes[lod]
        bytes_per_item = int(np.prod(shape))
        cap = self._records_cap(path, bytes_per_item)

        def parse(record):
            features = tf.io.parse_single_example(record, {
                'shape': tf.io.FixedLenFeature([3], tf.int64),
                'data': tf.io.FixedLenFeature([], tf.string)})
            return tf.reshape(tf.io.decode_raw(features['data'], tf.uint8), shape)  # [C, H, W]

        dset = tf.data.TFRecordDataset(path, compression_type='',
                                       buffer_size=self.buffer_mb << 20)
        if self.max_images is not None:
            dset = dset.take(self.max_images)
        dset = dset.map(parse, num_parallel_calls=self.num_threads)
        if self.label_size > 0:
            dset = tf.data.Dataset.zip((dset, tf.data.Dataset.from_tensor_slices(self._np_labels)))
        else:
            dset = dset.map(lambda x: (x, tf.zeros([0], tf.float32)))
        if self.shuffle_mb > 0:
            items = min(((self.shuffle_mb << 20) - 1) // bytes_per_item + 1, cap)
            dset = dset.shuffle(items, seed=self.seed + lod, reshuffle_each_iteration=True)
        if self.repeat:
            dset = dset.repeat()
        if self.prefetch_mb > 0:
            dset = dset.prefetch(min(((self.prefetch_mb << 20) - 1) // bytes_per_item + 1, cap))
        dset = dset.batch(minibatch_size)
        dset = dset.enumerate().map(self._augment_batch, num_parallel_calls=self.num_threads,
                                    deterministic=True)
        return iter(dset.prefetch(2).with_options(_pipeline_options()))

    def _augment_batch(self, index, batch):
        images, labels = batch
        x = tf.transpose(images, [0, 2, 3, 1])  # [N, H, W, C]
        if self.mirror_augment:
            u = tf.random.stateless_uniform([tf.shape(x)[0]], seed=tf.stack(
                [tf.constant(self.seed, tf.int64), tf.cast(index, tf.int64)]))
            x = tf.where((u < 0.5)[:, None, None, None], tf.reverse(x, axis=[2]), x)
        if self.augment_fn is not None:
            # A second parameter, when the hook has one, receives the minibatch index so that
            # its own randomness can be reproducible (e.g. training.augment.make_albu_augment_fn).
            y = self.augment_fn(x, index) if self._augment_takes_index else self.augment_fn(x)
            y = tf.ensure_shape(tf.convert_to_tensor(y), x.shape)
            if y.dtype != tf.uint8:
                raise TypeError(f'augment_fn must return uint8 NHWC, got {y.dtype}')
            x = y
        return tf.transpose(x, [0, 3, 1, 2]), labels  # [N, C, H, W]

    # ------------------------------------------------------------------------------------------
    def configure(self, minibatch_size: int, lod=0):
        """Selects the pipeline for this minibatch size and the file of floor(lod)."""
        lod = int(np.floor(lod))
        if minibatch_size < 1:
            raise ValueError(f'minibatch_size must be >= 1, got {minibatch_size}')
        if lod not in self._tfr_files:
            raise ValueError(f'lod {lod} not available (have {sorted(self._tfr_files)})')
        key = (int(minibatch_size), lod)
        if key not in self._iterators:
            # Keep at most two pipelines alive: each holds shuffle and prefetch buffers.
            while len(self._iterators) >= 2:
                self._iterators.pop(next(iter(self._iterators)))
            self._iterators[key] = self._build(*key)
        self._cur_key = key

    def get_minibatch_tf(self):
        """Next (images uint8 [N, C, H, W], labels float32 [N, label_size]) tensors.

        Raises StopIteration at the end of the data when repeat=False.
        """
        if self._cur_key is None:
            raise RuntimeError('call configure(minibatch_size, lod) first')
        return next(self._iterators[self._cur_key])

    def minibatch_spec(self, minibatch_size: int, lod=0) -> Tuple[tf.TensorSpec, tf.TensorSpec]:
        """The (images, labels) TensorSpecs that get_minibatch_tf returns once configured so,
        without building the pipeline (training traces the next lod phase's step from them)."""
        channels, height, width = self._tfr_shapes[int(np.floor(lod))]
        return (tf.TensorSpec([minibatch_size, channels, height, width], tf.uint8),
                tf.TensorSpec([minibatch_size, self.label_size], tf.float32))

    def get_minibatch_np(self, minibatch_size: int, lod=0):
        """Numpy (images uint8 NCHW at the resolution of floor(lod), labels float32 [N, L])."""
        self.configure(minibatch_size, lod)
        images, labels = self.get_minibatch_tf()
        return images.numpy(), labels.numpy()

    def get_random_labels_np(self, minibatch_size: int) -> np.ndarray:
        """Random rows of the label array, float32 [minibatch_size, label_size]."""
        if self.label_size == 0:
            return np.zeros([minibatch_size, 0], np.float32)
        return self._np_labels[self._rng.randint(self._np_labels.shape[0], size=[minibatch_size])]

    def close(self):
        """Releases the pipelines (and their buffers)."""
        self._iterators.clear()
        self._cur_key = None
