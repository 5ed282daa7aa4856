"""Style mixing by scheme, and cross-model mixing, on any network with the official API.

Everything here works on numpy arrays through the official inference API (design.md), so it runs
on a ``Gs`` loaded by either implementation (``tf2`` or ``legacy``, see ``editing/impl.py``):
``Gs.components.mapping.run(latents, None)`` -> dlatents ``[N, L, D]``,
``Gs.components.synthesis.run(dlatents, randomize_noise=...)`` -> images ``[N, C, H, W]``,
``Gs.get_var('dlatent_avg')`` and ``Gs.components.synthesis.input_shape`` (``[None, L, D]``).
TensorFlow is imported only when a network is loaded from a file.

Vocabulary (official, paper Figure 3): a *mix* is the destination's dlatents with the scheme's
rows taken from the source. In a figure, sources run along the top, destinations down the left,
mixes fill the grid. Which rows a scheme takes: ``editing/mixing_schemes.py``; the figures:
``editing/figures.py``; dlatent files: ``editing/dlatents_io.py``.

Truncation: ``w = avg + (w - avg) * c`` with ``c = psi`` for rows ``< cutoff`` (all rows when the
cutoff is None) and 1 otherwise, ``avg = Gs.get_var('dlatent_avg')``; the same ``lerp`` the
official ``G_style``/``G_main`` compute. It is applied to destination and source dlatents before
mixing, as StyleGAN2's style-mixing example does. ``truncation_psi=None`` means the network's
default for mixing: none for StyleGAN (the paper figure used none), psi 0.5 on all rows for
StyleGAN2 (``G_main``, as its ``run_generator.py style-mixing-example``). ``psi == 1`` disables it.
"""

import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from editing import figures
from editing.dlatents_io import load_src_dlatents, save_npz
from editing.mixing_schemes import Scheme, as_schemes, format_rows, reconcile_rows, scheme_rows

NOISE_MODES = ('const', 'random')

Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# Array operations.

def truncate(dlatents: np.ndarray, dlatent_avg: np.ndarray, psi: Optional[float],
             cutoff: Optional[int] = None) -> np.ndarray:
    """The truncation trick in W: ``avg + (w - avg) * c``, c = psi for rows < cutoff, else 1.

    Computed in float32 as the official ``lerp`` is (rows at or past the cutoff go through the
    lerp with c = 1 too, as in ``G_style``), so the result matches the official dlatents bit for
    bit.

    Args:
        dlatents: ``[N, L, D]``.
        dlatent_avg: ``[D]``, the network's ``dlatent_avg``.
        psi: truncation psi; None or 1 returns the dlatents unchanged (as the official code does).
        cutoff: rows ``< cutoff`` are truncated; None means all rows.
    """
    dlatents = np.asarray(dlatents, dtype=np.float32)
    if psi is None or psi == 1:
        return dlatents
    if not np.isfinite(psi):
        raise ValueError(f'truncation psi must be a finite number, got {psi}')
    if cutoff is not None and cutoff < 0:
        raise ValueError(f'truncation cutoff must be >= 0, got {cutoff}')
    assert dlatents.ndim == 3, f'dlatents must be [N, L, D], got {dlatents.shape}'
    avg = np.asarray(dlatent_avg, dtype=np.float32).reshape(1, 1, -1)
    if avg.shape[2] != dlatents.shape[2]:
        raise ValueError(f'dlatent_avg has size {avg.shape[2]}, dlatents have {dlatents.shape[2]}')
    num_rows = dlatents.shape[1]
    rows = np.arange(num_rows)
    limit = num_rows if cutoff is None else cutoff
    coefs = np.where(rows < limit, np.float32(psi), np.float32(1))
    return avg + (dlatents - avg) * coefs.astype(np.float32)[None, :, None]


def mix_dlatents(dst_dlatents: np.ndarray, src_dlatents: np.ndarray,
                 rows: Sequence[int]) -> np.ndarray:
    """Every destination with the given rows taken from every source.

    Args:
        dst_dlatents: ``[Nd, L, D]``.
        src_dlatents: ``[Ns, L, D]``.
        rows: row indices to take from the source.

    Returns:
        ``[Nd, Ns, L, D]``: ``out[i, j] = dst[i]`` with ``out[i, j, rows] = src[j, rows]``.
    """
    dst = np.asarray(dst_dlatents, dtype=np.float32)
    src = np.asarray(src_dlatents, dtype=np.float32)
    if dst.ndim != 3 or src.ndim != 3 or dst.shape[1:] != src.shape[1:]:
        raise ValueError(f'destination dlatents {dst.shape} and source dlatents {src.shape} must '
                         'both be [N, L, D] with the same L and D')
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= dst.shape[1]):
        raise ValueError(f'rows {format_rows(rows)} out of range for {dst.shape[1]} rows')
    out = np.repeat(dst[:, None], src.shape[0], axis=1)           # [Nd, Ns, L, D]
    out[:, :, rows] = src[None][:, :, rows]
    return out


