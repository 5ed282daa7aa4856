"""Tests of training/dataset.py: TFRecordDataset reading official-format files.

The datasets here are written by a minimal exporter inside this file that follows spec 5.2 with
plain tf.io / tf.train (as NVIDIA's TFRecordExporter does), not by training/dataset_tool.py, so
the reader is checked against the format rather than against our writer.
"""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.dataset import TFRecordDataset  # noqa: E402

N = 12


def make_images(n=N, res=16):
    """Image k: channel 0 = k everywhere, channel 1 = column index * 10 (asymmetric in W)."""
    imgs = np.zeros([n, 3, res, res], np.uint8)
    for k in range(n):
        imgs[k, 0] = k
        imgs[k, 1] = (np.arange(res) * 10)[None, :]
        imgs[k, 2] = 200
    return imgs


def official_export(tfrecord_dir, images_nchw, labels=None):
    """Spec 5.2 exporter: one file per lod, 2x2 float32 box chain, rint quantisation."""
    os.makedirs(tfrecord_dir, exist_ok=True)
    name = os.path.basename(tfrecord_dir)
    rl = int(np.log2(images_nchw.shape[2]))
    writers = [tf.io.TFRecordWriter(os.path.join(tfrecord_dir, '%s-r%02d.tfrecords' % (name, rl - lod)))
               for lod in range(rl - 1)]
    for img in images_nchw:
        for lod, writer in enumerate(writers):
            if lod:
                img = img.astype(np.float32)
                img = (img[:, 0::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 0::2] + img[:, 1::2, 1::2]) * 0.25
            quant = np.rint(img).clip(0, 255).astype(np.uint8)
            ex = tf.train.Example(features=tf.train.Features(feature={
                'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=quant.shape)),
                'data': tf.train.Feature(bytes_list=tf.train.BytesList(value=[quant.tobytes()]))}))
            writer.write(ex.SerializeToString())
    for writer in writers:
        writer.close()
    if labels is not None:
        with open(os.path.join(tfrecord_dir, name + '-rxx.labels'), 'wb') as f:
            np.save(f, labels.astype(np.float32))


@pytest.fixture(scope='module')
def ds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('data') / 'toy')
    labels = np.eye(3, dtype=np.float32)[np.arange(N) % 3]
    official_export(path, make_images(), labels)
    return path


def ids(images):
    return images[:, 0, 0, 0].astype(int).tolist()


def test_attributes(ds_dir):
    d = TFRecordDataset(ds_dir, max_label_size='full', seed=0)
    assert (d.name, d.resolution, d.resolution_log2, d.shape) == ('toy', 16, 4, [3, 16, 16])
    assert (d.dtype, d.dynamic_range, d.label_size, d.label_dtype) == ('uint8', [0, 255], 3, 'float32')
    assert TFRecordDataset(ds_dir).label_size == 0   # max_label_size=0: no labels
    assert TFRecordDataset(ds_dir, max_label_size=2).label_size == 2


def test_minibatch_per_lod_and_labels(ds_dir):
    d = TFRecordDataset(ds_dir, max_label_size='full', seed=1)
    images = make_images()
    for lod, res in ((0, 16), (1, 8), (1.5, 8), (2, 4)):
        x, y = d.get_minibatch_np(5, lod)
        assert x.dtype == np.uint8 and x.shape == (5, 3, res, res)
        assert y.dtype == np.float32 and y.shape == (5, 3)
        for img, label in zip(x, y):
            k = int(img[0, 0, 0])
            assert label.tolist() == np.eye(3)[k % 3].tolist()   # labels stay with their image
            f = 16 // res   # block mean of the column pattern: exact, then rint
            ref = np.rint(images[k].astype(np.float64).reshape(3, res, f, res, f).mean(axis=(2, 4)))
            np.testing.assert_array_equal(img, ref)


def test_order_repeat_max_images(ds_dir):
    d = TFRecordDataset(ds_dir, repeat=False, shuffle_mb=0)
    x, _ = d.get_minibatch_np(5)
    assert ids(x) == [0, 1, 2, 3, 4]
    assert ids(d.get_minibatch_tf()[0].numpy()) == [5, 6, 7, 8, 9]
    assert ids(d.get_minibatch_tf()[0].numpy()) == [10, 11]
    with pytest.raises(StopIteration):
        d.get_minibatch_tf()
    d = TFRecordDataset(ds_dir, repeat=True, shuffle_mb=0, max_images=3)
    assert ids(d.get_minibatch_np(7)[0]) == [0, 1, 2, 0, 1, 2, 0]


def test_shuffle_is_deterministic_given_seed(ds_dir):
    def seq(seed):
        d = TFRecordDataset(ds_dir, seed=seed)
        return [ids(d.get_minibatch_np(6)[0]) for _ in range(4)]
    a, b, c = seq(3), seq(3), seq(4)
    assert a == b and a != c
    assert sorted(a[0] + a[1]) == list(range(N))   # one epoch = every image once
    assert a[0] != list(range(6))


