"""Image generation from an official network pickle (library side of ``generate_images.py``).

Written against the official inference API only (``Gs.run``, ``Gs.input_shape``,
``convert_images_to_uint8``), so it works with both implementations chosen by
``editing.impl.load_network(path, impl)``: ``'tf2'`` and ``'legacy'``.
"""

import importlib
import os
import re
import tempfile
from typing import List, Optional, Sequence

import numpy as np
import PIL.Image

NOISE_MODES = ('const', 'random')
_IMPL_PACKAGES = {'tf2': 'tf2', 'legacy': 'legacy_tf'}


def parse_seeds(text: str) -> List[int]:
    """Parses ``'0-3,7,10-12'`` into ``[0, 1, 2, 3, 7, 10, 11, 12]`` (ranges are inclusive).

    Raises:
        ValueError: malformed text, a negative seed, a seed >= 2**32, or a reversed range.
    """
    seeds = []
    for part in str(text).split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', part)
        if not m:
            raise ValueError(f'bad seed list {text!r}: {part!r} is not N or N-M '
                             '(non-negative integers, e.g. 0-3,7,10-12)')
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if hi < lo:
            raise ValueError(f'bad seed list {text!r}: range {part!r} is reversed')
        if hi >= 2 ** 32:
            raise ValueError(f'bad seed list {text!r}: seeds must be < 2**32')
        seeds.extend(range(lo, hi + 1))
    return seeds


def seed_latents(seeds: Sequence[int], latent_size: int) -> np.ndarray:
    """``[len(seeds), latent_size]``: row i is ``RandomState(seed_i).randn(1, latent_size)``."""
    return np.concatenate([np.random.RandomState(s).randn(1, latent_size) for s in seeds])


def check_output_dir(outdir: str) -> None:
    """Raises ValueError unless ``outdir`` is a folder or can be made one (checked before any
    network is loaded, so that a bad path costs nothing and leaves nothing behind)."""
    path = os.path.abspath(outdir)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise ValueError(f'{outdir}: output folder cannot be created: {path} is a file')
    if not os.access(path, os.W_OK):
        raise ValueError(f'{outdir}: output folder is not writable ({path})')


def _save_png(array: np.ndarray, path: str) -> None:
    """Writes an ``[H, W, C]`` uint8 array as PNG via a temporary name and a rename."""
    mode = {1: 'L', 3: 'RGB', 4: 'RGBA'}.get(array.shape[2])
    if mode is None:
        raise ValueError(f'cannot save an image with {array.shape[2]} channels as PNG')
    img = PIL.Image.fromarray(array[:, :, 0] if mode == 'L' else array, mode)
    fd, tmp = tempfile.mkstemp(suffix='.png', dir=os.path.dirname(path) or '.')
    os.close(fd)
    try:
        img.save(tmp, format='PNG')
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def image_grid(images: np.ndarray, columns: Optional[int] = None) -> np.ndarray:
    """``[N, H, W, C]`` -> one ``[rows*H, cols*W, C]`` image, row-major, black padding."""
    n, h, w, c = images.shape
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros([rows * h, cols * w, c], images.dtype)
    for i, img in enumerate(images):
        r, col = divmod(i, cols)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    return grid


def generate_images(network_pkl: str, seeds: Sequence[int], truncation_psi: Optional[float],
                    truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                    outdir: str = 'out', grid: bool = False, impl: str = 'tf2',
                    minibatch_size: int = 8) -> List[str]:
    """Generates one PNG per seed with Gs of an official pickle, optionally plus a grid.

    Args:
        network_pkl: official ``(G, D, Gs)`` pickle, any StyleGAN v1 resolution.
        seeds: z seeds; seed s means ``np.random.RandomState(s).randn(1, latent_size)``.
        truncation_psi: psi; ``None`` keeps the network's default (v1: 0.7).
        truncation_cutoff: rows ``< cutoff`` are truncated; ``None`` keeps the network's
            default (v1: 8).
        noise_mode: ``'const'`` uses the stored noise inputs (``randomize_noise=False``),
            ``'random'`` draws fresh noise.
        outdir: output directory (created); files ``seed%04d.png`` and ``grid.png``.
        grid: also write all images as one grid.
        impl: ``'tf2'`` or ``'legacy'`` (see ``editing.impl``).
        minibatch_size: images per forward pass.

    Returns:
        The written file paths.

    Raises:
        ValueError: bad arguments, an output folder that cannot be made, or a file that is not
            an official (G, D, Gs) pickle with a generator as Gs (the message names the file).
    """
    from editing import impl as impl_lib
    if noise_mode not in NOISE_MODES:
        raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')
    if not seeds:
        raise ValueError('no seeds given')
    if impl not in _IMPL_PACKAGES:
        raise ValueError(f'unknown impl {impl!r}; choose one of {sorted(_IMPL_PACKAGES)}')
    if truncation_psi is not None and not np.isfinite(truncation_psi):
        raise ValueError(f'truncation psi must be a finite number, got {truncation_psi}')
    if truncation_cutoff is not None and truncation_cutoff < 0:
        raise ValueError(f'truncation cutoff must be >= 0, got {truncation_cutoff}')
    check_output_dir(outdir)
    _G, _D, Gs = impl_lib.load_network(network_pkl, impl)       # ValueError naming the file
    convert = importlib.import_module(_IMPL_PACKAGES[impl]).convert_images_to_uint8
    kwargs = dict(randomize_noise=(noise_mode == 'random'), minibatch_size=minibatch_size,
                  output_transform=dict(func=convert, nchw_to_nhwc=True))
    if truncation_psi is not None:
        kwargs['truncation_psi'] = truncation_psi
    if truncation_cutoff is not None:
        kwargs['truncation_cutoff'] = truncation_cutoff
    latents = seed_latents(seeds, Gs.input_shape[1])
    images = Gs.run(latents, None, **kwargs)            # [N, H, W, C] uint8
    os.makedirs(outdir, exist_ok=True)
    written = []
    for seed, img in zip(seeds, images):
        path = os.path.join(outdir, f'seed{seed:04d}.png')
        _save_png(img, path)
        written.append(path)
    if grid:
        path = os.path.join(outdir, 'grid.png')
        _save_png(image_grid(images), path)
        written.append(path)
    return written