def _num_rows(Gs) -> int:
    return int(Gs.components.synthesis.input_shape[1])


def _dlatent_size(Gs) -> int:
    return int(Gs.components.synthesis.input_shape[2])


def _latent_size(Gs) -> int:
    return int(Gs.input_shape[1])


def is_stylegan2(Gs) -> bool:
    """Whether ``Gs`` is a StyleGAN2 ``G_main`` network (its build function name says so).

    ``tf2`` networks expose ``build_func_name``; ``legacy_tf`` ones keep the official private
    ``_build_func_name``.
    """
    name = getattr(Gs, 'build_func_name', None) or getattr(Gs, '_build_func_name', None)
    return name == 'G_main'


def default_truncation(Gs) -> Tuple[Optional[float], Optional[int]]:
    """Default ``(psi, cutoff)`` for mixing: none for StyleGAN, 0.5 on all rows for StyleGAN2."""
    return (0.5, None) if is_stylegan2(Gs) else (None, None)


def _resolve_truncation(Gs, psi: Optional[float], cutoff: Optional[int]):
    if psi is None:
        if cutoff is not None:
            raise ValueError('a truncation cutoff was given without truncation psi')
        return default_truncation(Gs)
    return float(psi), cutoff


def _describe_truncation(psi, cutoff) -> str:
    if psi is None or psi == 1:
        return 'none'
    return f'psi {psi:g} on ' + ('all rows' if cutoff is None else f'rows < {cutoff}')


def latents_from_seeds(seeds: Sequence[int], latent_size: int) -> np.ndarray:
    """``[N, latent_size]`` float32: row i is ``RandomState(seeds[i]).randn(1, latent_size)``."""
    return np.concatenate([np.random.RandomState(int(s)).randn(1, latent_size)
                           for s in seeds]).astype(np.float32)


def _batched(fn, x: np.ndarray, minibatch_size: int) -> np.ndarray:
    outs = [np.asarray(fn(x[i:i + minibatch_size]), dtype=np.float32)
            for i in range(0, x.shape[0], minibatch_size)]
    return np.concatenate(outs)


def map_seeds(Gs, seeds: Sequence[int], minibatch_size: int = 8) -> np.ndarray:
    """``Gs.components.mapping.run`` on the seeds' latents -> dlatents ``[N, L, D]`` float32."""
    latents = latents_from_seeds(seeds, _latent_size(Gs))
    dlatents = _batched(lambda z: Gs.components.mapping.run(z, None), latents, minibatch_size)
    expected = (len(seeds), _num_rows(Gs), _dlatent_size(Gs))
    assert dlatents.shape == expected, f'mapping gave {dlatents.shape}, expected {expected}'
    return dlatents


def synthesize(Gs, dlatents: np.ndarray, randomize_noise: bool = False,
               minibatch_size: int = 8) -> np.ndarray:
    """``Gs.components.synthesis.run`` in minibatches -> images ``[N, C, H, W]`` float32."""
    dlatents = np.asarray(dlatents, dtype=np.float32)                # [N, L, D]
    assert dlatents.ndim == 3 and dlatents.shape[1:] == (_num_rows(Gs), _dlatent_size(Gs)), \
        f'dlatents {dlatents.shape} do not fit {Gs.components.synthesis.input_shape}'
    return _batched(lambda w: Gs.components.synthesis.run(w, randomize_noise=randomize_noise),
                    dlatents, minibatch_size)


def _dlatent_avg(Gs) -> np.ndarray:
    return np.asarray(Gs.get_var('dlatent_avg'), dtype=np.float32)


def render_entries(Gs, dlatents: np.ndarray, noises: Optional[List[np.ndarray]],
                   randomize_noise: bool = False, minibatch_size: int = 8) -> np.ndarray:
    """``synthesize``, or, with ``noises`` (a projection's maps, per noise input ``[N, 1, 1, r, r]``)
    and stored noise, each entry rendered with its own noise maps."""
    if noises is None or randomize_noise:
        return synthesize(Gs, dlatents, randomize_noise, minibatch_size)
    from editing import projector
    return projector.render(Gs, np.asarray(dlatents, np.float32), noises).astype(np.float32)


