"""What exact resume needs beyond the network pickle: one small class and its flat array form.

A snapshot's sidecar ``training-state-<kimg>.npz`` holds a flat dict of arrays (the .npz format
has no nesting). ``ResumeState`` is the structured view of it: progress counters, the random
streams, the snapshot grid, and named groups of arrays (optimizer slots, loss state such as
``pl_mean``, augmentation state, per-replica state). ``to_arrays`` flattens the groups as
``<group>/<key>`` and ``from_arrays`` reads them back, so the sidecar format stays the one the
loop has always written, and a group the reader does not know is kept, not lost.
"""

import dataclasses
from typing import Dict, Optional

import numpy as np

COUNTERS = ('cur_nimg', 'cur_tick', 'prev_lod', 'total_time', 'running_mb_counter')
_NP_RNG_KEYS = ('np_rng_keys', 'np_rng_pos', 'np_rng_has_gauss', 'np_rng_cached_gaussian')


@dataclasses.dataclass
class ResumeState:
    """Everything of a training run that a network pickle does not hold.

    Attributes:
        cur_nimg, cur_tick, prev_lod, total_time, running_mb_counter: progress counters.
        tf_rng_state, tf_rng_alg: the ``tf.random.Generator`` of the loop.
        np_rng: ``np.random.RandomState.get_state()`` as arrays (keys, pos, has_gauss, cached).
        grid_latents, grid_labels: the snapshot grid.
        groups: name -> {key: array}, e.g. ``G_opt``, ``D_opt``, ``G_loss``, ``augment``.
        extra: flat arrays that belong to no group (written back as they are).
    """

    cur_nimg: int
    cur_tick: int
    prev_lod: float
    total_time: float
    running_mb_counter: int
    tf_rng_state: np.ndarray
    tf_rng_alg: int
    np_rng: Dict[str, np.ndarray]
    grid_latents: np.ndarray
    grid_labels: np.ndarray
    groups: Dict[str, Dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    extra: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @staticmethod
    def np_rng_arrays(rng: np.random.RandomState) -> Dict[str, np.ndarray]:
        _kind, keys, pos, has_gauss, cached = rng.get_state()
        return dict(zip(_NP_RNG_KEYS, (keys, np.array(pos), np.array(has_gauss), np.array(cached))))

    def restore_np_rng(self, rng: np.random.RandomState) -> None:
        s = self.np_rng
        rng.set_state(('MT19937', s['np_rng_keys'], int(s['np_rng_pos']), int(s['np_rng_has_gauss']),
                       float(s['np_rng_cached_gaussian'])))

    def group(self, name: str) -> Dict[str, np.ndarray]:
        """The arrays of one group (empty if the sidecar has none)."""
        return dict(self.groups.get(name, {}))

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """The flat dict written to the sidecar."""
        out = {k: np.array(getattr(self, k)) for k in COUNTERS}
        out.update(tf_rng_state=np.asarray(self.tf_rng_state), tf_rng_alg=np.array(int(self.tf_rng_alg)),
                   grid_latents=np.asarray(self.grid_latents), grid_labels=np.asarray(self.grid_labels))
        out.update({k: np.asarray(v) for k, v in self.np_rng.items()})
        for name, arrays in self.groups.items():
            if '/' in name:
                raise ValueError(f'group name {name!r} must not contain "/"')
            out.update({f'{name}/{k}': np.asarray(v) for k, v in arrays.items()})
        for key, value in self.extra.items():
            if key in out:
                raise ValueError(f'extra array {key!r} collides with a field of the state')
            out[key] = np.asarray(value)
        return out

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> 'ResumeState':
        """Reads a sidecar's flat dict (``running_mb_counter`` defaults to 0 for old sidecars)."""
        arrays = dict(arrays)
        known = set(COUNTERS) | set(_NP_RNG_KEYS) | {'tf_rng_state', 'tf_rng_alg', 'grid_latents', 'grid_labels'}
        groups: Dict[str, Dict[str, np.ndarray]] = {}
        extra = {}
        for key, value in arrays.items():
            if '/' in key:
                name, sub = key.split('/', 1)
                groups.setdefault(name, {})[sub] = value
            elif key not in known:
                extra[key] = value
        return cls(cur_nimg=int(arrays['cur_nimg']), cur_tick=int(arrays['cur_tick']),
                   prev_lod=float(arrays['prev_lod']), total_time=float(arrays['total_time']),
                   running_mb_counter=int(arrays.get('running_mb_counter', 0)),
                   tf_rng_state=arrays['tf_rng_state'], tf_rng_alg=int(arrays['tf_rng_alg']),
                   np_rng={k: arrays[k] for k in _NP_RNG_KEYS},
                   grid_latents=arrays['grid_latents'], grid_labels=arrays['grid_labels'],
                   groups=groups, extra=extra)

    @classmethod
    def maybe_from_arrays(cls, arrays: Optional[Dict[str, np.ndarray]]) -> Optional['ResumeState']:
        return None if arrays is None else cls.from_arrays(arrays)
