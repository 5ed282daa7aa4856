"""Dlatent files: ``.npz`` with ``dlatents`` float ``[N, L, D]`` or ``[N, D]`` (ADA-PyTorch's key
``w`` is accepted too) and optional integer ``seeds`` ``[N]`` (design.md, public contracts)."""

import os
from typing import Optional, Sequence, Tuple

import numpy as np

from dnnlib.util import atomic_write, read_npz

DLATENT_KEYS = ('dlatents', 'w')


def read_dlatents(path: str, where: str) -> Tuple[np.ndarray, Optional[np.ndarray], str]:
    """The checked contents of a dlatent file, not yet fitted to a network.

    Returns:
        ``(dlatents float32 [N, L, D] or [N, D], seeds int64 [N] or None, the key read)``.

    Raises:
        ValueError starting with ``where``: missing, unreadable, no dlatents key, wrong
            dtype/shape, NaN, or seeds of the wrong type or length.
    """
    data = read_npz(path, where, 'dlatents')
    key = next((k for k in DLATENT_KEYS if k in data), None)
    if key is None:
        raise ValueError(f'{where}: no "dlatents" (or "w") array; found keys {sorted(data)}')
    dl = data[key]
    if dl.ndim not in (2, 3) or dl.shape[0] == 0 or not np.issubdtype(dl.dtype, np.floating):
        raise ValueError(f'{where}: "{key}" must be a float array [N, L, D] or [N, D] with N > 0, '
                         f'got {dl.dtype} {dl.shape}')
    if not np.all(np.isfinite(dl)):
        raise ValueError(f'{where}: "{key}" holds NaN or infinite values')
    seeds = data.get('seeds')
    if seeds is not None and (seeds.shape != (dl.shape[0],)
                              or not np.issubdtype(seeds.dtype, np.integer)):
        raise ValueError(f'{where}: "seeds" must be integers of shape [{dl.shape[0]}], got '
                         f'{seeds.dtype} {seeds.shape}')
    return dl.astype(np.float32), None if seeds is None else seeds.astype(np.int64), key


def load_dlatents(path: str, num_rows: int, dlatent_size: int, flag: str = '--dlatents'
                  ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Reads a dlatent file and fits it to a network with ``num_rows`` rows of size ``dlatent_size``.

    ``[N, D]`` (W) is broadcast to every row; ``[N, L, D]`` (W+) must have the network's L, since a
    projection is only meaningful on the rows it was optimised for.

    Returns:
        ``(dlatents [N, num_rows, dlatent_size] float32, seeds int64 [N] or None)``.

    Raises:
        ValueError: naming the file and the flag (see ``read_dlatents``), or sizes that do not fit.
    """
    where = f'{path} ({flag})'
    dl, seeds, _ = read_dlatents(path, where)
    if dl.shape[-1] != dlatent_size:
        raise ValueError(f'{where}: dlatent size mismatch: the file has D={dl.shape[-1]}, the '
                         f'network expects D={dlatent_size}')
    if dl.ndim == 3 and dl.shape[1] != num_rows:
        raise ValueError(f'{where}: dlatent rows mismatch: the file has L={dl.shape[1]}, the '
                         f'network has {num_rows} rows')
    if dl.ndim == 2:
        dl = np.repeat(dl[:, None, :], num_rows, axis=1)
    return dl, seeds


def load_src_dlatents(path: str, seeds: Optional[Sequence[int]] = None
                      ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Reads source dlatents for cross mixing (a projection, say), any row count (the mixing
    reconciles rows), optionally picking entries by the file's ``seeds``.

    Returns:
        ``(dlatents float32 [N, L, D] or [N, D], seeds int64 array or None)``.
    """
    dlatents, file_seeds, _ = read_dlatents(path, path)
    if seeds is None:
        return dlatents, file_seeds
    if file_seeds is None:
        raise ValueError(f'{path}: source seeds were asked for but the file has no "seeds" array')
    index = {int(s): i for i, s in enumerate(file_seeds)}
    missing = [s for s in seeds if int(s) not in index]
    if missing:
        raise ValueError(f'{path}: seeds {missing} are not in the file '
                         f'(it has {file_seeds.tolist()})')
    pick = [index[int(s)] for s in seeds]
    return dlatents[pick], file_seeds[pick]


def check_npz_path(path: str, flag: str) -> None:
    """Raises ValueError unless ``path`` can be written as a file (checked before any work)."""
    from dnnlib.util import check_output_dir
    if os.path.isdir(path):
        raise ValueError(f'{path}: {flag} is a folder; give a file name such as out.npz')
    check_output_dir(os.path.dirname(path) or '.')


def save_npz(path: str, **arrays) -> str:
    """``np.savez`` to a temporary name in the same folder, then an atomic rename."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path