def mix_and_render(Gs, dst_dlatents: np.ndarray, src_dlatents: np.ndarray, schemes,
                   noise_mode: str = 'const', minibatch_size: int = 8,
                   log: Optional[Log] = print,
                   dst_noises: Optional[List[np.ndarray]] = None) -> Dict[str, dict]:
    """Mixes given dlatents by each scheme and renders the mixes with ``Gs``'s synthesis.

    Args:
        Gs: the network that renders (its row count is the one the schemes are cut to).
        dst_dlatents: ``[Nd, L, D]``.
        src_dlatents: ``[Ns, L, D]``, already reconciled to ``L`` rows.
        schemes: scheme string(s) or Scheme(s).
        noise_mode: ``'const'`` (stored noise, ``randomize_noise=False``) or ``'random'``.
        minibatch_size: images per synthesis call.
        log: where notes go.
        dst_noises: the destinations' own noise maps (a projection's, ``[Nd, 1, 1, r, r]`` per
            noise input): every mix of destination i is rendered with them (stored noise only).

    Returns:
        Ordered dict scheme name -> ``{'scheme', 'rows', 'mixed_dlatents' [Nd, Ns, L, D],
        'images' [Nd, Ns, C, H, W]}``.
    """
    _check_noise_mode(noise_mode)
    out = {}
    for scheme in as_schemes(schemes):
        rows = scheme_rows(scheme, _num_rows(Gs), log=log)
        mixed = mix_dlatents(dst_dlatents, src_dlatents, rows)       # [Nd, Ns, L, D]
        flat = mixed.reshape((-1,) + mixed.shape[2:])
        per_mix = None if dst_noises is None else \
            [np.repeat(n, mixed.shape[1], axis=0) for n in dst_noises]       # row-major, as flat
        images = render_entries(Gs, flat, per_mix, noise_mode == 'random', minibatch_size)
        out[scheme.name] = dict(scheme=scheme, rows=rows, mixed_dlatents=mixed,
                                images=images.reshape(mixed.shape[:2] + images.shape[1:]))
    return out


def _result(dst_seeds, src_seeds, src_names, src_labels, dst_dlatents, src_dlatents,
            dst_images, src_images, mixes, notes, truncation) -> dict:
    return dict(dst_seeds=np.asarray(dst_seeds, dtype=np.int64),
                src_seeds=np.asarray(src_seeds, dtype=np.int64),
                dst_names=[f'dst{s}' for s in dst_seeds], src_names=list(src_names),
                dst_labels=[f'seed {s}' for s in dst_seeds], src_labels=list(src_labels),
                dst_dlatents=dst_dlatents, src_dlatents=src_dlatents,
                dst_images=dst_images, src_images=src_images,
                schemes=mixes, notes=notes, truncation=truncation)


def _logger(log: Optional[Log], notes: list) -> Log:
    def emit(msg: str) -> None:
        notes.append(msg)
        if log is not None:
            log(msg)
    return emit


def style_mixing(Gs, dst_seeds: Sequence[int], src_seeds: Sequence[int], schemes='coarse',
                 truncation_psi: Optional[float] = None, truncation_cutoff: Optional[int] = None,
                 noise_mode: str = 'const', minibatch_size: int = 8,
                 log: Optional[Log] = print) -> dict:
    """Style mixing on one network (paper Figure 3 semantics).

    Args:
        Gs: network with the official API (either implementation).
        dst_seeds: destination seeds (figure rows).
        src_seeds: source seeds (figure columns).
        schemes: scheme string(s) or Scheme(s), e.g. ``'coarse,middle,fine'``.
        truncation_psi: None = network default (none for StyleGAN, 0.5 for StyleGAN2); 1 = none.
        truncation_cutoff: rows < cutoff are truncated; None = all rows.
        noise_mode: ``'const'`` (``randomize_noise=False``) or ``'random'``.
        minibatch_size: images per synthesis call.
        log: where notes go (None: silent).

    Returns:
        Dict with ``dst_seeds``, ``src_seeds``, ``dst_names``, ``src_names``, ``dst_dlatents``
        ``[Nd, L, D]`` and ``src_dlatents`` ``[Ns, L, D]`` (after truncation), ``dst_images``,
        ``src_images``, ``schemes`` (see ``mix_and_render``), ``notes``, ``truncation``.
    """
    result = cross_mixing(Gs, Gs, dst_seeds, src_seeds, schemes, truncation_psi,
                          truncation_cutoff, noise_mode, minibatch_size, log)
    del result['src_dlatents_native']     # the same as src_dlatents on one network
    return result


