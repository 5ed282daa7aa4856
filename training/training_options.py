"""Launcher logic of run_training.py: presets -> one validated kwargs dict -> a run directory.

`PRESETS` is the one table of every config (official StyleGAN train.py dataset configs, StyleGAN2
config-e/f, the two demos): every per-config default is declared there once, `preset_help`
renders it for `--help`, and `resolve_options(launch)` turns the command-line values (`launch`,
a dict whose None entries mean "not given") into the keyword arguments of
`training.training_loop.training_loop`. The training resolution is the dataset's (its largest
file) unless --resolution is given, for every config. Bad values raise `OptionsError` naming the
flag or file. `run_training(...)` is the one library call behind the script: it resolves and
validates everything it can (dataset, --resume-pkl, --metrics) before anything is written,
prints, honours --dry-run, creates `results/NNNNN-<desc>/` (or reopens the run for --resume),
saves `training_options.json` and runs the loop with stdout/stderr teed to log.txt.
"""

import copy
import functools
import inspect
import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from dnnlib import submission
from dnnlib.util import Logger
from training.schedule import training_schedule

# ------------------------------------------------------------------------------------------------
# The preset table: every per-config default is declared here once. `resolve_options` reads it,
# run_training.py's --help is generated from it (`preset_help`), and --dry-run prints the result.

