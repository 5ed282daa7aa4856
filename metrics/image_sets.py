"""Sets of real images for the metrics: official TFRecord datasets and plain folders of images.

Both give uint8 NCHW batches in a fixed order (no shuffle, no mirroring: the metrics take the
first N images, as NVIDIA's `fid50k` does with `shuffle_mb=0`), a count known before reading,
and a content fingerprint that keys the cached statistics.

* A TFRecord dataset folder (`dataset_tool.py` output) is read at its largest resolution, from
  the one `*.tfrecords` file of that size; labels come from its `*.labels` file, if any.
* A folder of images (`.png`, `.jpg`, `.jpeg`, `.bmp`, `.webp`, searched recursively, sorted by
  path) must hold images of one size. Mode `L` images are grayscale; any other mode is converted
  to RGB (transparency over white, as `dataset_tool.py` does by default).

Grayscale sets give 1-channel images; the feature networks tile them to RGB (as
stylegan2-ada-pytorch does). Comparing a grayscale set with an RGB one is refused.
"""

import glob
import hashlib
import json
import os
import struct
from typing import Iterator, Optional

import numpy as np

from dnnlib.util import atomic_write

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')


class ImageSetError(ValueError):
    """A path that is not a usable image set; the message names it."""


def _count_tfrecords(path: str) -> int:
    """Number of records, read from the framing alone (8-byte length, 4-byte CRC, data, 4-byte
    CRC), so a 90 GB dataset is counted without reading its images."""
    count, size = 0, os.path.getsize(path)
    with open(path, 'rb') as f:
        pos = 0
        while pos < size:
            header = f.read(12)
            if len(header) != 12:
                raise ImageSetError(f'{path}: truncated TFRecord file (record {count})')
            (length,) = struct.unpack('<Q', header[:8])
            pos += 12 + length + 4
            if pos > size:
                raise ImageSetError(f'{path}: truncated TFRecord file (record {count})')
            f.seek(pos)
            count += 1
    return count


class _FingerprintMemo:
    """sha256 of file contents, remembered by (path, size, mtime) in the cache folder so that a
    second run over the same dataset does not read it again just to recognise it."""

    def __init__(self, cache_dir: Optional[str]):
        self.path = os.path.join(cache_dir, 'file-hashes.json') if cache_dir else None
        self.table = {}
        if self.path and os.path.isfile(self.path):
            try:
                with open(self.path) as f:
                    self.table = json.load(f)
            except (OSError, ValueError):
                self.table = {}

    def sha256(self, path: str) -> str:
        st = os.stat(path)
        key = f'{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}'
        if key not in self.table:
            digest = hashlib.sha256()
            with open(path, 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 22), b''):
                    digest.update(chunk)
            self.table[key] = digest.hexdigest()
        return self.table[key]

    def save(self) -> None:
        if not self.path:
            return
        try:
            with atomic_write(self.path, 'w') as f:
                json.dump(self.table, f)
        except OSError:
            pass    # the memo only saves time


class ImageSet:
    """Base of the two kinds. Attributes: path, kind, name, resolution, channels, num_images,
    label_size."""

    kind = '?'
    path = name = ''
    resolution = channels = num_images = label_size = 0

    def describe(self) -> str:
        return (f'{self.path} ({self.kind}, {self.num_images} images, {self.channels}x'
                f'{self.resolution}x{self.resolution})')

    def fingerprint(self, cache_dir: Optional[str] = None) -> str:
        """sha256 over the contents of the files the images come from."""
        raise NotImplementedError

    def iterate(self, minibatch_size: int, num_images: int) -> Iterator[np.ndarray]:
        """uint8 NCHW batches of the first `num_images` images, in order."""
        raise NotImplementedError

    def random_labels(self, rng: np.random.RandomState, n: int) -> Optional[np.ndarray]:
        """Rows of the set's label array drawn at random, or None without labels."""
        return None