def _check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f'noise mode {noise_mode!r}; choose one of {NOISE_MODES}')


def _check_seeds(seeds, what: str) -> None:
    if len(seeds) == 0:
        raise ValueError(f'no {what} seeds given')


def _check_compatible(Gs_dst, Gs_src, dst_label: str, src_label: str) -> None:
    for what, size in (('latent', _latent_size), ('dlatent', _dlatent_size)):
        if size(Gs_dst) != size(Gs_src):
            raise ValueError(f'{what} sizes differ: destination {dst_label} has {size(Gs_dst)}, '
                             f'source {src_label} has {size(Gs_src)}')


def cross_mixing(Gs_dst, Gs_src, dst_seeds: Sequence[int], src_seeds: Sequence[int],
                 schemes='coarse', truncation_psi: Optional[float] = None,
                 truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                 minibatch_size: int = 8, log: Optional[Log] = print,
                 dst_label: str = 'network', src_label: str = 'network') -> dict:
    """Mixing across two networks: A's (``Gs_src``) styles in B's (``Gs_dst``) images.

    A's mapping makes the source dlatents, B's mapping the destination dlatents, B's synthesis
    renders. Each network truncates towards its own ``dlatent_avg`` (and, with ``psi=None``,
    with its own default). The source dlatents are then brought to B's row count by resolution
    (``reconcile_rows``). Source images in the result are A's own renderings.

    Args:
        Gs_dst: network B (destination, renders the mixes).
        Gs_src: network A (source); may be ``Gs_dst`` itself.
        dst_seeds, src_seeds, schemes, truncation_psi, truncation_cutoff, noise_mode,
            minibatch_size, log: as in ``style_mixing``.
        dst_label, src_label: names used in error messages (e.g. the pickle paths).

    Returns:
        As ``style_mixing``, plus ``src_dlatents_native`` (A's truncated dlatents, A's rows);
        ``src_dlatents`` holds them reconciled to B's rows, as mixed.
    """
    _check_noise_mode(noise_mode)
    schemes = as_schemes(schemes)
    _check_seeds(dst_seeds, 'destination')
    _check_seeds(src_seeds, 'source')
    _check_compatible(Gs_dst, Gs_src, dst_label, src_label)
    notes: list = []
    emit = _logger(log, notes)
    trunc_dst = _resolve_truncation(Gs_dst, truncation_psi, truncation_cutoff)
    trunc_src = _resolve_truncation(Gs_src, truncation_psi, truncation_cutoff)
    randomize = noise_mode == 'random'

    dst_dl = truncate(map_seeds(Gs_dst, dst_seeds, minibatch_size), _dlatent_avg(Gs_dst),
                      *trunc_dst)
    src_native = truncate(map_seeds(Gs_src, src_seeds, minibatch_size), _dlatent_avg(Gs_src),
                          *trunc_src)
    src_dl, note = reconcile_rows(src_native, _num_rows(Gs_dst))
    if note:
        emit(note)
    dst_images = synthesize(Gs_dst, dst_dl, randomize, minibatch_size)
    src_images = synthesize(Gs_src, src_native, randomize, minibatch_size)
    mixes = mix_and_render(Gs_dst, dst_dl, src_dl, schemes, noise_mode, minibatch_size, emit)
    result = _result(dst_seeds, src_seeds, [f'src{s}' for s in src_seeds],
                     [f'seed {s}' for s in src_seeds], dst_dl, src_dl,
                     dst_images, src_images, mixes, notes,
                     dict(dst=trunc_dst, src=trunc_src))
    result['src_dlatents_native'] = src_native
    return result


