#!/usr/bin/env python3
"""Create, inspect and compare datasets in the official StyleGAN multi-resolution TFRecord format.

Commands follow NVIDIA's dataset_tool.py: create_from_images, display (writes a grid PNG instead
of opening a window), info, extract, compare, plus create_demo (the embedded Twemoji faces
dataset). The library is training/dataset_tool.py; this script only parses arguments and reports.
Exit code 0 on success, 1 on bad input or output (message names the file), 130 on Ctrl-C.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from training import dataset_tool as lib  # noqa: E402


def _bool01(text):
    if text.lower() in ('1', 'true', 'yes'):
        return True
    if text.lower() in ('0', 'false', 'no'):
        return False
    raise argparse.ArgumentTypeError(f'expected 1 or 0, got {text!r}')


def _resolution(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 4 or value & (value - 1):
        raise argparse.ArgumentTypeError(f'expected a power of two >= 4, got {text!r}')
    return value


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def _add_create_args(p):
    p.add_argument('--shuffle', type=_bool01, default=True, metavar='0|1',
                   help='shuffle record order with RandomState(seed), as the official tool (default: 1)')
    p.add_argument('--seed', type=int, default=lib.OFFICIAL_SHUFFLE_SEED,
                   help='shuffle seed (default: 123, the official one)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace a dataset of the same name already in tfrecord_dir')
    p.add_argument('--workers', type=int, default=None,
                   help='decoding processes (default: up to the CPU count; 1 = no subprocesses)')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')


class _CommandParser(argparse.ArgumentParser):
    """A command's parser whose usage errors read `dataset_tool.py: error: <command>: ...`."""

    def error(self, message):
        self.print_usage(sys.stderr)
        command = self.prog.split()[-1]
        self.exit(2, f'dataset_tool.py: error: {command}: {message}\n')


def build_parser():
    parser = argparse.ArgumentParser(
        prog='dataset_tool.py', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True, metavar='command', parser_class=_CommandParser)

    p = sub.add_parser('create_from_images', help='convert a folder of images into TFRecords',
                       description='Convert a folder of images into <tfrecord_dir>/<name>-rNN.tfrecords '
                       '(every lod down to 4x4), and <name>-rxx.labels when the images sit in class '
                       'subfolders. Hidden files are ignored; files are read in sorted order.')
    p.add_argument('tfrecord_dir', help='output folder; its basename names the dataset files')
    p.add_argument('image_dir', help='input folder of images (or of class subfolders)')
    p.add_argument('--resolution', type=_resolution, default=None,
                   help='output size, a power of two >= 4 (default: from the first image)')
    p.add_argument('--resize', choices=lib.RESIZE_MODES, default='error',
                   help='images that are not resolution x resolution: error (official behaviour), '
                   'center-crop, pad or stretch (Lanczos resampling) (default: error)')
    p.add_argument('--pad-color', default='black', help='fill for --resize pad: name, #rrggbb or r,g,b')
    p.add_argument('--background', default='white',
                   help='colour under transparent pixels (RGBA, LA, palette) (default: white)')
    p.add_argument('--channels', type=int, choices=(1, 3), default=None,
                   help='1 = grayscale, 3 = RGB (default: 1 if the first image is grayscale, else 3)')
    p.add_argument('--labels', choices=lib.LABEL_MODES, default='auto',
                   help='one-hot labels from class subfolder names: auto (if there are subfolders), '
                   'subfolders or none (default: auto)')
    p.add_argument('--skip-bad', action='store_true',
                   help='skip and list unreadable, corrupt, non-image or mis-sized files instead of stopping')
    _add_create_args(p)

    p = sub.add_parser('create_demo', help='build the embedded Twemoji faces demo dataset',
                       description=lib.create_demo.__doc__.split('\n\n')[1].replace('    ', ''))
    p.add_argument('tfrecord_dir', help='output folder, e.g. datasets/demo')
    p.add_argument('--resolution', type=_resolution, default=64,
                   help='a power of two >= 4: 64 (default), 128 or 256 suit the 72 px art best')
    p.add_argument('--images-per-class', type=int, default=None,
                   help='images per class (default: the size of the largest class, 294)')
    _add_create_args(p)

    p = sub.add_parser('info', help='print files, image counts, shapes and labels of a dataset')
    p.add_argument('tfrecord_dir')

    p = sub.add_parser('display', help='write a grid PNG of the first images (headless)')
    p.add_argument('tfrecord_dir')
    p.add_argument('-o', '--output', default=None, help='PNG path (default: ./<name>-grid.png)')
    p.add_argument('--resolution', type=int, default=None, help='which lod file (default: largest)')
    p.add_argument('--num', type=_positive, default=64, help='number of images (default: 64)')
    p.add_argument('--columns', type=_positive, default=8, help='grid columns (default: 8)')

    p = sub.add_parser('extract', help='write every image as output_dir/img%%08d.png')
    p.add_argument('tfrecord_dir')
    p.add_argument('output_dir')
    p.add_argument('--resolution', type=int, default=None, help='which lod file (default: largest)')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')

    p = sub.add_parser('compare', help='compare two datasets image by image (exit 1 if they differ)')
    p.add_argument('tfrecord_dir_a')
    p.add_argument('tfrecord_dir_b')
    return parser


def run(args):
    if args.command == 'create_from_images':
        lib.create_from_images(
            args.tfrecord_dir, args.image_dir, shuffle=args.shuffle, seed=args.seed,
            resolution=args.resolution, resize=args.resize, pad_color=args.pad_color,
            background=args.background, channels=args.channels, labels=args.labels,
            skip_bad=args.skip_bad, overwrite=args.overwrite, num_workers=args.workers,
            progress=not args.no_progress)
    elif args.command == 'create_demo':
        lib.create_demo(args.tfrecord_dir, resolution=args.resolution, shuffle=args.shuffle,
                        seed=args.seed, images_per_class=args.images_per_class,
                        overwrite=args.overwrite, num_workers=args.workers,
                        progress=not args.no_progress)
    elif args.command == 'info':
        print(lib.format_info(lib.dataset_info(args.tfrecord_dir)))
    elif args.command == 'display':
        out = args.output or f'{lib.dataset_name(args.tfrecord_dir)}-grid.png'
        lib.display(args.tfrecord_dir, out, args.resolution, args.num, args.columns)
        print(f'wrote {out}')
    elif args.command == 'extract':
        n = lib.extract(args.tfrecord_dir, args.output_dir, args.resolution,
                        progress=not args.no_progress)
        print(f'wrote {n} images to {args.output_dir}')
    elif args.command == 'compare':
        report = lib.compare(args.tfrecord_dir_a, args.tfrecord_dir_b)
        print('\n'.join(report['lines']))
        print('identical' if report['identical'] else 'DIFFERENT')
        return 0 if report['identical'] else 1
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except lib.DatasetToolError as e:
        print(f'dataset_tool.py: error: {e}', file=sys.stderr)
        return 1
    except OSError as e:              # the file system refused a read or write the checks allowed
        print(f'dataset_tool.py: error: {e.filename or ""}: {e.strerror or e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted: temporary files removed, nothing written under the final names',
              file=sys.stderr)
        return 130


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