def test_mirror_augment(ds_dir):
    d = TFRecordDataset(ds_dir, mirror_augment=True, seed=5)
    x, _ = d.get_minibatch_np(32)
    pattern = np.arange(16) * 10
    flipped = [bool((img[1, 0] == pattern[::-1]).all()) for img in x]
    plain = [bool((img[1, 0] == pattern).all()) for img in x]
    assert all(f != p for f, p in zip(flipped, plain))     # each is one or the other
    assert 4 <= sum(flipped) <= 28
    again = TFRecordDataset(ds_dir, mirror_augment=True, seed=5).get_minibatch_np(32)[0]
    np.testing.assert_array_equal(x, again)


def test_augment_fn_hook(ds_dir):
    seen = []

    def invert(images):
        seen.append((images.dtype, images.shape.as_list()))
        return tf.numpy_function(lambda a: (255 - a).astype(np.uint8), [images], tf.uint8)

    d = TFRecordDataset(ds_dir, augment_fn=invert, shuffle_mb=0, repeat=False)
    x, _ = d.get_minibatch_np(4, lod=1)
    assert seen and seen[0][0] == tf.uint8 and seen[0][1][1:] == [8, 8, 3]   # NHWC uint8
    ref = TFRecordDataset(ds_dir, shuffle_mb=0, repeat=False).get_minibatch_np(4, lod=1)[0]
    np.testing.assert_array_equal(x, 255 - ref)


def test_random_labels_and_no_labels(ds_dir):
    d = TFRecordDataset(ds_dir, max_label_size='full', seed=2)
    y = d.get_random_labels_np(10)
    assert y.shape == (10, 3) and (y.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(y, TFRecordDataset(ds_dir, max_label_size='full', seed=2)
                                  .get_random_labels_np(10))
    d = TFRecordDataset(ds_dir)
    assert d.get_random_labels_np(4).shape == (4, 0)
    assert d.get_minibatch_np(4)[1].shape == (4, 0)


def test_lower_resolution_and_missing_lod(tmp_path, ds_dir):
    d = TFRecordDataset(ds_dir, resolution=8)
    assert d.shape == [3, 8, 8]
    assert d.get_minibatch_np(2, 0)[0].shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match='lod 2 not available'):
        d.configure(2, 2)
    broken = str(tmp_path / 'broken')
    official_export(broken, make_images(2))
    os.remove(os.path.join(broken, 'broken-r03.tfrecords'))
    with pytest.raises(ValueError, match=r'no file for lod \[1\]'):
        TFRecordDataset(broken)
    d.close()


def test_augment_fn_with_index(ds_dir):
    def add_index(images, index):
        return images + tf.cast(index, tf.uint8)

    d = TFRecordDataset(ds_dir, augment_fn=add_index, shuffle_mb=0, repeat=False)
    first = d.get_minibatch_np(4)[0]
    second = d.get_minibatch_tf()[0].numpy()
    assert ids(first) == [0, 1, 2, 3] and ids(second) == [5, 6, 7, 8]   # ids + batch index 0, 1


def test_reads_the_albumentations_hook(ds_dir):
    from training import augment
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fn = augment.make_albu_augment_fn('mild', seed=1)
    x1 = TFRecordDataset(ds_dir, augment_fn=fn, seed=0).get_minibatch_np(4)[0]
    x2 = TFRecordDataset(ds_dir, augment_fn=fn, seed=0).get_minibatch_np(4)[0]
    assert x1.shape == (4, 3, 16, 16) and x1.dtype == np.uint8
    np.testing.assert_array_equal(x1, x2)


def test_pipelines_have_tf_data_autotuning_off(ds_dir):
    # The autotuner's thread made deleting an iterator wait for up to half a minute, and training
    # re-opens the dataset (deleting its iterators) at every network snapshot (issue 20).
    d = TFRecordDataset(ds_dir, mirror_augment=True, seed=0)
    for key in [(4, 0), (2, 1)]:
        d.configure(*key)
        d.get_minibatch_tf()
    assert len(d._iterators) == 2
    for it in d._iterators.values():
        assert it._dataset.options().autotune.enabled is False


@pytest.mark.slow
def test_close_after_a_long_lived_pipeline_is_immediate(ds_dir):
    # What the option above buys: with autotuning on, close() waited 5-30 s in 2 of 3 such trials
    # (the autotuner's period grows with the iterator's age; deletion waited for it to run out).
    import time
    for _trial in range(3):
        d = TFRecordDataset(ds_dir, mirror_augment=True, seed=0)
        d.configure(8, 0)
        d.get_minibatch_tf()
        d.configure(4, 1)
        start = time.time()
        while time.time() - start < 12:
            d.get_minibatch_tf()
            time.sleep(0.01)
        start = time.time()
        d.close()
        assert time.time() - start < 1.0