def cross_mixing_from_dlatents(Gs_dst, src_dlatents: np.ndarray, dst_seeds: Sequence[int],
                               schemes='coarse', src_seeds: Optional[Sequence[int]] = None,
                               truncation_psi: Optional[float] = None,
                               truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                               minibatch_size: int = 8, log: Optional[Log] = print,
                               src_label: str = 'source dlatents') -> dict:
    """Mixing with source dlatents from elsewhere (W ``[N, D]`` or W+ ``[N, L, D]``).

    The source dlatents are used as given (no truncation: they are final W vectors already),
    brought to ``Gs_dst``'s rows by ``reconcile_rows``; the destinations are truncated as in
    ``style_mixing``. Source images are the source dlatents rendered by ``Gs_dst``.

    Args:
        Gs_dst: the destination network (renders).
        src_dlatents: ``[Ns, L', D]`` or ``[Ns, D]``.
        src_seeds: names of the entries (e.g. the file's ``seeds``); None: indices, named
            ``src-item<j>`` in file names, and stored as ``-1`` in ``src_seeds``.
        Others: as in ``style_mixing``.
    """
    _check_noise_mode(noise_mode)
    schemes = as_schemes(schemes)
    _check_seeds(dst_seeds, 'destination')
    src_dlatents = np.asarray(src_dlatents, dtype=np.float32)
    if src_dlatents.ndim not in (2, 3) or src_dlatents.shape[-1] != _dlatent_size(Gs_dst):
        raise ValueError(f'dlatent sizes differ: destination network has {_dlatent_size(Gs_dst)}, '
                         f'{src_label} are {src_dlatents.shape}')
    notes: list = []
    emit = _logger(log, notes)
    trunc_dst = _resolve_truncation(Gs_dst, truncation_psi, truncation_cutoff)
    randomize = noise_mode == 'random'
    dst_dl = truncate(map_seeds(Gs_dst, dst_seeds, minibatch_size), _dlatent_avg(Gs_dst),
                      *trunc_dst)
    src_dl, note = reconcile_rows(src_dlatents, _num_rows(Gs_dst))
    if note:
        emit(note)
    if src_seeds is None:
        names = [f'src-item{j}' for j in range(src_dl.shape[0])]
        labels = [f'item {j}' for j in range(src_dl.shape[0])]
        seeds = [-1] * src_dl.shape[0]
    else:
        names, seeds = [f'src{s}' for s in src_seeds], list(src_seeds)
        labels = [f'seed {s}' for s in src_seeds]
    dst_images = synthesize(Gs_dst, dst_dl, randomize, minibatch_size)
    src_images = synthesize(Gs_dst, src_dl, randomize, minibatch_size)
    mixes = mix_and_render(Gs_dst, dst_dl, src_dl, schemes, noise_mode, minibatch_size, emit)
    result = _result(dst_seeds, seeds, names, labels, dst_dl, src_dl, dst_images, src_images, mixes,
                     notes, dict(dst=trunc_dst, src=(None, None)))
    result['src_dlatents_native'] = src_dlatents
    return result


# ------------------------------------------------------------------------------------------------
# Output: npz and PNGs.

def save_mixing_npz(result: dict, path: str) -> str:
    """Writes a mixing result to ``path`` (written to a temporary name, then renamed).

    Keys with one scheme: ``dst_dlatents`` [Nd, L, D], ``src_dlatents`` [Ns, L, D],
    ``mixed_dlatents`` [Nd, Ns, L, D], ``images`` [Nd, Ns, C, H, W] (float32 NCHW as the network
    produced them), ``rows``, ``dst_seeds``, ``src_seeds``, ``dst_images``, ``src_images``,
    ``schemes`` (the names), and ``src_dlatents_native`` for cross mixing. With several schemes,
    ``rows``, ``mixed_dlatents``, ``images``, ``dst_dlatents``, ``src_dlatents``, ``dst_seeds``
    and ``src_seeds`` are keyed ``<name>_<scheme>`` (``rows_coarse``, ``images_fine``, ...); the
    arrays that do not depend on the scheme are (also) stored under their plain names.
    """
    shared = {k: result[k] for k in ('dst_dlatents', 'src_dlatents', 'dst_seeds', 'src_seeds')}
    arrays = dict(shared)
    arrays.update({k: result[k] for k in ('dst_images', 'src_images', 'src_dlatents_native')
                   if k in result})
    arrays['schemes'] = np.array(list(result['schemes']))
    several = len(result['schemes']) > 1
    for name, mix in result['schemes'].items():
        per = dict(rows=mix['rows'], mixed_dlatents=mix['mixed_dlatents'], images=mix['images'])
        if several:
            per.update(shared)      # small; makes every per-scheme set of the keys complete
        for key, value in per.items():
            arrays[f'{key}_{name}' if several else key] = value
    return save_npz(path, **arrays)


