#!/usr/bin/env python3
"""Train StyleGAN (v1) with TensorFlow 2: the official progressive-growing recipe.

With no arguments it trains the small `demo` config on the embedded 64x64 demo dataset (built
into ./datasets/demo on first use) in about 10 minutes on 2 CPU cores.
"""

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')     # TensorFlow's C++ INFO lines are noise here

EPILOG = """examples:
  python run_training.py                                   # demo: 64x64 emoji faces, ~10 min on CPU
  python run_training.py --config ffhq --data-dir datasets --gpus 8
  python run_training.py --config ffhq --resolution 256 --gpus 1 --minibatch-gpu 4
  python run_training.py --resume results/00003-sgan-ffhq-8gpu --kimg 30000
  python run_training.py --config ffhq --resume-pkl net.pkl --resume-kimg 7000
  python run_training.py --config celebahq --dry-run       # print the resolved options only

outputs in <result-dir>/NNNNN-<desc>/: training_options.json, log.txt, stats.jsonl, TensorBoard
events, reals.png, fakes_init.png, fakes<kimg>.png, network-snapshot-<kimg>.pkl (official (G, D,
Gs) format) with training-state-<kimg>.npz (what --resume needs), network-final.pkl.
"""


def _bool(text: str) -> bool:
    if text.lower() in ('1', 'true', 'yes', 'on'):
        return True
    if text.lower() in ('0', 'false', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'expected a boolean (1/0, true/false), got {text!r}')


def parse_args(argv=None) -> argparse.Namespace:
    """Command line; every default is None so that --resume knows which flags were given."""
    from tf2.training_options import CONFIGS, DEMO_GRID, DEMO_KIMG, DEMO_RESOLUTION, LAUNCH_DEFAULTS as D
    p = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', choices=CONFIGS,
                   help=f'preset: official train.py dataset configs or the small demo (default: {D["config"]})')
    p.add_argument('--data-dir', metavar='DIR', help=f'folder holding the dataset folders (default: {D["data_dir"]})')
    p.add_argument('--dataset', metavar='NAME',
                   help='dataset folder name in --data-dir (default: the config\'s: ffhq, celebahq, '
                        'lsun-bedroom-full, lsun-car-512x384, lsun-cat-full, demo)')
    p.add_argument('--resolution', type=int, metavar='R',
                   help='train at R x R using the dataset\'s lower-resolution files (default: the '
                        f'dataset\'s largest; demo: {DEMO_RESOLUTION})')
    p.add_argument('--kimg', type=float, help=f'total training length in kimg (default: 25000; demo: {DEMO_KIMG:g})')
    p.add_argument('--gpus', type=int, metavar='N',
                   help='official minibatch preset for N = 1, 2, 4 or 8 GPUs (default: 1); the N '
                        'per-GPU shares are processed one after another on this device')
    p.add_argument('--mirror-augment', type=_bool, nargs='?', const=True, metavar='BOOL',
                   help='random horizontal flips of the reals (default: the config\'s: on for '
                        'ffhq, celebahq, demo; off for lsun)')
    p.add_argument('--minibatch-gpu', metavar='N|RES:N,...',
                   help='images per device per accumulation round, for all resolutions or per '
                        'resolution (e.g. 256:4,512:2); the minibatch is split into rounds whose '
                        'gradients are averaged (default: no accumulation)')
    p.add_argument('--grid', metavar='SIZE', help='snapshot grid: 1080p, 4k, 8k or COLSxROWS '
                                                  f'(default: 4k; demo: {DEMO_GRID})')
    p.add_argument('--result-dir', metavar='DIR', help=f'parent of the run directories (default: {D["result_dir"]})')
    p.add_argument('--seed', type=int, help=f'random seed (default: {D["seed"]}, as officially)')
    p.add_argument('--snapshot-ticks', type=int, metavar='N',
                   help='network snapshot every N ticks, plus tick 1 and the end (default: 10; demo: 1)')
    p.add_argument('--image-snapshot-ticks', type=int, metavar='N',
                   help='fakes<kimg>.png every N ticks and at the end (default: 1)')
    p.add_argument('--mixing-figure', type=_bool, nargs='?', const=True, metavar='BOOL',
                   help='write style-mixing figures of the final snapshot (default: on for demo)')
    p.add_argument('--resume', metavar='RUN_DIR',
                   help='continue this run (directory or run number) from its newest complete '
                        'snapshot with its saved options; flags given here override them')
    p.add_argument('--resume-pkl', metavar='PKL',
                   help='start a new run from this (G, D, Gs) pickle (fresh optimizer state)')
    p.add_argument('--resume-kimg', type=float, metavar='KIMG',
                   help='with --resume-pkl: training progress to assume (default: 0)')
    p.add_argument('--dry-run', action='store_true', help='print the resolved options and exit')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from tf2 import training_options
    launch = {k: v for k, v in vars(args).items() if k not in ('resume', 'dry_run')}
    try:
        training_options.run_training(launch, resume=args.resume, dry_run=args.dry_run)
    except training_options.OptionsError as e:
        print(f'run_training.py: error: {e}', file=sys.stderr)
        return 2
    except RuntimeError as e:
        from tf2.training_loop import TrainingDivergedError   # TensorFlow is loaded by now
        if isinstance(e, TrainingDivergedError):
            print(f'run_training.py: {e}', file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == '__main__':
    sys.exit(main())
