"""The official StyleGAN (v1) progressive-growing schedule, plus gradient-accumulation rounds.

`training_schedule(cur_nimg, ...)` answers, for a training progress counted in images, which
level of detail (lod) to train at, the minibatch size, the learning rates and the tick length
(spec 6.2). The arithmetic is the official one; the defaults are the official defaults.

One addition for memory-limited training (StyleGAN2's `minibatch_gpu_base/dict`):
`minibatch_gpu` is how many images one device processes at once. A minibatch of `minibatch`
images is then split into `minibatch // minibatch_gpu` rounds whose gradients are averaged before
one optimizer step, which gives the same update as one big batch (up to the minibatch-stddev
groups, which never span two rounds, exactly as they never span two GPUs in the official code).
"""

import math
from typing import Dict, Optional

from dnnlib.util import EasyDict

# Official default tick lengths in kimg per resolution (v1 training_schedule).
OFFICIAL_TICK_KIMG_DICT = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}


def training_schedule(
    cur_nimg: int,                                  # Training progress in images shown to D.
    resolution_log2: int,                           # log2 of the dataset (full) resolution.
    num_gpus: int = 1,                              # Number of devices the minibatch is split over.
    lod_initial_resolution: int = 4,                # Image resolution used at the beginning.
    lod_training_kimg: float = 600,                 # kimg to train at one resolution before fading in the next.
    lod_transition_kimg: float = 600,               # kimg to fade in a new layer.
    minibatch_base: int = 16,                       # Total minibatch size (all devices), unless minibatch_dict has the resolution.
    minibatch_dict: Optional[Dict[int, int]] = None,        # Resolution -> minibatch size. None: {}.
    max_minibatch_per_gpu: Optional[Dict[int, int]] = None, # Resolution -> cap on minibatch per device. None: {}.
    minibatch_gpu_base: Optional[int] = None,       # Images per device per accumulation round. None: the whole per-device share (no accumulation).
    minibatch_gpu_dict: Optional[Dict[int, int]] = None,    # Resolution -> minibatch_gpu. None: {}.
    G_lrate_base: float = 0.001,                    # Learning rate of G, unless G_lrate_dict has the resolution.
    G_lrate_dict: Optional[Dict[int, float]] = None,        # Resolution -> G learning rate. None: {}.
    D_lrate_base: float = 0.001,                    # Learning rate of D, unless D_lrate_dict has the resolution.
    D_lrate_dict: Optional[Dict[int, float]] = None,        # Resolution -> D learning rate. None: {}.
    lrate_rampup_kimg: float = 0,                   # Linear learning-rate ramp-up length in kimg; 0 = none.
    tick_kimg_base: float = 160,                    # Tick length in kimg, unless tick_kimg_dict has the resolution.
    tick_kimg_dict: Optional[Dict[int, float]] = None,      # Resolution -> tick length. None: the official dict.
) -> EasyDict:
    """The official v1 schedule at `cur_nimg` (spec 6.2).

    Returns:
        EasyDict with `kimg`, `lod` (float, 0 = full resolution), `resolution` (of the layer being
        trained, i.e. 2**(rl - floor(lod))), `minibatch` (all devices), `minibatch_gpu` (per device
        per round), `rounds` (accumulation rounds per device per step), `G_lrate`, `D_lrate`,
        `tick_kimg`.

    Raises:
        ValueError: if the minibatch cannot be split into whole rounds of `minibatch_gpu` images.
    """
    minibatch_dict = {} if minibatch_dict is None else minibatch_dict
    max_minibatch_per_gpu = {} if max_minibatch_per_gpu is None else max_minibatch_per_gpu
    minibatch_gpu_dict = {} if minibatch_gpu_dict is None else minibatch_gpu_dict
    G_lrate_dict = {} if G_lrate_dict is None else G_lrate_dict
    D_lrate_dict = {} if D_lrate_dict is None else D_lrate_dict
    tick_kimg_dict = OFFICIAL_TICK_KIMG_DICT if tick_kimg_dict is None else tick_kimg_dict

    s = EasyDict()
    s.kimg = cur_nimg / 1000.0

    # Level of detail: one phase = a stable part then a fade-in part.
    phase_dur = lod_training_kimg + lod_transition_kimg
    phase_idx = int(math.floor(s.kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = s.kimg - phase_idx * phase_dur
    lod = float(resolution_log2)
    lod -= math.floor(math.log2(lod_initial_resolution))
    lod -= phase_idx
    if lod_transition_kimg > 0:
        lod -= max(phase_kimg - lod_training_kimg, 0.0) / lod_transition_kimg
    s.lod = max(lod, 0.0)
    s.resolution = 2 ** (resolution_log2 - int(math.floor(s.lod)))

    # Minibatch: a multiple of the device count, optionally capped per device.
    wanted = minibatch_dict.get(s.resolution, minibatch_base)
    if wanted < num_gpus:
        raise ValueError(f'schedule at {s.resolution}x{s.resolution}: a minibatch of {wanted} images '
                         f'is fewer than the {num_gpus} devices (each needs at least one image)')
    s.minibatch = wanted - wanted % num_gpus
    if s.resolution in max_minibatch_per_gpu:
        s.minibatch = min(s.minibatch, max_minibatch_per_gpu[s.resolution] * num_gpus)
    per_gpu = s.minibatch // num_gpus
    s.minibatch_gpu = minibatch_gpu_dict.get(s.resolution, minibatch_gpu_base)
    s.minibatch_gpu = per_gpu if s.minibatch_gpu is None else min(s.minibatch_gpu, per_gpu)
    if s.minibatch < 1 or s.minibatch_gpu < 1 or per_gpu % s.minibatch_gpu != 0:
        raise ValueError(f'schedule at {s.resolution}x{s.resolution}: a minibatch of {s.minibatch} '
                         f'images on {num_gpus} device(s) cannot be split into rounds of '
                         f'{s.minibatch_gpu} images per device (minibatch_gpu must divide '
                         f'{per_gpu})')
    s.rounds = per_gpu // s.minibatch_gpu

    # Learning rates and tick length.
    s.G_lrate = G_lrate_dict.get(s.resolution, G_lrate_base)
    s.D_lrate = D_lrate_dict.get(s.resolution, D_lrate_base)
    if lrate_rampup_kimg > 0:
        rampup = min(s.kimg / lrate_rampup_kimg, 1.0)
        s.G_lrate *= rampup
        s.D_lrate *= rampup
    s.tick_kimg = tick_kimg_dict.get(s.resolution, tick_kimg_base)
    return s


def int_key_dict(d: Optional[dict]) -> Optional[dict]:
    """A copy of `d` with its keys as ints (JSON turns the resolution keys into strings)."""
    if d is None:
        return None
    return {int(k): v for k, v in d.items()}


def normalize_sched_args(sched_args: dict) -> dict:
    """`sched_args` with every `*_dict` value keyed by int resolution (for options read from JSON)."""
    return {k: int_key_dict(v) if k.endswith('_dict') or k == 'max_minibatch_per_gpu' else v
            for k, v in sched_args.items()}