def write_mixing_pngs(result: dict, outdir: str, prefix: str = 'mixing', write_mixes: bool = True,
                      cell_size: Optional[int] = None) -> Dict[str, List[str]]:
    """Writes a figure per scheme (``<prefix>-<scheme>.png``) and, optionally, each mix as
    ``<prefix>-<scheme>-dst<seed>-src<seed>.png``.

    Returns:
        ``{'figures': [...], 'mixes': [...]}`` paths.
    """
    os.makedirs(outdir, exist_ok=True)
    paths: Dict[str, List[str]] = dict(figures=[], mixes=[])
    for name, mix in result['schemes'].items():
        fig = figures.draw_mixing_figure(result, name, cell_size)
        paths['figures'].append(figures.save_png(fig, os.path.join(outdir, f'{prefix}-{name}.png')))
        if not write_mixes:
            continue
        uint8 = figures.images_to_uint8(mix['images'].reshape((-1,) + mix['images'].shape[2:]))
        nd, ns = mix['images'].shape[:2]
        for k, img in enumerate(uint8):
            i, j = divmod(k, ns)
            fname = f'{prefix}-{name}-{result["dst_names"][i]}-{result["src_names"][j]}.png'
            paths['mixes'].append(figures.save_png(figures.to_pil(img), os.path.join(outdir, fname)))
    return paths


# ------------------------------------------------------------------------------------------------
# Whole runs from pickles (what the scripts and the training loop call).

def load_gs(path: str, impl: str = 'tf2'):
    """Loads an official-format pickle with the chosen implementation and returns ``Gs``.

    Raises:
        ValueError: naming the file: missing, not an official network pickle, or no generator.
    """
    from editing.impl import load_network
    return load_network(path, impl=impl)[2]


def _report(log: Optional[Log], result: dict, label_dst: str, label_src: str) -> None:
    if log is None:
        return
    t = result['truncation']
    log(f'truncation: destination {label_dst}: {_describe_truncation(*t["dst"])}; '
        f'source {label_src}: {_describe_truncation(*t["src"])}')
    for name, mix in result['schemes'].items():
        log(f'scheme {name}: rows {format_rows(mix["rows"])}')


def check_outputs(outdir: str, out_npz: Optional[str]) -> None:
    """Raises ValueError unless the figures' folder and the npz path can be written; checked
    before any network is loaded, so that a bad path leaves nothing behind."""
    from dnnlib.util import check_output_dir
    check_output_dir(outdir)
    if out_npz:
        if os.path.isdir(out_npz):
            raise ValueError(f'{out_npz}: --out-npz is a folder; give a file name such as mixing.npz')
        check_output_dir(os.path.dirname(out_npz) or '.')


def _check_schemes_fit(Gs, schemes: List[Scheme], label: str) -> None:
    """A scheme (other than 'none') that replaces no row of the network is a user error."""
    rows = _num_rows(Gs)
    for scheme in schemes:
        if scheme.name != 'none' and scheme_rows(scheme, rows, log=None).size == 0:
            raise ValueError(f'scheme {scheme.name!r} replaces no rows of {label}: it has {rows} style '
                             f'rows (0-{rows - 1})')


def _write_outputs(result, outdir, out_npz, prefix, write_mixes, log) -> Dict[str, List[str]]:
    paths = write_mixing_pngs(result, outdir, prefix=prefix, write_mixes=write_mixes)
    if out_npz:
        paths['npz'] = [save_mixing_npz(result, out_npz)]
    if log is not None:
        log(f'wrote {len(paths["figures"])} figure(s) and {len(paths["mixes"])} mix image(s) '
            f'to {outdir}' + (f', arrays to {out_npz}' if out_npz else ''))
    return paths


def _side(Gs, seeds, path, flag, who, truncation, minibatch_size):
    """One side of a style mixing from seeds (mapped, truncated) or from a dlatents file (as
    they are, with the file's noise maps): ``(dlatents, noises, seeds, names, labels, truncation)``."""
    from editing import dlatents_io, projector
    if path is None:
        dl = truncate(map_seeds(Gs, seeds, minibatch_size), _dlatent_avg(Gs), *truncation)
        return dl, None, list(seeds), [f'{who}{s}' for s in seeds], [f'seed {s}' for s in seeds], truncation
    dl, _ = dlatents_io.load_dlatents(path, _num_rows(Gs), _dlatent_size(Gs), flag)
    noises = projector.load_noises(path, Gs, dl.shape[0], flag)
    n = dl.shape[0]
    return (dl, noises, [-1] * n, [f'{who}-item{j}' for j in range(n)],
            [f'item {j}' for j in range(n)], (None, None))