# GPU count -> (minibatch_base, minibatch_dict) of the official presets (spec 6.1).
GPU_PRESETS = {
    1: (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    2: (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    4: (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    8: (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}
OFFICIAL_LRATE_DICT = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}

# Small networks of the demos (2 CPU cores). At most 64 feature maps: the 4x4 and 8x8 blocks,
# which every phase runs, cost a quarter of the 128-wide ones, and the demo's FID was the same with
# either width (issue 20: 270 vs 272 after 18 kimg, 36 % less CPU time).
DEMO_NETWORK = dict(latent_size=128, dlatent_size=128, mapping_layers=4, mapping_fmaps=128,
                    fmap_base=512, fmap_max=64)
SG2_DEMO_NETWORK = DEMO_NETWORK

# Official StyleGAN (v1) train.py (spec 6.1): progressive growing from 8x8, per-resolution
# learning rates, the GPU count's minibatch preset, non-saturating G loss and R1 (simplegp) on D.
_STYLEGAN = dict(
    family='stylegan', G='G_style', D='D_basic', network={}, loop_order='v1',
    G_loss='training.loss.G_logistic_nonsaturating', D_loss='training.loss.D_logistic_simplegp',
    gamma_arg='r1_gamma', gamma=10.0, gamma_flag=False, reg_intervals={},
    sched=dict(lod_initial_resolution=8, G_lrate_dict=OFFICIAL_LRATE_DICT, D_lrate_dict=OFFICIAL_LRATE_DICT),
    gpu_minibatch=True, any_gpus=False, dataset=None, mirror_augment=False, kimg=25000.0, grid='4k',
    G_smoothing_kimg=10.0, image_snapshot_ticks=1, snapshot_ticks=10, mixing_figure=False,
    intra_op_threads=None, v1_minibatches_per_call=1, desc='sgan-{dataset}{res}-{gpus}gpu')
# Official StyleGAN2 run_training.py (spec 6.7): no growing, lazy R1 and path-length regularisation.
_STYLEGAN2 = dict(
    _STYLEGAN, family='stylegan2', G='G_main', D='D_stylegan2', loop_order='v2',
    G_loss='training.loss.G_logistic_ns_pathreg', D_loss='training.loss.D_logistic_r1',
    gamma_arg='gamma', gamma_flag=True, reg_intervals=dict(G_reg_interval=4, D_reg_interval=16),
    sched=dict(lod_initial_resolution='full', minibatch_base=32, minibatch_dict={}, minibatch_gpu_base=4,
               G_lrate_base=0.002, D_lrate_base=0.002, tick_kimg_base=4,
               tick_kimg_dict={8: 28, 16: 24, 32: 20, 64: 16, 128: 12, 256: 8, 512: 6, 1024: 4}),
    gpu_minibatch=False, grid='8k', image_snapshot_ticks=10,
    desc='stylegan2-{dataset}{res}-{gpus}gpu-{suffix}')
# The demo's learning rate from 64x64 up (the long last phase): 0.004 measured FID 121.2 after 36
# kimg where 0.008 measured 142.9 and 0.003 129.9, all with 4 images per step at 32x32 too (issue
# 20, docs/performance.md "Demo recipes"); lowering it for G or D alone measured 134.7 and 143.1.
DEMO_LRATE_FROM_64 = {res: 0.004 for res in (64, 128, 256, 512, 1024)}
# The demo (v1): 64x64 Twemoji faces on 2 CPU cores. Growing starts at 8x8 (or the dataset's
# resolution if smaller); 2-kimg phases, then the longest at full size (`final_phase_kimg`, see
# demo_kimg), which is where most of the 10 minutes on 2 cores go (about 13 s per kimg at 64x64 on
# one thread per op, 3.6 at 8x8). Learning rate 0.008 (0.004 from 64x64 up, above): FID after 18
# kimg 270 at 0.005, 218 at 0.008, 231 at 0.012, where 0.003 gave rings without features. 4 images
# per step (twice the optimiser steps of 8): better FIDs at every length tried; but 8 at 32x32 (the
# 16->32 fade-in and the stable 32x32 phase), where a step of 4 images is still mostly fixed cost:
# FID over seeds 1000-1004 mean 131.1 (123.1 on the default seed) against 132.4 (121.2) with 4
# there, and issue 20's 2x per kimg at 32x32. The FID mostly keeps falling with the kimg at 64x64
# (at lr 0.008: 150 -> 130 -> 119 at 18, 24, 30 kimg in one run, 170 -> 152 -> 143 at 24, 30, 36
# in another; with this recipe on seed 1000 149 -> 135 -> 123 -> 118 at 24, 30, 36, 40), so the
# last phase takes most of what the 10 minutes leave: 30 kimg (42 in all). With Keras' Adam 40 in
# all measured FID 117.6, 118.5, 134.3 and 135.3 on seeds 1000-1003 (mean 126.4 against 129.1 at
# 36); with TF1's Adam (`--optimizer adam` since) seed 1000 measured 120.5 at 40, 117.1 at 42 and
# 109.5 at 44, and 42 kimg take 8 min 36 s (docs/performance.md "Demo recipes", the sections after
# "8 images per step at 32x32 (P) becomes the default" and "TF1's Adam becomes --optimizer adam").
_DEMO = dict(
    _STYLEGAN, network=DEMO_NETWORK, dataset='demo', mirror_augment=True, any_gpus=True,
    gpu_minibatch=False, kimg='growing', final_phase_kimg=30,
    sched=dict(lod_initial_resolution=8, lod_training_kimg=2, lod_transition_kimg=2,
               minibatch_base=4, minibatch_dict={32: 8}, G_lrate_base=0.008, D_lrate_base=0.008,
               G_lrate_dict=dict(DEMO_LRATE_FROM_64), D_lrate_dict=dict(DEMO_LRATE_FROM_64),
               tick_kimg_base=1, tick_kimg_dict={}),
    grid='8x4', G_smoothing_kimg=1.0, snapshot_ticks=6, mixing_figure=True,
    intra_op_threads=1,     # small ops: one thread each on 2 cores (distribute.choose_intra_op_threads)
    v1_minibatches_per_call=4)  # a schedule evaluation's 4 minibatches in one compiled call (issue 20)

PRESETS = {
    'ffhq': dict(_STYLEGAN, dataset='ffhq', mirror_augment=True),
    'celebahq': dict(_STYLEGAN, dataset='celebahq', mirror_augment=True),
    'bedroom': dict(_STYLEGAN, dataset='lsun-bedroom-full'),
    'car': dict(_STYLEGAN, dataset='lsun-car-512x384'),
    'cat': dict(_STYLEGAN, dataset='lsun-cat-full'),
    'demo': _DEMO,
    'stylegan2-f': dict(_STYLEGAN2, suffix='config-f'),
    'stylegan2-e': dict(_STYLEGAN2, network=dict(fmap_base=8192), gamma=100.0, suffix='config-e'),
    # The StyleGAN2 recipe with small networks on the demo faces built at 32x32.
    'stylegan2-demo': dict(
        _STYLEGAN2, network=SG2_DEMO_NETWORK, dataset='demo32', mirror_augment=True, gamma=1.0,
        sched=dict(lod_initial_resolution='full', minibatch_base=8, minibatch_dict={}, minibatch_gpu_base=8,
                   G_lrate_base=0.002, D_lrate_base=0.002, tick_kimg_base=1, tick_kimg_dict={}),
        kimg=12.0, grid='8x4', G_smoothing_kimg=1.0, image_snapshot_ticks=1, snapshot_ticks=6,
        mixing_figure=True, suffix='demo'),
}
CONFIGS = tuple(PRESETS)
# Dataset folders built from the embedded art on first use: name -> resolution they are built at.
DEMO_BUILDS = {'demo': 64, 'demo32': 32}

# Command-line defaults that do not depend on the config (None in `launch` means "use these").
LAUNCH_DEFAULTS = dict(config='demo', data_dir='datasets', dataset=None, resolution=None, kimg=None,
                       gpus=1, mirror_augment=None, minibatch_gpu=None, result_dir='results',
                       seed=1000, snapshot_ticks=None, image_snapshot_ticks=None, grid=None,
                       resume_pkl=None, resume_kimg=0.0, mixing_figure=None, gamma=None)
# Fine-tuning flags (issue 8); their defaults keep the official training.
LAUNCH_DEFAULTS.update(transfer_mismatched=False, freeze_d=0, freeze_g=0, freeze_mapping=False,
                       augment='none', aug_p=None, aug_target=None, optimizer='adam', lr=None,
                       beta1=0.0, beta2=0.99, epsilon=1e-8, weight_decay=0.0, batch=None,
                       lod_initial_resolution=None)
# Metrics at every network snapshot (issue 16); none by default, as they cost minutes on a CPU.
LAUNCH_DEFAULTS.update(metrics=None, inception=None, vgg16=None, lpips=None)
# Data parallelism (issue 19): none by default (one device, the original loop).
LAUNCH_DEFAULTS.update(cpu_devices=None, workers=None, worker_index=None, mixed_precision=False)
OPTIMIZER_NAMES = ('adam', 'adamw', 'adamp')     # training.optimizers.OPTIMIZER_NAMES (no TF import here)
# Flags whose default is the config's: flag (underscored) -> preset key.
PER_CONFIG_FLAGS = dict(dataset='dataset', kimg='kimg', mirror_augment='mirror_augment', grid='grid',
                        snapshot_ticks='snapshot_ticks', image_snapshot_ticks='image_snapshot_ticks',
                        mixing_figure='mixing_figure', gamma='gamma')


def demo_kimg(resolution: Optional[int], config: str = 'demo') -> float:
    """A growing preset's default length at a resolution: the growing schedule up to it, then a
    stable phase of `final_phase_kimg` there (the demo: 2 kimg at 8x8, then 2 kimg fade-in + 2 kimg
    stable per doubling, and 30 kimg at full size: 38 at 32x32, 42 at 64x64, 46 at 128x128), so the
    last phase trains the full resolution, longest, as the sharp detail needs."""
    preset = PRESETS[config]
    sched = preset['sched']
    resolution = resolution or DEMO_BUILDS[preset['dataset']]
    start = min(sched['lod_initial_resolution'], resolution)
    doublings = int(math.log2(resolution // start))
    return float(doublings * (sched['lod_training_kimg'] + sched['lod_transition_kimg']) + preset['final_phase_kimg'])


def _preset_value(config: str, key: str, resolution: Optional[int] = None) -> Any:
    value = PRESETS[config][key]
    if key == 'kimg' and value == 'growing':
        return demo_kimg(resolution, config)
    if key == 'gamma' and not PRESETS[config]['gamma_flag']:
        return None
    return value


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return 'on' if value else 'off'
    if isinstance(value, float):
        return f'{value:g}'
    return str(value)


def preset_help(flag: str) -> str:
    """'default: per config: ...' for --help, generated from PRESETS (configs with the same
    default are listed together)."""
    key = PER_CONFIG_FLAGS[flag]
    groups: Dict[str, List[str]] = {}
    for config in CONFIGS:
        value = _preset_value(config, key)
        if value is None and key != 'dataset':
            continue
        text = 'required' if value is None else _describe(value)
        if key == 'kimg' and PRESETS[config]['kimg'] == 'growing':
            text += f' at {DEMO_BUILDS[PRESETS[config]["dataset"]]}x{DEMO_BUILDS[PRESETS[config]["dataset"]]} (growing schedule + {PRESETS[config]["final_phase_kimg"]:g} kimg at full size)'
        groups.setdefault(text, []).append(config)
    return 'default per config: ' + '; '.join(f'{", ".join(cs)}: {text}' for text, cs in groups.items())


class OptionsError(ValueError):
    """A command-line value is invalid; the message names the flag."""


def _is_resolution(value) -> bool:
    return isinstance(value, int) and value >= 4 and value & (value - 1) == 0


def _has_tfrecords(path: str) -> bool:
    return os.path.isdir(path) and any(n.endswith('.tfrecords') for n in os.listdir(path))


def _dataset_info(tfrecord_dir: str, resolution: Optional[int]) -> dict:
    """training.dataset_tool.check_dataset (no TensorFlow) with errors naming the flag."""
    from training.dataset_tool import DatasetToolError, check_dataset
    try:
        info = check_dataset(tfrecord_dir)
    except DatasetToolError as e:
        raise OptionsError(f'--data-dir/--dataset: {e}') from None
    if resolution is None:
        return info
    try:
        return check_dataset(tfrecord_dir, resolution)
    except DatasetToolError as e:
        raise OptionsError(f'--resolution {resolution}: {e}') from None


def _training_resolution(a: Dict[str, Any], tfrecord_dir: str, notes: Optional[List[str]]) -> Optional[int]:
    """The network resolution: --resolution if given, else the dataset's largest file (a demo
    dataset not built yet: the resolution it is built at). None while the dataset is missing."""
    given = a['resolution']
    _check(given is None or _is_resolution(given), f'--resolution {given}: must be a power of two >= 4')
    name = os.path.basename(os.path.normpath(tfrecord_dir))
    if _has_tfrecords(tfrecord_dir):
        resolution = _dataset_info(tfrecord_dir, given)['resolution']
        source = f'the dataset {tfrecord_dir}\'s largest' if given is None else '--resolution'
    elif name in DEMO_BUILDS:
        build = DEMO_BUILDS[name]
        _check(given is None or given <= build,
               f'--resolution {given}: the {name} dataset is built at {build}x{build}')
        resolution = given or build
        source = f'the {name} dataset is built at {build}x{build} on first use' if given is None else '--resolution'
    else:
        return given        # run_training stops on the missing dataset before anything is written
    if notes is not None:
        notes.append(f'Resolution: {resolution}x{resolution} ({source})')
    return resolution


def parse_minibatch_gpu(text: Optional[str]):
    """--minibatch-gpu: 'N' (all resolutions) or 'RES:N,RES:N' -> int, dict or None."""
    if text is None or isinstance(text, (int, dict)):
        return text
    try:
        if ':' not in text:
            value = int(text)
            if value < 1:
                raise ValueError
            return value
        out = {}
        for item in text.split(','):
            res, n = item.split(':')
            out[int(res)] = int(n)
            if out[int(res)] < 1:
                raise ValueError
        return out
    except ValueError:
        raise OptionsError(f'--minibatch-gpu {text!r}: expected a positive integer or RES:N,RES:N '
                           '(e.g. 256:4,512:2)') from None


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise OptionsError(message)


def _merge_launch(launch: Dict[str, Any]) -> Dict[str, Any]:
    merged = dict(LAUNCH_DEFAULTS)
    merged.update({k: v for k, v in launch.items() if v is not None})
    return merged


def resolve_options(launch: Dict[str, Any], notes: Optional[List[str]] = None) -> Tuple[str, Dict[str, Any]]:
    """Resolves command-line values into (run description, training_loop kwargs) from PRESETS.

    The dataset, if present, is checked (without TensorFlow) and gives the resolution.

    Args:
        launch: flag name (underscored) -> value; None or absent = not given.
        notes: if a list, lines for the user are appended: the recipe chosen for a --resume-pkl
            without --config, and where the resolution comes from.

    Raises:
        OptionsError: naming the flag.
    """
    a = _merge_launch(launch)
    _check(a['config'] in CONFIGS, f'--config {a["config"]!r}: choose one of {", ".join(CONFIGS)}')
    config = a['config'] = _config_for_resume_pkl(a, launch, notes)
    p = PRESETS[config]
    distribute_args, replicas, mixed_precision = _distribute_options(a, p)
    _check_launch_values(a, p, config, replicas)
    dataset = a['dataset'] or p['dataset']
    tfrecord_dir = os.path.join(a['data_dir'], dataset)
    resolution = _training_resolution(a, tfrecord_dir, notes)

    sched = copy.deepcopy(p['sched'])
    if p['gpu_minibatch']:
        sched['minibatch_base'], sched['minibatch_dict'] = copy.deepcopy(GPU_PRESETS[replicas])
    lir = sched['lod_initial_resolution']
    if lir != 'full' and resolution is not None:     # a dataset below 8x8 starts at its own resolution
        sched['lod_initial_resolution'] = min(lir, resolution)
    minibatch_gpu = parse_minibatch_gpu(a['minibatch_gpu'])
    if isinstance(minibatch_gpu, dict):
        sched['minibatch_gpu_dict'] = minibatch_gpu
    elif minibatch_gpu is not None:
        sched['minibatch_gpu_base'] = minibatch_gpu

    def given_or_preset(flag):
        return a[flag] if a[flag] is not None else _preset_value(config, PER_CONFIG_FLAGS[flag], resolution)

    opt_args = dict(func_name='training.optimizers.make_optimizer', name='adam', beta1=0.0, beta2=0.99, epsilon=1e-8)
    D_network = {k: v for k, v in p['network'].items() if k in ('fmap_base', 'fmap_max')}
    kwargs = dict(
        G_args=dict(func_name=p['G'], **p['network']),
        D_args=dict(func_name=p['D'], **D_network),
        G_opt_args=dict(opt_args), D_opt_args=dict(opt_args),
        G_loss_args=dict(func_name=p['G_loss']),
        D_loss_args={'func_name': p['D_loss'], p['gamma_arg']: float(p['gamma'] if a['gamma'] is None else a['gamma'])},
        dataset_args=dict(tfrecord_dir=tfrecord_dir, resolution=resolution),
        sched_args=sched,
        grid_args=dict(size=given_or_preset('grid'), layout='random'),
        num_gpus=replicas,
        total_kimg=float(given_or_preset('kimg')),
        G_smoothing_kimg=p['G_smoothing_kimg'],
        v1_minibatches_per_call=p['v1_minibatches_per_call'],
        mirror_augment=bool(given_or_preset('mirror_augment')),
        image_snapshot_ticks=given_or_preset('image_snapshot_ticks'),
        network_snapshot_ticks=given_or_preset('snapshot_ticks'),
        random_seed=a['seed'],
        resume_pkl=a['resume_pkl'],
        resume_kimg=float(a['resume_kimg']),
        mixing_figure=bool(given_or_preset('mixing_figure')),
    )
    if p['loop_order'] != 'v1':
        kwargs.update(loop_order=p['loop_order'], **p['reg_intervals'])
    if distribute_args is not None:
        kwargs['distribute_args'] = distribute_args
    if mixed_precision is not None:
        kwargs['mixed_precision'] = mixed_precision
    _apply_finetune_options(a, kwargs, resolution)
    _apply_metric_options(a, kwargs)
    _check_schedule(kwargs, resolution)
    desc = p['desc'].format(dataset=dataset, res=resolution if a['resolution'] is not None else '',
                            gpus=replicas, suffix=p.get('suffix', ''))
    return desc, kwargs


def _distribute_options(a: Dict[str, Any], p: Dict[str, Any]) -> Tuple[Optional[dict], int, Optional[str]]:
    """--gpus, --cpu-devices, --workers/--worker-index (or TF_CONFIG), --mixed-precision ->
    (distribute_args or None for the one-device loop, global replica count, 16-bit dtype or None)."""
    from training import distribute
    try:
        workers = distribute.parse_workers(a['workers']) if a['workers'] is not None else None
        cluster = workers is not None or distribute.tf_config_workers() is not None
        _check(isinstance(a['gpus'], int) and a['gpus'] >= 1, f'--gpus {a["gpus"]}: must be >= 1')
        if a['cpu_devices'] is not None:
            _check(a['gpus'] == 1, f'--gpus {a["gpus"]} and --cpu-devices exclude each other')
            gpus = None
        else:
            # One GPU without a cluster or 16 bits: the original one-device loop (no strategy).
            gpus = a['gpus'] if (a['gpus'] > 1 or cluster or a['mixed_precision']) else None
        args = distribute.resolve(gpus=gpus, cpu_devices=a['cpu_devices'], workers=workers,
                                  worker_index=a['worker_index'])
        mixed = None
        if a['mixed_precision']:
            _check(p['family'] == 'stylegan2', f'--mixed-precision: only the StyleGAN2 configs '
                                               f'compute in 16 bits, not --config {a["config"]}')
            mixed = distribute.mixed_precision_dtype(args)
    except distribute.DistributeError as e:
        raise OptionsError(str(e)) from None
    return args, distribute.layout_of(args).num_replicas, mixed


def _check_launch_values(a: Dict[str, Any], p: Dict[str, Any], config: str, replicas: int) -> None:
    """Checks of the command-line values that do not need the dataset."""
    if p['gamma_flag']:
        _check(a['gamma'] is None or a['gamma'] >= 0, f'--gamma {a["gamma"]}: must be >= 0')
    else:
        _check(a['gamma'] is None, '--gamma: only for the StyleGAN2 configs (v1 uses r1_gamma 10)')
    _check(p['dataset'] is not None or a['dataset'] is not None,
           f'--config {config}: --dataset is required (a folder in --data-dir)')
    _check(replicas in GPU_PRESETS or p['any_gpus'],
           f'--gpus {a["gpus"]}: the official presets exist for 1, 2, 4 or 8 GPUs' if replicas == a['gpus'] else
           f'{replicas} replicas in all (--gpus/--cpu-devices x workers): the official presets exist '
           f'for 1, 2, 4 or 8 GPUs')
    _check(a['kimg'] is None or a['kimg'] > 0, f'--kimg {a["kimg"]}: must be > 0')
    for flag in ('snapshot_ticks', 'image_snapshot_ticks'):
        _check(a[flag] is None or a[flag] >= 1, f'--{flag.replace("_", "-")} {a[flag]}: must be >= 1')
    _check(a['resume_kimg'] >= 0, f'--resume-kimg {a["resume_kimg"]}: must be >= 0')
    _check(a['resume_pkl'] is None or os.path.isfile(a['resume_pkl']),
           f'--resume-pkl {a["resume_pkl"]}: no such file')
    _check(isinstance(a['seed'], int), f'--seed {a["seed"]!r}: must be an integer')
    if p['sched']['lod_initial_resolution'] == 'full':
        _check(a['lod_initial_resolution'] in (None, 'full'),
               f'--lod-initial-resolution {a["lod_initial_resolution"]}: StyleGAN2 config e/f networks '
               'do not grow progressively (only "full")')


TRAINABLE_NETWORKS = {'stylegan': ('G_style', 'D_basic'), 'stylegan2': ('G_main', 'D_stylegan2')}


@functools.lru_cache(maxsize=8)
def _pickle_summary_cached(pkl: str, abspath: str, mtime_ns: int, size: int) -> Dict[str, Any]:
    from dnnlib import legacy_pickle
    try:
        nets = legacy_pickle.load(pkl)
    except (ValueError, OSError) as e:       # PickleFormatError names the file and the reason
        raise OptionsError(f'--resume-pkl {e}' if str(e).startswith(pkl) else f'--resume-pkl {pkl}: {e}') from None
    if not (isinstance(nets, tuple) and len(nets) == 3):
        raise OptionsError(f'--resume-pkl {pkl}: not a (G, D, Gs) network pickle (holds '
                           f'{type(nets).__name__}{" of %d" % len(nets) if isinstance(nets, tuple) else ""})')
    G, D, Gs = nets
    funcs = (G.build_func_name, D.build_func_name, Gs.build_func_name)
    for family, (g, d) in TRAINABLE_NETWORKS.items():
        if funcs == (g, d, g):
            break
    else:
        raise OptionsError(f'--resume-pkl {pkl}: holds networks built by {", ".join(funcs)} (G, D, Gs); '
                           'training takes StyleGAN (G_style, D_basic, G_style) or StyleGAN2 '
                           '(G_main, D_stylegan2, G_main) networks')
    synthesis = G.components.get('synthesis')
    if family == 'stylegan2' and synthesis is not None and synthesis.build_func_name != 'G_synthesis_stylegan2':
        raise OptionsError(f'--resume-pkl {pkl}: G_main with {synthesis.build_func_name} '
                           '(StyleGAN2 configs a-d) is not trainable here; configs e and f are')
    lod = G.variables.get('lod')
    return dict(family=family, G=G.build_func_name, resolution=G.static_kwargs.get('resolution', 1024),
                lod=None if lod is None else float(lod))


def _pickle_summary(pkl: str) -> Dict[str, Any]:
    """Family ('stylegan' or 'stylegan2'), G's build function, resolution and lod of a trainable
    (G, D, Gs) pickle, read without TensorFlow; anything else is an OptionsError naming the file."""
    st = os.stat(pkl)
    return _pickle_summary_cached(pkl, os.path.abspath(pkl), st.st_mtime_ns, st.st_size)


def _config_for_resume_pkl(a: Dict[str, Any], launch: Dict[str, Any], notes: Optional[List[str]]) -> str:
    """The config of a run: with --resume-pkl and no --config it follows the pickle's networks.

    StyleGAN2 (G_main) pickles get stylegan2-f, StyleGAN (G_style) pickles the official train.py
    recipe (the ffhq preset's values) at the pickle's resolution: a grown pickle (lod 0) starts
    at full resolution unless --lod-initial-resolution or --resume-kimg is given.
    """
    if a['resume_pkl'] is None or not os.path.isfile(a['resume_pkl']):
        return a['config']
    pkl = a['resume_pkl']
    info = _pickle_summary(pkl)
    family = info['family']
    is_v2 = PRESETS[a['config']]['family'] == 'stylegan2'
    if launch.get('config') is not None:
        _check(is_v2 == (family == 'stylegan2'),
               f'--config {a["config"]}: --resume-pkl {pkl} holds '
               f'{"StyleGAN2 (G_main)" if family == "stylegan2" else "StyleGAN (G_style)"} networks; '
               f'use {"--config stylegan2-f or stylegan2-e" if family == "stylegan2" else "a StyleGAN config"} '
               '(or leave --config out to follow the pickle)')
        return a['config']
    res = info['resolution']
    what = f'--resume-pkl {pkl} holds {"StyleGAN2" if family == "stylegan2" else "StyleGAN"} networks ({info["G"]}, {res}x{res})'
    if family == 'stylegan2':
        config, recipe = 'stylegan2-f', 'the official StyleGAN2 config-f recipe'
        start = ''
    else:
        config, recipe = 'ffhq', 'the official StyleGAN train.py recipe (the ffhq preset\'s values)'
        _check(a['dataset'] is not None, f'--resume-pkl {pkl}: without --config a StyleGAN pickle is trained '
               'with the official recipe, which needs --dataset (a folder in --data-dir)')
        if launch.get('lod_initial_resolution') is None and launch.get('resume_kimg') is None and info['lod'] == 0:
            a['lod_initial_resolution'] = 'full'
            start = '; it is grown (lod 0), so training starts at full resolution (--lod-initial-resolution ' \
                    'or --resume-kimg change that)'
        else:
            start = ''
    if notes is not None:
        notes.append(f'Recipe: --config {config}, {recipe}, chosen because {what} and no --config was '
                     f'given{start}. Pass --config to choose another.')
    return config


def _apply_finetune_options(a: Dict[str, Any], kwargs: Dict[str, Any], resolution: Optional[int]) -> None:
    """Fine-tuning flags -> training_loop kwargs (issue 8): optimizer, --lr/--batch overrides,
    augmentation, freezing, layer transfer, --lod-initial-resolution. Validates naming the flag."""
    # Optimizer (G and D alike); the learning rate itself comes from the schedule.
    _check(a['optimizer'] in OPTIMIZER_NAMES, f'--optimizer {a["optimizer"]!r}: choose one of {", ".join(OPTIMIZER_NAMES)}')
    for flag in ('beta1', 'beta2'):
        _check(0 <= a[flag] < 1, f'--{flag} {a[flag]}: must be in [0, 1)')
    _check(a['epsilon'] > 0, f'--epsilon {a["epsilon"]}: must be > 0')
    _check(a['weight_decay'] >= 0, f'--weight-decay {a["weight_decay"]}: must be >= 0')
    _check(a['optimizer'] != 'adam' or a['weight_decay'] == 0,
           f'--weight-decay {a["weight_decay"]}: needs --optimizer adamw or adamp (adam keeps the official update)')
    for key in ('G_opt_args', 'D_opt_args'):
        kwargs[key].update(name=a['optimizer'], beta1=float(a['beta1']), beta2=float(a['beta2']),
                           epsilon=float(a['epsilon']))
        if a['weight_decay'] > 0:
            kwargs[key]['weight_decay'] = float(a['weight_decay'])
    # --lr / --batch replace the preset's per-resolution dicts (one value for every resolution).
    sched = kwargs['sched_args']
    if a['lr'] is not None:
        _check(a['lr'] > 0, f'--lr {a["lr"]}: must be > 0')
        sched.update(G_lrate_base=float(a['lr']), D_lrate_base=float(a['lr']), G_lrate_dict={}, D_lrate_dict={})
    if a['batch'] is not None:
        _check(isinstance(a['batch'], int) and a['batch'] >= 1, f'--batch {a["batch"]}: must be a positive integer')
        sched.update(minibatch_base=a['batch'], minibatch_dict={})
    lir = a['lod_initial_resolution']
    if lir is not None:
        _check(lir == 'full' or (isinstance(lir, int) and lir >= 4 and lir & (lir - 1) == 0),
               f'--lod-initial-resolution {lir!r}: must be "full" or a power of two >= 4')
        sched['lod_initial_resolution'] = lir
    # Starting point: layer transfer and freezing need networks from a pickle.
    _check(not a['transfer_mismatched'] or a['resume_pkl'] is not None,
           '--transfer-mismatched: needs --resume-pkl (the pickle to transfer layers from)')
    rl = int(math.log2(resolution)) if resolution else None
    for flag in ('freeze_d', 'freeze_g'):
        value = a[flag]
        name = '--' + flag.replace('_', '-')
        _check(isinstance(value, int) and value >= 0, f'{name} {value!r}: must be an integer >= 0')
        _check(rl is None or value <= rl - 1,
               f'{name} {value}: networks at {resolution}x{resolution} have {rl - 1 if rl else 0} blocks')
    _check(not (a['freeze_d'] or a['freeze_g'] or a['freeze_mapping']) or a['resume_pkl'] is not None,
           '--freeze-d/--freeze-g/--freeze-mapping: need --resume-pkl (frozen layers of new networks would stay random)')
    kwargs.update(transfer_mismatched=bool(a['transfer_mismatched']), D_freeze_blocks=int(a['freeze_d']),
                  G_freeze_blocks=int(a['freeze_g']), G_freeze_mapping=bool(a['freeze_mapping']))
    # Augmentation: albu on the reals in the data pipeline, or diff on everything D sees.
    if a['augment'] == 'none' and a['aug_p'] is None and a['aug_target'] is None:
        return
    from training import augment     # imports TensorFlow: only when augmentation is asked for
    try:
        cfg = augment.parse_augment(a['augment'], aug_p=a['aug_p'], aug_target=a['aug_target'])
    except augment.AugmentSpecError as e:
        raise OptionsError(str(e) if str(e).startswith('--') else f'--augment {a["augment"]}: {e}') from None
    if cfg.kind == 'albu':
        kwargs['reals_augment_args'] = dict(func_name='training.finetune.make_reals_augment',
                                            spec=cfg.preset or os.path.abspath(cfg.path))
    elif cfg.kind == 'diff':
        kwargs['D_augment_args'] = dict(class_name='training.finetune.TrainingAugment', policy=list(cfg.policy),
                                        aug_p=cfg.aug_p, aug_target=cfg.aug_target, seed=a['seed'])


def _apply_metric_options(a: Dict[str, Any], kwargs: Dict[str, Any]) -> None:
    """--metrics (and the weight files) -> metric_args, checked now (names, files)."""
    if not a['metrics']:
        _check(a['vgg16'] is None and a['lpips'] is None and a['inception'] is None,
               '--inception/--vgg16/--lpips: only with --metrics')
        return
    from metrics import metric_base             # no TensorFlow
    from training import snapshot_metrics
    try:
        names = snapshot_metrics.parse_metric_names(a['metrics'])
        _check(bool(names), f'--metrics {a["metrics"]!r}: no metric names given')
        metric_base.check_weight_files(names, a['inception'], a['vgg16'], a['lpips'])
    except ValueError as e:
        raise OptionsError(str(e) if str(e).startswith('--') else f'--metrics: {e}') from None
    paths = {k: os.path.abspath(a[k]) for k in ('inception', 'vgg16', 'lpips') if a[k] is not None}
    kwargs['metric_args'] = dict(names=names, **paths)


def check_resume_pkl(kwargs: Dict[str, Any]) -> None:
    """Early, TensorFlow-free check that --resume-pkl fits the dataset (resolution, channels,
    label size), so a mismatch stops the launcher before a run directory is made."""
    pkl = kwargs.get('resume_pkl')
    if pkl is None or kwargs.get('transfer_mismatched'):
        return
    _pickle_summary(pkl)                    # a (G, D, Gs) pickle of a trainable family
    from training.finetune import pickle_data_kwargs
    try:
        nets = pickle_data_kwargs(pkl)
    except ValueError as e:
        raise OptionsError(f'--resume-pkl {pkl}: {e}') from None
    data = kwargs['dataset_args']
    resolution, channels = data.get('resolution'), None
    if _has_tfrecords(data['tfrecord_dir']):
        channels = _dataset_info(data['tfrecord_dir'], resolution)['num_channels']
    elif os.path.basename(os.path.normpath(data['tfrecord_dir'])) in DEMO_BUILDS:
        channels = 3
    want = dict(resolution=resolution, num_channels=channels,
                label_size=0 if not data.get('max_label_size') else None)
    for net, have in nets.items():
        for key, value in want.items():
            if value is not None and key in have and have[key] != value:
                raise OptionsError(
                    f'--resume-pkl {pkl}: network {net} was built for {key} {have[key]}, but the '
                    f'dataset {data["tfrecord_dir"]} gives {key} {value}. Make the dataset at the '
                    f'pickle\'s resolution (dataset_tool.py ... --resolution), or pass '
                    f'--transfer-mismatched to copy only the matching layers (same official name and shape).')


def _check_schedule(kwargs: Dict[str, Any], resolution: Optional[int]) -> None:
    """Evaluates the schedule at every resolution phase so a bad split fails before training."""
    sched = dict(kwargs['sched_args'])
    rl = int(math.log2(resolution)) if resolution else 10     # unknown until the dataset is read
    if sched.get('lod_initial_resolution') == 'full':
        sched['lod_initial_resolution'] = 2 ** rl
    defaults = inspect.signature(training_schedule).parameters
    phase = sum(sched[k] if k in sched else defaults[k].default
                for k in ('lod_training_kimg', 'lod_transition_kimg'))
    try:
        for i in range(rl + 1):
            training_schedule(int(i * phase * 1000), rl, kwargs['num_gpus'], **sched)
    except ValueError as e:
        raise OptionsError(f'--batch / --minibatch-gpu / --gpus: {e}') from None


def load_launch_args(run_dir: str) -> Dict[str, Any]:
    """The command-line values a run was started with (from its training_options.json)."""
    try:
        options = submission.load_training_options(run_dir)
    except ValueError as e:
        raise OptionsError(f'--resume {run_dir}: {e}') from None
    if options is None or 'launch_args' not in options:
        raise OptionsError(f'--resume {run_dir}: no training_options.json with launch_args '
                           '(not a run directory made by run_training.py)')
    return options['launch_args']


def find_run_dir(resume: str, result_dir: str) -> str:
    """--resume RUN_DIR or a run number (looked up in --result-dir)."""
    if os.path.isdir(resume):
        return resume
    if resume.isdigit():
        for path in submission.list_run_dirs(result_dir):
            if int(os.path.basename(path).split('-')[0]) == int(resume):
                return path
    raise OptionsError(f'--resume {resume}: not a run directory (nor a run number in {result_dir})')


def _check_dataset_available(kwargs: Dict[str, Any]) -> None:
    """The dataset exists (resolve_options checked its files), or is a demo dataset to build."""
    path = kwargs['dataset_args']['tfrecord_dir']
    if _has_tfrecords(path) or os.path.basename(os.path.normpath(path)) in DEMO_BUILDS:
        return
    raise OptionsError(f'--data-dir/--dataset: {path} holds no .tfrecords dataset '
                       '(make one with dataset_tool.py create_from_images)')


def _ensure_dataset(kwargs: Dict[str, Any]) -> None:
    """Builds a demo dataset on first use (any other dataset was checked by resolve_options)."""
    path = kwargs['dataset_args']['tfrecord_dir']
    if _has_tfrecords(path):
        return
    from training.dataset_tool import DatasetToolError, create_demo
    resolution = DEMO_BUILDS[os.path.basename(os.path.normpath(path))]
    print(f'Building the demo dataset in {path} at {resolution}x{resolution} (first use)...')
    try:
        create_demo(path, resolution=resolution)
    except DatasetToolError as e:
        raise OptionsError(f'--data-dir/--dataset: cannot build the demo dataset: {e}') from None


def run_training(launch: Dict[str, Any], resume: Optional[str] = None, dry_run: bool = False) -> Optional[Dict]:
    """Resolves, prints and (unless dry_run) runs a training; see the module docstring.

    Args:
        launch: command-line values (None = not given). With `resume`, given values override
            the run's saved ones.
        resume: run directory (or number) to continue from its newest complete snapshot.
        dry_run: print the resolved options and stop; nothing is written.

    Returns:
        The training_loop summary, or None for a dry run.
    """
    run_dir = None
    overrides = ''
    if resume is not None:
        _check(launch.get('resume_pkl') is None, '--resume and --resume-pkl cannot be combined')
        run_dir = find_run_dir(resume, _merge_launch(launch)['result_dir'])
        saved = load_launch_args(run_dir)
        changed = {k: v for k, v in launch.items() if v is not None and saved.get(k) != v}
        launch = dict(saved, **changed)
        if changed:
            overrides = f'Overriding saved options of {run_dir}: ' + ', '.join(
                f'{k}: {saved.get(k)!r} -> {v!r}' for k, v in changed.items())
    notes: List[str] = []
    desc, kwargs = resolve_options(launch, notes)
    from training import distribute
    layout = distribute.layout_of(kwargs.get('distribute_args'))
    threads = distribute.choose_intra_op_threads(PRESETS[_merge_launch(launch)['config']]['intra_op_threads'])
    if threads is not None:     # set before the strategy and the dataset check start TensorFlow
        notes.append(f'TensorFlow intra-op threads: would be {threads}' if dry_run
                     else distribute.set_intra_op_threads(threads))
    if kwargs.get('distribute_args') is not None and not dry_run:
        # The strategy first: the CPU split and the cluster need TensorFlow not yet started (the
        # dataset check below reads the files with it). Too many --gpus stop here.
        try:
            distribute.get_strategy(kwargs['distribute_args'])
        except distribute.DistributeError as e:
            raise OptionsError(str(e)) from None
    # Everything that can be checked is checked before anything is written.
    _check_dataset_available(kwargs)
    if resume is None:
        check_resume_pkl(kwargs)
    result_dir = _merge_launch(launch)['result_dir']
    if run_dir is None:
        _check(not os.path.exists(result_dir) or os.path.isdir(result_dir),
               f'--result-dir {result_dir}: exists and is not a directory')
    if dry_run:
        for line in ([overrides] if overrides else []) + notes:
            print(line)
        print('Training options:\n' + json.dumps(kwargs, indent=2))
        print('Dry run: nothing written.' + (f' Would continue {run_dir}.' if run_dir else
              f' Would create {result_dir}/NNNNN-{desc}/.'))
        return None
    _ensure_dataset(kwargs)
    if not layout.is_chief:
        # Another worker writes nothing: the chief (worker 0) has the run directory and the log.
        from training.training_loop import training_loop
        print(f'Worker {layout.worker_index} of {layout.num_workers}: the chief (worker 0) writes '
              f'{run_dir or result_dir + "/NNNNN-" + desc}')
        return training_loop(run_dir=run_dir or os.path.join(result_dir, f'NNNNN-{desc}'),
                             resume_run=resume is not None, **kwargs)
    new_run = run_dir is None
    result_dir_existed = os.path.isdir(result_dir)
    if new_run:
        try:
            run_dir = submission.create_run_dir(result_dir, desc)
        except OSError as e:
            raise OptionsError(f'--result-dir {result_dir}: cannot create a run directory ({e.strerror or e})') from None
    launch_saved = {k: v for k, v in launch.items() if v is not None}
    submission.save_training_options(run_dir, dict(launch_args=launch_saved, training_loop_kwargs=kwargs))
    from training.finetune import TransferError
    from training.training_loop import training_loop     # imports TensorFlow: not needed for --dry-run
    try:
        with Logger(os.path.join(run_dir, 'log.txt'), file_mode='a'):
            print(f'Run directory: {run_dir}')
            for line in ([overrides] if overrides else []) + notes:
                print(line)
            print('Training options:\n' + json.dumps(kwargs, indent=2))
            return training_loop(run_dir=run_dir, resume_run=resume is not None, **kwargs)
    except TransferError:
        # Only knowable once the networks exist (--transfer-mismatched sharing no layer): a new
        # run directory holds nothing but its options and log yet, so it goes again.
        if new_run:
            submission.remove_new_run_dir(run_dir, result_dir_existed)
        raise
