#!/usr/bin/env python3
"""Benchmark of create_from_images: images per second, parallel vs the single-process path.

Writes --num-images synthetic PNGs (smooth colour fields plus noise, --size x --size) to a
temporary folder, converts them twice in the same run, first with one process (the baseline:
decoding in the main process) and then with --workers decoding processes, and prints both rates
and their ratio. Nothing is kept. Example:

    python bench/bench_dataset_tool.py                 # 1000 images of 256x256
    python bench/bench_dataset_tool.py --num-images 200 --workers 2
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import PIL.Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training import dataset_tool as lib  # noqa: E402


def write_synthetic_images(folder, num_images, size, seed=0):
    rnd = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(num_images):
        a, b, c = rnd.uniform(0, 255, [3, 3])
        img = np.stack([a[k] * xx + b[k] * yy + c[k] * xx * yy for k in range(3)], -1) / 2
        img += rnd.normal(0, 8, img.shape)
        PIL.Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(os.path.join(folder, f'{i:05d}.png'))


def timed_run(image_dir, out_dir, workers):
    start = time.perf_counter()
    summary = lib.create_from_images(out_dir, image_dir, num_workers=workers, progress=False,
                                     log=lambda msg: None)
    return summary['num_images'] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--num-images', type=int, default=1000, help='synthetic images (default: 1000)')
    parser.add_argument('--size', type=int, default=256, help='image size, a power of two (default: 256)')
    parser.add_argument('--workers', type=int, default=os.cpu_count(),
                        help='decoding processes of the parallel run (default: CPU count)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bench-dataset-') as tmp:
        image_dir = os.path.join(tmp, 'images')
        os.makedirs(image_dir)
        write_synthetic_images(image_dir, args.num_images, args.size)
        import tensorflow  # noqa: F401  Imported once up front so neither run pays for it.
        base = timed_run(image_dir, os.path.join(tmp, 'serial'), 1)
        par = timed_run(image_dir, os.path.join(tmp, 'parallel'), args.workers)
    print(f'{args.num_images} images {args.size}x{args.size}')
    print(f'single process : {base:8.1f} img/s (baseline)')
    print(f'{args.workers} workers      : {par:8.1f} img/s')
    print(f'ratio          : {par / base:8.2f}x')


if __name__ == '__main__':
    main()