def style_mixing_with_files(Gs, dst_seeds: Optional[Sequence[int]], src_seeds: Optional[Sequence[int]],
                            schemes='coarse', dst_dlatents_npz: Optional[str] = None,
                            src_dlatents_npz: Optional[str] = None,
                            truncation_psi: Optional[float] = None,
                            truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                            minibatch_size: int = 8, log: Optional[Log] = print) -> dict:
    """``style_mixing`` where the destinations (``dst_dlatents_npz``, figure rows) and/or the
    sources (``src_dlatents_npz``, columns) come from dlatent files such as ``projected.npz``.

    File dlatents are used as they are (no truncation) and rendered with the file's saved noise
    maps when it has them (stored noise); every mix of a file destination uses that
    destination's noise maps. Entries are named ``dst-item<i>`` / ``src-item<j>`` and stored as
    seed ``-1``. Returns what ``style_mixing`` returns.
    """
    _check_noise_mode(noise_mode)
    schemes = as_schemes(schemes)
    notes: list = []
    emit = _logger(log, notes)
    trunc = _resolve_truncation(Gs, truncation_psi, truncation_cutoff)
    randomize = noise_mode == 'random'
    dst_dl, dst_noises, dseeds, _, dlabels, trunc_dst = _side(
        Gs, dst_seeds, dst_dlatents_npz, '--dlatents', 'dst', trunc, minibatch_size)
    src_dl, src_noises, sseeds, snames, slabels, trunc_src = _side(
        Gs, src_seeds, src_dlatents_npz, '--src-dlatents', 'src', trunc, minibatch_size)
    dst_images = render_entries(Gs, dst_dl, dst_noises, randomize, minibatch_size)
    src_images = render_entries(Gs, src_dl, src_noises, randomize, minibatch_size)
    mixes = mix_and_render(Gs, dst_dl, src_dl, schemes, noise_mode, minibatch_size, emit,
                           dst_noises=dst_noises)
    result = _result(dseeds, sseeds, snames, slabels, dst_dl, src_dl, dst_images, src_images,
                     mixes, notes, dict(dst=trunc_dst, src=trunc_src))
    if dst_dlatents_npz is not None:
        result['dst_names'] = [f'dst-item{i}' for i in range(dst_dl.shape[0])]
        result['dst_labels'] = dlabels
    return result


def run_style_mixing(network_pkl: str, dst_seeds: Optional[Sequence[int]],
                     src_seeds: Optional[Sequence[int]],
                     schemes, outdir: str, out_npz: Optional[str] = None,
                     truncation_psi: Optional[float] = None,
                     truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                     impl: str = 'tf2', write_mixes: bool = True, minibatch_size: int = 8,
                     log: Optional[Log] = print, require_rows: bool = True,
                     dst_dlatents_npz: Optional[str] = None,
                     src_dlatents_npz: Optional[str] = None) -> Dict[str, List[str]]:
    """``style_mixing.py``: load, mix, write figures, mix PNGs and the npz.

    Everything is checked before anything is written: seeds, schemes, output paths, dlatent
    files, the pickle, and (with ``require_rows``) that every scheme replaces at least one row
    of the network. Destinations come from exactly one of ``dst_seeds`` and
    ``dst_dlatents_npz``, sources from one of ``src_seeds`` and ``src_dlatents_npz`` (see
    ``style_mixing_with_files``).

    Returns:
        ``{'figures': [...], 'mixes': [...], 'npz': [...]}`` written paths.
    """
    from editing import dlatents_io
    schemes = as_schemes(schemes)        # fail on a bad scheme before loading anything
    _check_noise_mode(noise_mode)
    for seeds, path, what, flags in ((dst_seeds, dst_dlatents_npz, 'destination', '--dst-seeds and --dlatents'),
                                     (src_seeds, src_dlatents_npz, 'source', '--src-seeds and --src-dlatents')):
        if (seeds is None) == (path is None):
            raise ValueError(f'give exactly one of {flags}')
        if path is None:
            _check_seeds(seeds, what)
    check_outputs(outdir, out_npz)
    for path, flag in ((dst_dlatents_npz, '--dlatents'), (src_dlatents_npz, '--src-dlatents')):
        if path is not None:
            dlatents_io.read_dlatents(path, f'{path} ({flag})')     # before loading the network
    Gs = load_gs(network_pkl, impl)
    if require_rows:
        _check_schemes_fit(Gs, schemes, network_pkl)
    if log is not None:
        log(f'{network_pkl}: {_num_rows(Gs)} style rows, impl {impl}, noise {noise_mode}')
    if dst_dlatents_npz is None and src_dlatents_npz is None:
        result = style_mixing(Gs, dst_seeds, src_seeds, schemes, truncation_psi, truncation_cutoff,
                              noise_mode, minibatch_size, log)
    else:
        result = style_mixing_with_files(Gs, dst_seeds, src_seeds, schemes, dst_dlatents_npz,
                                         src_dlatents_npz, truncation_psi, truncation_cutoff,
                                         noise_mode, minibatch_size, log)
    _report(log, result, network_pkl, network_pkl)
    return _write_outputs(result, outdir, out_npz, 'style-mixing', write_mixes, log)


