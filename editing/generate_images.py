"""Image generation from an official network pickle (library side of ``generate_images.py``).

Written against the official inference API only (``Gs.run``, ``Gs.input_shape``,
``convert_images_to_uint8``), so it works with both implementations chosen by
``editing.impl.load_network(path, impl)``: ``'tf2'`` and ``'legacy'``.
"""

import importlib
import os
from typing import List, Optional, Sequence

import numpy as np

from dnnlib.util import check_output_dir
from editing import figures

NOISE_MODES = ('const', 'random')
_IMPL_PACKAGES = {'tf2': 'tf2', 'legacy': 'legacy_tf'}


def seed_latents(seeds: Sequence[int], latent_size: int) -> np.ndarray:
    """``[len(seeds), latent_size]``: row i is ``RandomState(seed_i).randn(1, latent_size)``."""
    return np.concatenate([np.random.RandomState(s).randn(1, latent_size) for s in seeds])


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


def generate_images(network_pkl: str, seeds: Optional[Sequence[int]], truncation_psi: Optional[float],
                    truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                    outdir: str = 'out', grid: bool = False, impl: str = 'tf2',
                    minibatch_size: int = 8, dlatents_npz: Optional[str] = None) -> List[str]:
    """Generates one PNG per seed (or per entry of a dlatents file) with Gs of an official
    pickle, optionally plus a grid.

    Args:
        network_pkl: official ``(G, D, Gs)`` pickle, any StyleGAN v1 resolution.
        seeds: z seeds; seed s means ``np.random.RandomState(s).randn(1, latent_size)``.
        dlatents_npz: instead of seeds, a dlatents file (``dlatents`` or ADA's ``w``, ``[N, L, D]``
            or ``[N, D]``, e.g. ``projected.npz``): rendered by the synthesis network as they are
            (truncated only with ``truncation_psi``), each with its saved noise maps
            ``noises_<i>`` if the file has them and ``noise_mode`` is ``'const'``; files
            ``proj%02d.png``.
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
    if (seeds is None) == (dlatents_npz is None):
        raise ValueError('give exactly one of --seeds and --dlatents')
    if seeds is not None and not seeds:
        raise ValueError('no seeds given')
    if impl not in _IMPL_PACKAGES:
        raise ValueError(f'unknown impl {impl!r}; choose one of {sorted(_IMPL_PACKAGES)}')
    if truncation_psi is not None and not np.isfinite(truncation_psi):
        raise ValueError(f'truncation psi must be a finite number, got {truncation_psi}')
    if truncation_cutoff is not None and truncation_cutoff < 0:
        raise ValueError(f'truncation cutoff must be >= 0, got {truncation_cutoff}')
    check_output_dir(outdir)
    if dlatents_npz is not None:
        from editing import dlatents_io
        dlatents_io.read_dlatents(dlatents_npz, f'{dlatents_npz} (--dlatents)')   # before loading
    _G, _D, Gs = impl_lib.load_network(network_pkl, impl)       # ValueError naming the file
    if dlatents_npz is not None:
        images = _render_dlatents_file(Gs, dlatents_npz, truncation_psi, truncation_cutoff,
                                       noise_mode, minibatch_size)
        names = [f'proj{i:02d}.png' for i in range(images.shape[0])]
        return _write(images, names, outdir, grid)
    convert = importlib.import_module(_IMPL_PACKAGES[impl]).convert_images_to_uint8
    kwargs = dict(randomize_noise=(noise_mode == 'random'), minibatch_size=minibatch_size,
                  output_transform=dict(func=convert, nchw_to_nhwc=True))
    if truncation_psi is not None:
        kwargs['truncation_psi'] = truncation_psi
    if truncation_cutoff is not None:
        kwargs['truncation_cutoff'] = truncation_cutoff
    latents = seed_latents(seeds, Gs.input_shape[1])
    images = Gs.run(latents, None, **kwargs)            # [N, H, W, C] uint8
    return _write(images, [f'seed{seed:04d}.png' for seed in seeds], outdir, grid)


def _render_dlatents_file(Gs, path: str, truncation_psi: Optional[float],
                          truncation_cutoff: Optional[int], noise_mode: str,
                          minibatch_size: int) -> np.ndarray:
    """The entries of a dlatents file rendered as uint8 ``[N, H, W, C]`` (see generate_images)."""
    from editing import dlatents_io, mixing, projector
    syn = Gs.components.synthesis
    dlatents, _ = dlatents_io.load_dlatents(path, int(syn.input_shape[1]), int(syn.input_shape[2]))
    noises = projector.load_noises(path, Gs, dlatents.shape[0])
    if truncation_psi is not None:
        dlatents = mixing.truncate(dlatents, Gs.get_var('dlatent_avg'), truncation_psi,
                                   truncation_cutoff)
    if noise_mode == 'random':
        images = np.concatenate([syn.run(dlatents[i:i + minibatch_size], randomize_noise=True)
                                 for i in range(0, dlatents.shape[0], minibatch_size)])
    else:
        images = projector.render(Gs, dlatents, noises, minibatch_size)
    return projector.to_uint8(images)


def _write(images: np.ndarray, names: Sequence[str], outdir: str, grid: bool) -> List[str]:
    os.makedirs(outdir, exist_ok=True)
    written = []
    for name, img in zip(names, images):
        path = os.path.join(outdir, name)
        figures.save_png(img, path)
        written.append(path)
    if grid:
        path = os.path.join(outdir, 'grid.png')
        figures.save_png(image_grid(images), path)
        written.append(path)
    return written
