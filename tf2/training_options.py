"""Launcher logic of run_training.py: presets -> one validated kwargs dict -> a run directory.

`resolve_options(launch)` turns the command-line values (`launch`, a dict whose None entries mean
"not given") into the keyword arguments of `tf2.training_loop.training_loop`, using the official
StyleGAN (v1) `train.py` presets (spec 6.1) or the small `demo` preset. Bad values raise
`OptionsError` naming the flag. `run_training(...)` is the one library call behind the script:
it resolves, prints, honours --dry-run, creates `results/NNNNN-<desc>/` (or reopens the run for
--resume), saves `training_options.json` and runs the loop with stdout/stderr teed to log.txt.
"""

import copy
import inspect
import json
import math
import os
from typing import Any, Dict, Optional, Tuple

from dnnlib import submission
from dnnlib.util import Logger
from tf2.schedule import training_schedule

# Official v1 train.py presets (spec 6.1). Config -> (default dataset folder name, mirror_augment).
DATASET_CONFIGS = {
    'ffhq':     ('ffhq', True),
    'celebahq': ('celebahq', True),
    'bedroom':  ('lsun-bedroom-full', False),
    'car':      ('lsun-car-512x384', False),
    'cat':      ('lsun-cat-full', False),
}
CONFIGS = tuple(DATASET_CONFIGS) + ('demo',)