def run_cross_mixing(dst_network_pkl: str, dst_seeds: Sequence[int], schemes, outdir: str,
                     src_network_pkl: Optional[str] = None,
                     src_seeds: Optional[Sequence[int]] = None,
                     src_dlatents_npz: Optional[str] = None, out_npz: Optional[str] = None,
                     truncation_psi: Optional[float] = None,
                     truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                     impl: str = 'tf2', write_mixes: bool = True, minibatch_size: int = 8,
                     log: Optional[Log] = print) -> Dict[str, List[str]]:
    """``cross_mixing.py``: sources from network A (or an npz of dlatents), rendered by B.

    Exactly one of ``src_network_pkl`` (with ``src_seeds``) and ``src_dlatents_npz`` is given.
    With an npz, ``src_seeds`` (optional) picks entries by the file's ``seeds``.

    Returns:
        ``{'figures': [...], 'mixes': [...], 'npz': [...]}`` written paths.
    """
    schemes = as_schemes(schemes)
    _check_noise_mode(noise_mode)
    _check_seeds(dst_seeds, 'destination')
    if (src_network_pkl is None) == (src_dlatents_npz is None):
        raise ValueError('give exactly one of a source network and a source dlatents file')
    if src_network_pkl is not None and not src_seeds:
        raise ValueError('source seeds are needed with a source network')
    check_outputs(outdir, out_npz)
    if src_dlatents_npz is not None:
        # Read and check the file before loading any network.
        src_dl, file_seeds = load_src_dlatents(src_dlatents_npz, src_seeds)
    Gs_dst = load_gs(dst_network_pkl, impl)
    _check_schemes_fit(Gs_dst, schemes, dst_network_pkl)
    if log is not None:
        log(f'destination {dst_network_pkl}: {_num_rows(Gs_dst)} style rows, impl {impl}, '
            f'noise {noise_mode}')
    if src_network_pkl is not None:
        same = os.path.realpath(src_network_pkl) == os.path.realpath(dst_network_pkl)
        Gs_src = Gs_dst if same else load_gs(src_network_pkl, impl)
        if log is not None:
            log(f'source {src_network_pkl}: {_num_rows(Gs_src)} style rows')
        result = cross_mixing(Gs_dst, Gs_src, dst_seeds, src_seeds, schemes, truncation_psi,
                              truncation_cutoff, noise_mode, minibatch_size, log,
                              dst_label=dst_network_pkl, src_label=src_network_pkl)
        src_label = src_network_pkl
    else:
        result = cross_mixing_from_dlatents(
            Gs_dst, src_dl, dst_seeds, schemes, file_seeds, truncation_psi, truncation_cutoff,
            noise_mode, minibatch_size, log, src_label=src_dlatents_npz)
        src_label = src_dlatents_npz
    _report(log, result, dst_network_pkl, src_label)
    return _write_outputs(result, outdir, out_npz, 'cross-mixing', write_mixes, log)


def write_style_mixing_figure(network_pkl: str, outdir: str,
                              dst_seeds: Sequence[int] = (888, 829, 1898, 1733),
                              src_seeds: Sequence[int] = (639, 701, 687, 615, 2268),
                              schemes=('coarse', 'middle', 'fine'), impl: str = 'tf2',
                              truncation_psi: Optional[float] = None,
                              log: Optional[Log] = print) -> List[str]:
    """One mixing figure per scheme for a snapshot (e.g. at the end of a training run).

    Defaults: the paper's seeds (Figure 3), coarse / middle / fine, the network's default
    truncation, constant noise. Only the figures are written (no per-mix PNGs).

    Returns:
        The figure PNG paths, ``<outdir>/style-mixing-<scheme>.png``.
    """
    return run_style_mixing(network_pkl, dst_seeds, src_seeds, schemes, outdir,
                            truncation_psi=truncation_psi, impl=impl, write_mixes=False,
                            log=log, require_rows=False)['figures']