class TFRecordImageSet(ImageSet):
    kind = 'tfrecords'

    def __init__(self, path: str):
        self.path, self.name = path, os.path.basename(os.path.normpath(path))
        files = sorted(glob.glob(os.path.join(glob.escape(path), '*.tfrecords')))
        if not files:
            raise ImageSetError(f'{path}: no .tfrecords files (not a dataset made by dataset_tool.py)')
        shapes = {f: _first_shape(f) for f in files}
        self.file = max(files, key=lambda f: shapes[f][1])
        self.channels, height, width = shapes[self.file]
        if height != width:
            raise ImageSetError(f'{self.file}: images are {height}x{width}, expected square')
        self.resolution = height
        self.num_images = _count_tfrecords(self.file)
        labels = sorted(glob.glob(os.path.join(glob.escape(path), '*.labels')))
        self._labels = np.load(labels[0]).astype(np.float32) if labels else None
        self.label_size = 0 if self._labels is None else int(self._labels.shape[1])

    def fingerprint(self, cache_dir: Optional[str] = None) -> str:
        memo = _FingerprintMemo(cache_dir)
        digest = memo.sha256(self.file)
        memo.save()
        return digest

    def iterate(self, minibatch_size: int, num_images: int) -> Iterator[np.ndarray]:
        import tensorflow as tf
        shape = [self.channels, self.resolution, self.resolution]

        def parse(record):
            features = tf.io.parse_single_example(record, {
                'shape': tf.io.FixedLenFeature([3], tf.int64),
                'data': tf.io.FixedLenFeature([], tf.string)})
            return tf.reshape(tf.io.decode_raw(features['data'], tf.uint8), shape)   # [C, H, W]

        dset = tf.data.TFRecordDataset(self.file).take(num_images).map(parse, num_parallel_calls=2)
        for batch in dset.batch(minibatch_size).prefetch(2):
            yield batch.numpy()

    def random_labels(self, rng: np.random.RandomState, n: int) -> Optional[np.ndarray]:
        if self._labels is None:
            return None
        return self._labels[rng.randint(len(self._labels), size=n)]


def _first_shape(path: str) -> list:
    import tensorflow as tf
    try:
        for raw in tf.data.TFRecordDataset(path).take(1):
            shape = list(tf.train.Example.FromString(raw.numpy()).features.feature['shape'].int64_list.value)
            if len(shape) == 3:
                return shape
            raise ImageSetError(f'{path}: first record has no [C, H, W] shape')
    except tf.errors.OpError as e:
        raise ImageSetError(f'{path}: not a readable TFRecord file ({e.message.splitlines()[0]})') from None
    raise ImageSetError(f'{path}: the file holds no records')


class FolderImageSet(ImageSet):
    kind = 'folder'

    def __init__(self, path: str):
        self.path, self.name = path, os.path.basename(os.path.normpath(path))
        self.files = sorted(
            os.path.join(root, f) for root, _, names in os.walk(path) for f in names
            if f.lower().endswith(IMAGE_EXTENSIONS))
        if not self.files:
            raise ImageSetError(f'{path}: no images ({", ".join(IMAGE_EXTENSIONS)}) in the folder')
        first = self._load(self.files[0])
        self.channels, self.resolution = first.shape[0], first.shape[1]
        if first.shape[1] != first.shape[2]:
            raise ImageSetError(f'{self.files[0]}: image is {first.shape[2]}x{first.shape[1]}, expected square')
        self.num_images = len(self.files)

    @staticmethod
    def _load(path: str) -> np.ndarray:
        from PIL import Image
        try:
            with Image.open(path) as img:
                img.load()
                if img.mode == 'L':
                    return np.asarray(img, np.uint8)[None]                      # [1, H, W]
                if img.mode in ('RGBA', 'LA', 'PA') or (img.mode == 'P' and 'transparency' in img.info):
                    rgba = img.convert('RGBA')
                    img = Image.alpha_composite(Image.new('RGBA', rgba.size, (255, 255, 255, 255)), rgba)
                return np.asarray(img.convert('RGB'), np.uint8).transpose(2, 0, 1)  # [3, H, W]
        except (OSError, ValueError, SyntaxError) as e:
            raise ImageSetError(f'{path}: not a readable image ({e})') from None

    def fingerprint(self, cache_dir: Optional[str] = None) -> str:
        memo = _FingerprintMemo(cache_dir)
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f'{os.path.relpath(f, self.path)}\0{memo.sha256(f)}\n'.encode())
        memo.save()
        return digest.hexdigest()

    def iterate(self, minibatch_size: int, num_images: int) -> Iterator[np.ndarray]:
        files = self.files[:num_images]
        for i in range(0, len(files), minibatch_size):
            batch = [self._load(f) for f in files[i:i + minibatch_size]]
            for f, img in zip(files[i:i + minibatch_size], batch):
                if img.shape != (self.channels, self.resolution, self.resolution):
                    raise ImageSetError(f'{f}: image is {img.shape[0]}x{img.shape[2]}x{img.shape[1]} '
                                        f'(channels x width x height); the set\'s first image is '
                                        f'{self.channels}x{self.resolution}x{self.resolution}')
            yield np.stack(batch)


def open_image_set(path: str) -> ImageSet:
    """A TFRecord dataset folder or a folder of images, told apart by their files.

    Raises:
        ImageSetError (a ValueError) naming the path when it is missing or holds no images.
    """
    if not os.path.exists(path):
        raise ImageSetError(f'{path}: no such folder')
    if not os.path.isdir(path):
        raise ImageSetError(f'{path}: not a folder (give a dataset folder or a folder of images)')
    if glob.glob(os.path.join(glob.escape(path), '*.tfrecords')):
        return TFRecordImageSet(path)
    return FolderImageSet(path)