# GPU count -> (minibatch_base, minibatch_dict) of the official presets.
GPU_PRESETS = {
    1: (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    2: (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    4: (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    8: (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}
OFFICIAL_LRATE_DICT = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}

# The demo: 64x64 Twemoji faces on 2 CPU cores in about 10 minutes (see README, "Demo").
DEMO_DATASET = 'demo'
DEMO_RESOLUTION = 64
DEMO_NETWORK = dict(latent_size=128, dlatent_size=128, mapping_layers=4, mapping_fmaps=128,
                    fmap_base=512, fmap_max=128)
# One minibatch size for every resolution: the D step is traced once (about a minute at 64 px).
DEMO_SCHED = dict(lod_initial_resolution=8, lod_training_kimg=3, lod_transition_kimg=2,
                  minibatch_base=8, minibatch_dict={}, G_lrate_base=0.003, D_lrate_base=0.003,
                  tick_kimg_base=1, tick_kimg_dict={})
DEMO_KIMG = 18
DEMO_G_SMOOTHING_KIMG = 1.0
DEMO_GRID = '8x4'

# Command-line defaults that do not depend on the config (None in `launch` means "use these").
LAUNCH_DEFAULTS = dict(config='demo', data_dir='datasets', dataset=None, resolution=None, kimg=None,
                       gpus=1, mirror_augment=None, minibatch_gpu=None, result_dir='results',
                       seed=1000, snapshot_ticks=None, image_snapshot_ticks=None, grid=None,
                       resume_pkl=None, resume_kimg=0.0, mixing_figure=None)


class OptionsError(ValueError):
    """A command-line value is invalid; the message names the flag."""


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


def resolve_options(launch: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """Resolves command-line values into (run description, training_loop kwargs).

    Args:
        launch: flag name (underscored) -> value; None or absent = not given.

    Raises:
        OptionsError: naming the flag.
    """
    a = _merge_launch(launch)
    _check(a['config'] in CONFIGS, f'--config {a["config"]!r}: choose one of {", ".join(CONFIGS)}')
    demo = a['config'] == 'demo'
    _check(isinstance(a['gpus'], int) and (a['gpus'] in GPU_PRESETS or (demo and a['gpus'] >= 1)),
           f'--gpus {a["gpus"]}: the official presets exist for 1, 2, 4 or 8 GPUs')
    dataset = a['dataset'] or (DEMO_DATASET if demo else DATASET_CONFIGS[a['config']][0])
    _check(a['kimg'] is None or a['kimg'] > 0, f'--kimg {a["kimg"]}: must be > 0')
    _check(a['resolution'] is None or (a['resolution'] >= 4 and a['resolution'] & (a['resolution'] - 1) == 0),
           f'--resolution {a["resolution"]}: must be a power of two >= 4')
    for flag in ('snapshot_ticks', 'image_snapshot_ticks'):
        _check(a[flag] is None or a[flag] >= 1, f'--{flag.replace("_", "-")} {a[flag]}: must be >= 1')
    _check(a['resume_kimg'] >= 0, f'--resume-kimg {a["resume_kimg"]}: must be >= 0')
    _check(a['resume_pkl'] is None or os.path.isfile(a['resume_pkl']),
           f'--resume-pkl {a["resume_pkl"]}: no such file')
    _check(isinstance(a['seed'], int), f'--seed {a["seed"]!r}: must be an integer')

    # Networks, losses and optimizers: the official v1 choices; the demo only shrinks the nets.
    G_args = dict(func_name='G_style', **(DEMO_NETWORK if demo else {}))
    D_args = dict(func_name='D_basic', **({k: DEMO_NETWORK[k] for k in ('fmap_base', 'fmap_max')} if demo else {}))
    opt_args = dict(func_name='tf2.optimizers.make_optimizer', name='adam', beta1=0.0, beta2=0.99, epsilon=1e-8)
    sched = copy.deepcopy(DEMO_SCHED) if demo else dict(
        lod_initial_resolution=8, G_lrate_dict=dict(OFFICIAL_LRATE_DICT), D_lrate_dict=dict(OFFICIAL_LRATE_DICT))
    if not demo:
        sched['minibatch_base'], sched['minibatch_dict'] = copy.deepcopy(GPU_PRESETS[a['gpus']])
    minibatch_gpu = parse_minibatch_gpu(a['minibatch_gpu'])
    if isinstance(minibatch_gpu, dict):
        sched['minibatch_gpu_dict'] = minibatch_gpu
    elif minibatch_gpu is not None:
        sched['minibatch_gpu_base'] = minibatch_gpu
    mirror = a['mirror_augment'] if a['mirror_augment'] is not None else (True if demo else DATASET_CONFIGS[a['config']][1])
    resolution = a['resolution'] if a['resolution'] is not None else (DEMO_RESOLUTION if demo else None)

    kwargs = dict(
        G_args=G_args, D_args=D_args,
        G_opt_args=dict(opt_args), D_opt_args=dict(opt_args),
        G_loss_args=dict(func_name='tf2.loss.G_logistic_nonsaturating'),
        D_loss_args=dict(func_name='tf2.loss.D_logistic_simplegp', r1_gamma=10.0),
        dataset_args=dict(tfrecord_dir=os.path.join(a['data_dir'], dataset), resolution=resolution),
        sched_args=sched,
        grid_args=dict(size=a['grid'] or (DEMO_GRID if demo else '4k'), layout='random'),
        num_gpus=a['gpus'],
        total_kimg=float(a['kimg'] if a['kimg'] is not None else (DEMO_KIMG if demo else 25000)),
        G_smoothing_kimg=DEMO_G_SMOOTHING_KIMG if demo else 10.0,
        mirror_augment=bool(mirror),
        image_snapshot_ticks=a['image_snapshot_ticks'] or 1,
        network_snapshot_ticks=a['snapshot_ticks'] or (1 if demo else 10),
        random_seed=a['seed'],
        resume_pkl=a['resume_pkl'],
        resume_kimg=float(a['resume_kimg']),
        mixing_figure=bool(demo if a['mixing_figure'] is None else a['mixing_figure']),
    )
    _check_schedule(kwargs, resolution)
    gpus_desc = f'{a["gpus"]}gpu'
    desc = f'sgan-{dataset}' + (f'{resolution}' if a['resolution'] is not None else '') + f'-{gpus_desc}'
    return desc, kwargs


def _check_schedule(kwargs: Dict[str, Any], resolution: Optional[int]) -> None:
    """Evaluates the schedule at every resolution phase so a bad split fails before training."""
    sched = kwargs['sched_args']
    rl = int(math.log2(resolution)) if resolution else 10     # unknown until the dataset is read
    defaults = inspect.signature(training_schedule).parameters
    phase = sum(sched[k] if k in sched else defaults[k].default
                for k in ('lod_training_kimg', 'lod_transition_kimg'))
    try:
        for i in range(rl + 1):
            training_schedule(int(i * phase * 1000), rl, kwargs['num_gpus'], **sched)
    except ValueError as e:
        raise OptionsError(f'--minibatch-gpu / --gpus: {e}') from None


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


def _ensure_dataset(kwargs: Dict[str, Any], launch: Dict[str, Any]) -> None:
    path = kwargs['dataset_args']['tfrecord_dir']
    if os.path.isdir(path) and any(n.endswith('.tfrecords') for n in os.listdir(path)):
        return
    if _merge_launch(launch)['config'] == 'demo' and os.path.basename(os.path.normpath(path)) == DEMO_DATASET:
        from tf2.dataset_tool_lib import create_demo
        print(f'Building the demo dataset in {path} (first use)...')
        create_demo(path, resolution=DEMO_RESOLUTION)
        return
    raise OptionsError(f'--data-dir/--dataset: {path} holds no .tfrecords dataset '
                       '(make one with dataset_tool.py create_from_images)')


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
    if resume is not None:
        _check(launch.get('resume_pkl') is None, '--resume and --resume-pkl cannot be combined')
        run_dir = find_run_dir(resume, _merge_launch(launch)['result_dir'])
        saved = load_launch_args(run_dir)
        changed = {k: v for k, v in launch.items() if v is not None and saved.get(k) != v}
        launch = dict(saved, **changed)
        if changed:
            print(f'Overriding saved options of {run_dir}: ' + ', '.join(
                f'{k}: {saved.get(k)!r} -> {v!r}' for k, v in changed.items()))
    desc, kwargs = resolve_options(launch)
    print('Training options:')
    print(json.dumps(kwargs, indent=2))
    if dry_run:
        print('Dry run: nothing written.' + (f' Would continue {run_dir}.' if run_dir else
              f' Would create {_merge_launch(launch)["result_dir"]}/NNNNN-{desc}/.'))
        return None
    _ensure_dataset(kwargs, launch)
    if run_dir is None:
        run_dir = submission.create_run_dir(_merge_launch(launch)['result_dir'], desc)
    launch_saved = {k: v for k, v in launch.items() if v is not None}
    submission.save_training_options(run_dir, dict(launch_args=launch_saved, training_loop_kwargs=kwargs))
    from tf2.training_loop import training_loop     # imports TensorFlow: not needed for --dry-run
    with Logger(os.path.join(run_dir, 'log.txt'), file_mode='a'):
        print(f'Run directory: {run_dir}')
        return training_loop(run_dir=run_dir, resume_run=resume is not None, **kwargs)
