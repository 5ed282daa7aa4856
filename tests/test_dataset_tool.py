"""Tests of dataset_tool.py / training/dataset_tool.py: format rules, input kinds, bad input, CLI.

The written files are read back by an independent reader defined here (TFRecord framing with
CRC32C, and the tf.train.Example protobuf parsed from its wire format by hand), never by the
library's own readers. Expected pixel values are hand-computed or come from a plain numpy
reference (block means with round-half-to-even).
"""
import os
import struct
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from training import dataset_tool as lib  # noqa: E402
import dataset_tool  # noqa: E402


# ----------------------------------------------------------------------------------------------
# Independent reader of TFRecord files (shares no code with the library).

_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path, check_crc=True):
    """Raw record payloads of an uncompressed TFRecord file."""
    with open(path, 'rb') as f:
        buf = f.read()
    pos, out = 0, []
    while pos < len(buf):
        header = buf[pos:pos + 8]
        (length,) = struct.unpack('<Q', header)
        (len_crc,) = struct.unpack('<I', buf[pos + 8:pos + 12])
        data = buf[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack('<I', buf[pos + 12 + length:pos + 16 + length])
        assert len(data) == length, 'truncated record'
        if check_crc:
            assert len_crc == masked_crc(header), 'bad length CRC'
            assert data_crc == masked_crc(data), 'bad data CRC'
        out.append(data)
        pos += 16 + length
    return out


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _fields(buf):
    """(field number, wire type, value) triples of one protobuf message."""
    pos, out = 0, []
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise AssertionError(f'unexpected wire type {wire}')
        out.append((field, wire, value))
    return out


def parse_example(raw):
    """tf.train.Example bytes -> {name: ('bytes', [..]) | ('int64', [..]) | ('float', [..])}."""
    features = {}
    for field, _w, feats in _fields(raw):
        assert field == 1  # Example.features
        for f2, _w2, entry in _fields(feats):
            assert f2 == 1  # Features.feature (map entry)
            key = value = None
            for f3, _w3, v in _fields(entry):
                if f3 == 1:
                    key = v.decode()
                elif f3 == 2:
                    value = v
            (kind, _w4, payload), = _fields(value)
            if kind == 1:
                features[key] = ('bytes', [v for _f, _w, v in _fields(payload)])
            elif kind == 3:
                ints = []
                for _f, w, v in _fields(payload):
                    if w == 0:
                        ints.append(v)
                    else:  # Packed.
                        p = 0
                        while p < len(v):
                            x, p = _varint(v, p)
                            ints.append(x)
                features[key] = ('int64', ints)
            else:
                features[key] = ('float', payload)
    return features


def read_images(path, check_crc=True):
    """All records of a dataset file as (shape list, uint8 CHW array)."""
    out = []
    for raw in read_records(path, check_crc):
        feats = parse_example(raw)
        assert set(feats) == {'shape', 'data'}, sorted(feats)
        kind, shape = feats['shape']
        assert kind == 'int64' and len(shape) == 3
        kind, data = feats['data']
        assert kind == 'bytes' and len(data) == 1
        out.append((shape, np.frombuffer(data[0], np.uint8).reshape(shape)))
    return out


# ----------------------------------------------------------------------------------------------
# Helpers.

def save(path, array_or_img, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = array_or_img if isinstance(array_or_img, PIL.Image.Image) else PIL.Image.fromarray(array_or_img)
    img.save(path, **kwargs)
    return path


def create(tmp_path, image_dir, name='ds', **kwargs):
    kwargs.setdefault('num_workers', 1)
    kwargs.setdefault('progress', False)
    kwargs.setdefault('log', lambda msg: None)
    out = str(tmp_path / name)
    summary = lib.create_from_images(out, str(image_dir), **kwargs)
    return out, summary


def records(out, rl, check_crc=True):
    name = os.path.basename(out)
    return read_images(os.path.join(out, f'{name}-r{rl:02d}.tfrecords'), check_crc)


def block_mean_reference(img_chw, factor):
    """rint of the exact mean over factor x factor blocks (== the official float32 chain for
    these small sizes, since every partial value is exactly representable)."""
    c, h, w = img_chw.shape
    blocks = img_chw.astype(np.float64).reshape(c, h // factor, factor, w // factor, factor)
    return np.rint(blocks.mean(axis=(2, 4))).astype(np.uint8)


def listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else None


# ----------------------------------------------------------------------------------------------
# Format rules.

def test_file_names_features_and_pyramid(tmp_path):
    rnd = np.random.RandomState(0)
    images = [rnd.randint(0, 256, [16, 16, 3]).astype(np.uint8) for _ in range(3)]
    for i, img in enumerate(images):
        save(str(tmp_path / 'in' / f'{i}.png'), img)
    out, summary = create(tmp_path, tmp_path / 'in', shuffle=False)
    assert listing(out) == ['ds-r02.tfrecords', 'ds-r03.tfrecords', 'ds-r04.tfrecords']
    assert summary['num_images'] == 3 and summary['label_size'] == 0
    for rl, factor in ((4, 1), (3, 2), (2, 4)):
        recs = records(out, rl)
        assert len(recs) == 3
        for (shape, data), img in zip(recs, images):
            assert shape == [3, 16 // factor, 16 // factor]
            np.testing.assert_array_equal(data, block_mean_reference(img.transpose(2, 0, 1), factor))


def test_downsampling_rounding_hand_values(tmp_path):
    # 16x16 grayscale; the 4x4 blocks at the top-left map to one pixel of the 4x4 level.
    img = np.zeros([16, 16], np.uint8)
    img[0:2, 0:2] = [[1, 1], [0, 0]]   # mean 0.5  -> 8x8 level stores rint(0.5)  = 0
    img[0:2, 2:4] = [[1, 1], [0, 0]]   # mean 0.5  -> 0
    img[2:4, 0:2] = [[1, 1], [0, 0]]   # mean 0.5  -> 0
    img[2:4, 2:4] = [[1, 1], [1, 0]]   # mean 0.75 -> 1
    # 4x4 level from the unquantised 8x8 values: (0.5+0.5+0.5+0.75)/4 = 0.5625 -> 1
    # (from the quantised ones it would be 0.25 -> 0).
    img[4:6, 4:6] = [[3, 3], [2, 2]]   # 2.5 -> 2 (half to even)
    img[4:6, 6:8] = [[4, 4], [3, 3]]   # 3.5 -> 4 (half to even)
    save(str(tmp_path / 'in' / 'a.png'), img)
    out, _ = create(tmp_path, tmp_path / 'in')
    (shape8, l8), = records(out, 3)
    (shape4, l4), = records(out, 2)
    assert shape8 == [1, 8, 8] and shape4 == [1, 4, 4]
    assert l8[0, 0:2, 0:2].tolist() == [[0, 0], [0, 1]]
    assert l8[0, 2, 2] == 2 and l8[0, 2, 3] == 4
    assert l4[0, 0, 0] == 1
    # 8x8 level of block (1,1): (2.5 + 3.5 + 0 + 0)/4 = 1.5 -> 2
    assert l4[0, 1, 1] == 2


def _numbered_images(folder, n, size=4):
    for i in range(n):
        save(str(folder / f'img{i:03d}.png'), np.full([size, size], 10 * i, np.uint8))


def test_record_order_official_shuffle(tmp_path):
    _numbered_images(tmp_path / 'in', 12)
    expected = np.arange(12)
    np.random.RandomState(123).shuffle(expected)   # The official choose_shuffled_order().
    out, _ = create(tmp_path, tmp_path / 'in', name='a')
    assert [int(d[0, 0, 0]) // 10 for _s, d in records(out, 2)] == expected.tolist()
    out, _ = create(tmp_path, tmp_path / 'in', name='b', shuffle=False)
    assert [int(d[0, 0, 0]) // 10 for _s, d in records(out, 2)] == list(range(12))
    expected7 = np.arange(12)
    np.random.RandomState(7).shuffle(expected7)
    out, _ = create(tmp_path, tmp_path / 'in', name='c', seed=7)
    assert [int(d[0, 0, 0]) // 10 for _s, d in records(out, 2)] == expected7.tolist()


def test_labels_from_subfolders(tmp_path):
    values = {'cats': [10, 20, 30], 'dogs': [40, 50]}
    for cls, vals in values.items():
        for v in vals:
            save(str(tmp_path / 'in' / cls / f'{v}.png'), np.full([4, 4, 3], v, np.uint8))
    out, summary = create(tmp_path, tmp_path / 'in')
    assert summary['class_names'] == ['cats', 'dogs']
    assert listing(out) == ['ds-r02.tfrecords', 'ds-rxx.labels']
    with open(os.path.join(out, 'ds-rxx.labels'), 'rb') as f:
        assert f.read(6) == b'\x93NUMPY'
        f.seek(0)
        labels = np.load(f)
    assert labels.dtype == np.float32 and labels.shape == (5, 2)
    for (_s, data), row in zip(records(out, 2), labels):
        expected_class = 0 if int(data[0, 0, 0]) in values['cats'] else 1
        assert row.tolist() == [float(expected_class == 0), float(expected_class == 1)]


def test_parallel_output_is_identical(tmp_path):
    rnd = np.random.RandomState(1)
    for i in range(6):
        save(str(tmp_path / 'in' / f'{i}.png'), rnd.randint(0, 256, [8, 8, 3]).astype(np.uint8))
    a, _ = create(tmp_path, tmp_path / 'in', name='a', num_workers=1)
    b, _ = create(tmp_path, tmp_path / 'in', name='b', num_workers=2)
    for rl in (3, 2):
        with open(os.path.join(a, f'a-r{rl:02d}.tfrecords'), 'rb') as fa, \
                open(os.path.join(b, f'b-r{rl:02d}.tfrecords'), 'rb') as fb:
            assert fa.read() == fb.read()


# ----------------------------------------------------------------------------------------------
# Input kinds.

def _single(tmp_path, img, name='ds', filename='a.png', save_kwargs=None, **kwargs):
    save(str(tmp_path / ('in_' + name) / filename), img, **(save_kwargs or {}))
    out, _ = create(tmp_path, tmp_path / ('in_' + name), name=name, **kwargs)
    (shape, data), = records(out, int(np.log2(records_res(out))))
    return shape, data


def records_res(out):
    names = [n for n in os.listdir(out) if n.endswith('.tfrecords')]
    return 2 ** max(int(n[-12:-10]) for n in names)


def test_grayscale_and_rgb(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    shape, data = _single(tmp_path, gray, 'g')
    assert shape == [1, 4, 4] and data[0].tolist() == gray.tolist()
    shape, data = _single(tmp_path, gray, 'g3', channels=3)
    assert shape == [3, 4, 4] and all(data[c].tolist() == gray.tolist() for c in range(3))
    rgb = np.zeros([4, 4, 3], np.uint8)
    rgb[0, :, 0] = 255   # red row
    rgb[1, :, 1] = 255   # green row
    rgb[2, :, 2] = 255   # blue row
    shape, data = _single(tmp_path, rgb, 'rgb')
    assert shape == [3, 4, 4] and data.transpose(1, 2, 0).tolist() == rgb.tolist()
    shape, data = _single(tmp_path, rgb, 'rgb1', channels=1)
    # ITU-R 601-2 luma: 0.299 R + 0.587 G + 0.114 B, rounded.
    assert shape == [1, 4, 4] and data[0, :, 0].tolist() == [76, 150, 29, 0]


def test_rgba_composited_on_background(tmp_path):
    rgba = np.zeros([4, 4, 4], np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 128
    rgba[0, 0] = [0, 0, 255, 255]  # opaque blue
    rgba[0, 1] = [0, 255, 0, 0]    # fully transparent
    _s, data = _single(tmp_path, rgba, 'white')
    px = data.transpose(1, 2, 0)
    # 255 * 128/255 + 255 * 127/255 = 255 ; 0 * a + 255 * 127/255 = 127.
    assert px[1, 1].tolist() == [255, 127, 127]
    assert px[0, 0].tolist() == [0, 0, 255] and px[0, 1].tolist() == [255, 255, 255]
    _s, data = _single(tmp_path, rgba, 'black', background='black')
    assert data.transpose(1, 2, 0)[1, 1].tolist() == [128, 0, 0]
    la = np.stack([np.full([4, 4], 200, np.uint8), np.full([4, 4], 0, np.uint8)], -1)
    _s, data = _single(tmp_path, PIL.Image.fromarray(la, 'LA'), 'la', background='10,20,30',
                       channels=3)
    assert data.transpose(1, 2, 0)[0, 0].tolist() == [10, 20, 30]
    # Grayscale output (the default for LA): luma of the background, 2.99 + 11.74 + 3.42 -> 18.
    _s, data = _single(tmp_path, PIL.Image.fromarray(la, 'LA'), 'la1', background='10,20,30')
    assert data.shape == (1, 4, 4) and data[0, 0, 0] == 18


def test_palette_images(tmp_path):
    img = PIL.Image.new('P', (4, 4), 1)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    img.putpixel((0, 0), 0)
    _s, data = _single(tmp_path, img, 'p')
    px = data.transpose(1, 2, 0)
    assert px[0, 0].tolist() == [0, 0, 0] and px[3, 3].tolist() == [200, 100, 50]
    _s, data = _single(tmp_path, img, 'pt', save_kwargs=dict(transparency=0))
    px = data.transpose(1, 2, 0)
    assert px[0, 0].tolist() == [255, 255, 255] and px[3, 3].tolist() == [200, 100, 50]


def test_sixteen_bit_grayscale(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 128 * 257]] * 4, np.uint16)
    img = PIL.Image.fromarray(values)
    assert img.mode.startswith('I;16')
    shape, data = _single(tmp_path, img, 'i16')
    assert shape == [1, 4, 4] and data[0, 0].tolist() == [0, 100, 255, 128]


def test_exif_orientation(tmp_path):
    arr = np.zeros([4, 4], np.uint8)
    arr[:, 0] = 255  # left column white
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    _s, data = _single(tmp_path, arr, 'exif', save_kwargs=dict(exif=exif))
    assert data[0, 0].tolist() == [255] * 4 and data[0, 1:].max() == 0


# ----------------------------------------------------------------------------------------------
# Sizes and resize modes.

def test_center_crop_pad_stretch(tmp_path):
    wide = np.zeros([4, 8], np.uint8)
    wide[:, :] = np.arange(8, dtype=np.uint8) * 10   # column x has value 10 x
    _s, data = _single(tmp_path, wide, 'crop', resize='center-crop', resolution=4)
    assert data[0, 0].tolist() == [20, 30, 40, 50]
    low = np.full([2, 4], 99, np.uint8)
    shape, data = _single(tmp_path, low, 'pad', resize='pad', pad_color='#0a141e', channels=3)
    assert shape == [3, 4, 4]
    px = data.transpose(1, 2, 0)
    assert px[0, 0].tolist() == [10, 20, 30] and px[3, 3].tolist() == [10, 20, 30]
    assert px[1, 0].tolist() == [99, 99, 99] and px[2, 3].tolist() == [99, 99, 99]
    shape, data = _single(tmp_path, np.full([6, 12, 3], 77, np.uint8), 'stretch',
                          resize='stretch', resolution=8)
    assert shape == [3, 8, 8] and (data == 77).all()


def test_default_resolution_for_non_square_first_image(tmp_path):
    shape, _ = _single(tmp_path, np.zeros([12, 6], np.uint8), 'nc', resize='center-crop')
    assert shape == [1, 4, 4]   # largest power of two <= shorter side 6
    shape, _ = _single(tmp_path, np.zeros([12, 6], np.uint8), 'np', resize='pad')
    assert shape == [1, 8, 8]   # largest power of two <= longer side 12


def test_mixed_sizes(tmp_path):
    save(str(tmp_path / 'in' / 'a.png'), np.zeros([8, 8], np.uint8))
    save(str(tmp_path / 'in' / 'b.png'), np.full([16, 16], 50, np.uint8))
    with pytest.raises(lib.DatasetToolError, match=r'b\.png.*16x16, expected 8x8'):
        create(tmp_path, tmp_path / 'in', name='e', shuffle=False)
    assert not os.path.exists(tmp_path / 'e')
    out, summary = create(tmp_path, tmp_path / 'in', name='ok', resize='center-crop', shuffle=False)
    assert summary['num_images'] == 2
    assert [d[0, 0, 0] for _s, d in records(out, 3)] == [0, 50]


def test_non_power_of_two_is_an_explicit_choice(tmp_path):
    save(str(tmp_path / 'in' / 'a.png'), np.zeros([6, 6], np.uint8))
    with pytest.raises(lib.DatasetToolError, match=r'a\.png.*6x6.*--resize'):
        create(tmp_path, tmp_path / 'in')
    with pytest.raises(lib.DatasetToolError, match='power of two'):
        create(tmp_path, tmp_path / 'in', resolution=12, resize='stretch')
    _out, summary = create(tmp_path, tmp_path / 'in', resize='stretch', resolution=4)
    assert summary['resolution'] == 4


# ----------------------------------------------------------------------------------------------
# Bad input and output.

def _folder_with_bad_files(root):
    for i in range(4):
        save(str(root / f'{i}.png'), np.full([4, 4], 10 * i, np.uint8))
    good = (root / '0.png').read_bytes()
    (root / '1b_truncated.png').write_bytes(good[:-20])  # header intact, pixel data cut
    (root / '2b_notes.txt').write_text('not an image')
    return root


def test_bad_files_raise_naming_the_file_and_write_nothing(tmp_path):
    root = _folder_with_bad_files(tmp_path / 'in')
    with pytest.raises(lib.DatasetToolError, match=r'1b_truncated\.png: unreadable or corrupt'):
        create(tmp_path, root, shuffle=False)
    assert not os.path.exists(tmp_path / 'ds')
    os.remove(root / '1b_truncated.png')
    os.makedirs(tmp_path / 'ds')
    with pytest.raises(lib.DatasetToolError, match=r'2b_notes\.txt: not an image'):
        create(tmp_path, root, shuffle=False)
    assert listing(tmp_path / 'ds') == []   # no temporary or final files left


def test_skip_bad_lists_and_skips(tmp_path):
    root = _folder_with_bad_files(tmp_path / 'in')
    messages = []
    out, summary = create(tmp_path, root, shuffle=False, skip_bad=True, log=messages.append)
    assert [os.path.basename(p) for p, _r in summary['bad']] == ['1b_truncated.png', '2b_notes.txt']
    assert any('1b_truncated.png' in m for m in messages) and any('2b_notes.txt' in m for m in messages)
    assert [int(d[0, 0, 0]) for _s, d in records(out, 2)] == [0, 10, 20, 30]


def test_skip_bad_keeps_labels_aligned(tmp_path):
    for cls, v in (('a', 10), ('a', 11), ('b', 20), ('b', 21)):
        save(str(tmp_path / 'in' / cls / f'{v}.png'), np.full([4, 4], v, np.uint8))
    (tmp_path / 'in' / 'a' / '10x.png').write_bytes(b'\x89PNG garbage')
    out, summary = create(tmp_path, tmp_path / 'in', skip_bad=True)
    with open(os.path.join(out, 'ds-rxx.labels'), 'rb') as f:
        labels = np.load(f)
    recs = records(out, 2)
    assert len(recs) == labels.shape[0] == 4
    for (_s, d), row in zip(recs, labels):
        assert row.argmax() == (0 if d[0, 0, 0] < 20 else 1)


def test_empty_and_missing_input_folder(tmp_path):
    os.makedirs(tmp_path / 'empty')
    (tmp_path / 'empty' / '.hidden').write_text('x')
    with pytest.raises(lib.DatasetToolError, match='empty: input folder holds no files'):
        create(tmp_path, tmp_path / 'empty')
    with pytest.raises(lib.DatasetToolError, match='does not exist'):
        create(tmp_path, tmp_path / 'nope')


def test_stray_file_next_to_class_folders(tmp_path):
    save(str(tmp_path / 'in' / 'a' / '1.png'), np.zeros([4, 4], np.uint8))
    save(str(tmp_path / 'in' / 'loose.png'), np.zeros([4, 4], np.uint8))
    with pytest.raises(lib.DatasetToolError, match=r'loose\.png: file lies directly'):
        create(tmp_path, tmp_path / 'in')
    _out, summary = create(tmp_path, tmp_path / 'in', labels='none')
    assert summary['num_images'] == 2 and summary['label_size'] == 0


def test_unwritable_output_folder(tmp_path):
    _numbered_images(tmp_path / 'in', 2)
    (tmp_path / 'afile').write_text('x')
    with pytest.raises(lib.DatasetToolError, match=r'afile.*cannot create the output folder'):
        lib.create_from_images(str(tmp_path / 'afile' / 'ds'), str(tmp_path / 'in'),
                               num_workers=1, progress=False, log=lambda m: None)


def test_existing_dataset_is_refused_then_overwritten(tmp_path):
    save(str(tmp_path / 'in8' / 'a.png'), np.full([8, 8], 5, np.uint8))
    _numbered_images(tmp_path / 'in4', 3)
    out, _ = create(tmp_path, tmp_path / 'in8')
    before = {n: (tmp_path / 'ds' / n).read_bytes() for n in listing(out)}
    with pytest.raises(lib.DatasetToolError, match=r'already holds a dataset named .ds.*--overwrite'):
        create(tmp_path, tmp_path / 'in4')
    assert {n: (tmp_path / 'ds' / n).read_bytes() for n in listing(out)} == before
    create(tmp_path, tmp_path / 'in4', overwrite=True)
    assert listing(out) == ['ds-r02.tfrecords']   # the stale 8x8 file is gone
    assert len(records(out, 2)) == 3


def test_interrupt_leaves_no_dataset(tmp_path, monkeypatch):
    _numbered_images(tmp_path / 'in', 6)
    calls = []
    real = lib._process_one

    def interrupted(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(lib, '_process_one', interrupted)
    os.makedirs(tmp_path / 'ds')
    with pytest.raises(KeyboardInterrupt):
        create(tmp_path, tmp_path / 'in')
    assert listing(tmp_path / 'ds') == []


# ----------------------------------------------------------------------------------------------
# CLI and the inspection commands.

DATASET_TOOL_ERRORS = [   # (id, arguments, words in the error line); names are relative to tmp_path
    ('input-missing', ['create_from_images', 'out', 'nope'], ['nope', 'input folder does not exist']),
    ('input-empty', ['create_from_images', 'out', 'empty'], ['empty', 'input folder holds no files']),
    ('input-corrupt-image', ['create_from_images', 'out', 'imgs', '--workers', '1', '--no-progress'],
     ['c.png', 'not an image']),         # found while converting: without the progress bar's lines
    ('output-is-a-file', ['create_from_images', 'afile', 'good', '--workers', '1'], ['afile', 'output folder']),
    ('dataset-exists', ['create_from_images', 'ds', 'good', '--workers', '1'], ['ds', '--overwrite']),
    ('resolution-not-power-of-two', ['create_from_images', 'out', 'good', '--resolution', '48'],
     ['create_from_images', '--resolution', '48']),
    ('demo-resolution', ['create_demo', 'demo', '--resolution', '3'], ['create_demo', '--resolution']),
    ('no-command', [], ['command']),
    ('unknown-command', ['convert', 'x'], ['convert']),
    ('info-missing', ['info', 'nope'], ['nope', 'dataset folder does not exist']),
    ('info-not-tfrecords', ['info', 'garbage'], ['garbage-r03.tfrecords', 'not a TFRecord file']),
    ('info-no-records', ['info', 'nodata'], ['nodata-r03.tfrecords', 'holds no records']),
    ('display-missing-resolution', ['display', 'ds', '-o', 'grid.png', '--resolution', '64'], ['ds', 'no 64x64 file']),
    ('display-into-a-file', ['display', 'ds', '-o', 'afile/grid.png'], ['afile', 'is a file']),
    ('display-zero-columns', ['display', 'ds', '-o', 'grid.png', '--columns', '0'], ['display', '--columns']),
    ('extract-into-a-file', ['extract', 'ds', 'afile'], ['afile', 'is a file']),
    ('extract-not-tfrecords', ['extract', 'garbage', 'ex'], ['garbage-r03.tfrecords', 'not a TFRecord file']),
    ('compare-missing', ['compare', 'ds', 'nope'], ['nope', 'dataset folder does not exist']),
]


@pytest.mark.parametrize('case,args,words', DATASET_TOOL_ERRORS, ids=[c[0] for c in DATASET_TOOL_ERRORS])
def test_cli_user_errors_one_line_and_nothing_written(tmp_path, case, args, words):
    from conftest import assert_user_error
    for name in ('empty', 'nodata'):
        os.makedirs(tmp_path / name)
    (tmp_path / 'nodata' / 'nodata-r03.tfrecords').write_bytes(b'')
    save(str(tmp_path / 'imgs' / 'a.png'), np.zeros([8, 8, 3], np.uint8))
    (tmp_path / 'imgs' / 'c.png').write_text('not an image')
    save(str(tmp_path / 'good' / 'a.png'), np.zeros([8, 8, 3], np.uint8))
    assert dataset_tool.main(['create_from_images', str(tmp_path / 'ds'), str(tmp_path / 'good'),
                              '--workers', '1', '--no-progress']) == 0
    os.makedirs(tmp_path / 'garbage')
    (tmp_path / 'garbage' / 'garbage-r03.tfrecords').write_text('hello, not a TFRecord file\n')
    (tmp_path / 'afile').write_text('a file where a folder should be')
    assert_user_error('dataset_tool.py', args, words, untouched=[tmp_path], cwd=str(tmp_path))


def test_cli_info_display_extract_compare(tmp_path, capsys):
    rnd = np.random.RandomState(3)
    imgs = [rnd.randint(0, 256, [8, 8, 3]).astype(np.uint8) for _ in range(3)]
    for i, img in enumerate(imgs):
        save(str(tmp_path / 'in' / 'c' / f'{i}.png'), img)
    out = str(tmp_path / 'ds')
    assert dataset_tool.main(['create_from_images', out, str(tmp_path / 'in'), '--shuffle', '0',
                              '--workers', '1', '--no-progress']) == 0
    assert dataset_tool.main(['info', out]) == 0
    text = capsys.readouterr().out
    assert 'ds-r03.tfrecords: 3 images, shape [3, 8, 8]' in text and 'labels: [3, 1]' in text
    grid = str(tmp_path / 'grid.png')
    assert dataset_tool.main(['display', out, '-o', grid, '--columns', '2']) == 0
    g = np.asarray(PIL.Image.open(grid))
    assert g.shape == (16, 16, 3)
    np.testing.assert_array_equal(g[8:16, 0:8], imgs[2])
    assert dataset_tool.main(['extract', out, str(tmp_path / 'ex'), '--no-progress']) == 0
    assert listing(tmp_path / 'ex') == ['img00000000.png', 'img00000001.png', 'img00000002.png']
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / 'ex' / 'img00000001.png')), imgs[1])
    # RandomState(2) puts these 3 files in another order than sorted.
    assert dataset_tool.main(['create_from_images', str(tmp_path / 'ds2'), str(tmp_path / 'in'),
                              '--seed', '2', '--workers', '1', '--no-progress']) == 0
    assert dataset_tool.main(['compare', out, out]) == 0
    assert dataset_tool.main(['compare', out, str(tmp_path / 'ds2')]) == 1
    assert dataset_tool.main(['info', str(tmp_path / 'nope')]) == 1


def test_help_runs():
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'dataset_tool.py'), 'create_from_images',
                           '--help'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and '--resize' in proc.stdout and '--skip-bad' in proc.stdout


# ----------------------------------------------------------------------------------------------
# The demo dataset.

def test_demo_plan_is_deterministic_and_balanced():
    plan = lib.demo_plan()
    assert plan == lib.demo_plan()
    counts = np.bincount([cls for cls, _p, _j in plan])
    assert len(counts) == 2 and counts[0] == counts[1] and 150 <= counts[0] <= 400
    heads = {p for cls, p, _j in plan if cls == 0}
    faces = {p for cls, p, _j in plan if cls == 1}
    assert len(heads) >= 200 and len(faces) >= 80 and not heads & faces
    # Skin-tone variants are included.
    assert any('-1f3fd' in os.path.basename(p) for p in heads)


def test_create_demo(tmp_path):
    summary = lib.create_demo(str(tmp_path / 'demo'), resolution=16, num_workers=1,
                              progress=False, log=lambda m: None)
    out = str(tmp_path / 'demo')
    assert listing(out) == ['demo-r02.tfrecords', 'demo-r03.tfrecords', 'demo-r04.tfrecords',
                            'demo-rxx.labels']
    recs = records(out, 4, check_crc=False)
    n = len(recs)
    assert 300 <= n <= 800 and summary['num_images'] == n
    with open(os.path.join(out, 'demo-rxx.labels'), 'rb') as f:
        labels = np.load(f)
    assert labels.shape == (n, 2) and (labels.sum(axis=1) == 1).all()
    assert labels[:, 0].sum() == labels[:, 1].sum()
    corners = np.stack([d[:, 0, 0] for _s, d in recs])
    assert corners.mean() > 240   # composited on white
    assert all(s == [3, 16, 16] for s, _d in recs)
