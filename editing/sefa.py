"""SeFa: closed-form factorization of latent semantics (Shen & Zhou, CVPR 2021), spec §1.

Every style layer maps a dlatent row w to a style ``A_l w + b_l``. Moving w by ``d * n`` moves
the styles by ``d * A_l n``; the directions n that move them most are the eigenvectors of
``A^T A`` for the stacked ``A`` of the selected layers.

What this module does (spec §1.8, a deterministic version of genforce's and rosinality's code):
    * A is built in float64 from the **runtime** weights ``[out, D]`` (stored weight times the
      equalized-lr scale ``gain / sqrt(fan_in) * lrmul``, transposed from TF's ``[D, out]``).
    * ``method='gf'`` (genforce/sefa, default): one style affine per dlatent row (v1: that row's
      StyleMod; v2: that row's conv, and the final ToRGB for the last row); every row of A (one
      style channel) is normalised to unit length.
      ``method='ros'`` (rosinality): v2 uses every conv plus the 4x4 ToRGB (no other ToRGB), v1
      every StyleMod; no normalisation.
    * The directions are the right singular vectors of A (eigenvectors of ``A^T A``), sorted by
      eigenvalue (squared singular value), largest first.
    * Sign convention (ours; neither upstream has one): each direction is flipped so that its
      component with the largest magnitude is positive.

Editing follows genforce by default: truncate, then add ``d * n`` to the edited rows only;
``edit_before_truncation=True`` adds first and truncates after, as rosinality does (the step then
shrinks by psi on truncated rows).
"""

import hashlib
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from dnnlib.util import read_npz
from editing import figures, mixing, mixing_schemes

METHODS = ('gf', 'ros')
# genforce's interface menu: fixed rows tuned for 14-row (256 px) networks (spec §1.5).
GF_NAMED_ROWS = {'gf-low': (0, 1), 'gf-mid': (2, 5), 'gf-high': (6, 13)}
GF_NAMED_ROWS_FOR = 14
# Official build functions: v1 G_synthesis(use_wscale=True); v2 mod_weight is always a
# dense_layer(gain=1, use_wscale=True, lrmul=1).
OFFICIAL_V1_USE_WSCALE = True

_V1_STYLE = re.compile(r'^G_synthesis/(\d+)x\1/(Const|Dense|Conv|Conv0_up|Conv1)/StyleMod/weight$')
_V2_STYLE = re.compile(r'^G_synthesis/(\d+)x\1/(Conv|Conv0_up|Conv1|ToRGB)/mod_weight$')
# G_synthesis_stylegan_revised (StyleGAN2 configs b-d) names its ToRGBs by lod, v1 style.
_V2_TORGB_LOD = re.compile(r'^G_synthesis/ToRGB_lod(\d+)/mod_weight$')
Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# Which weights feed which dlatent row.

def _v1_row(res: int, layer: str) -> int:
    r = int(np.log2(res))
    return {'Const': 0, 'Dense': 0, 'Conv': 1}[layer] if r == 2 else \
        {'Conv0_up': 2 * r - 4, 'Conv1': 2 * r - 3}[layer]


def _v2_row(res: int, layer: str) -> int:
    r = int(np.log2(res))
    return {'Conv': 0, 'Conv0_up': 2 * r - 5, 'Conv1': 2 * r - 4, 'ToRGB': 2 * r - 3}[layer]


def style_affines(Gs, method: str = 'gf') -> List[Tuple[int, str]]:
    """The style affine weights ``method`` factorizes, as ``(dlatent row, official name)``.

    Names are ``Gs.vars`` keys (``G_synthesis/8x8/Conv0_up/StyleMod/weight`` for v1,
    ``G_synthesis/8x8/Conv0_up/mod_weight`` for v2), in the network's variable order.
    """
    if method not in METHODS:
        raise ValueError(f'unknown SeFa method {method!r}; choose one of {METHODS}')
    v2 = mixing.is_stylegan2(Gs)
    pattern, row_of = (_V2_STYLE, _v2_row) if v2 else (_V1_STYLE, _v1_row)
    last_row = int(Gs.components.synthesis.input_shape[1]) - 1
    resolution_log2 = (last_row + 3) // 2            # L = 2 * log2(resolution) - 2
    out = []
    for name in Gs.vars:
        m = pattern.match(name)
        m_lod = _V2_TORGB_LOD.match(name) if v2 else None
        if m is None and m_lod is None:
            continue
        if m_lod is not None:
            res, layer = 2 ** (resolution_log2 - int(m_lod.group(1))), 'ToRGB'
        else:
            res, layer = int(m.group(1)), m.group(2)
        row = row_of(res, layer)
        if v2 and layer == 'ToRGB':
            # gf: only the final ToRGB (its row feeds nothing else); ros: only the 4x4 ToRGB.
            keep = row == last_row if method == 'gf' else res == 4
            if not keep:
                continue
        out.append((row, name))
    if not out:
        raise ValueError('the network has no style affines (StyleMod/weight or mod_weight); '
                         'SeFa needs a StyleGAN or StyleGAN2 synthesis network')
    return out


def runtime_scale(Gs, stored: np.ndarray) -> float:
    """Equalized-lr factor ``gain / sqrt(fan_in) * lrmul`` of a style affine (gain 1, lrmul 1)."""
    fan_in = stored.shape[0]
    use_wscale = True if mixing.is_stylegan2(Gs) else \
        bool(dict(Gs.static_kwargs).get('use_wscale', OFFICIAL_V1_USE_WSCALE))
    return 1.0 / np.sqrt(fan_in) if use_wscale else 1.0


def affine_matrix(Gs, rows: Sequence[int], method: str = 'gf') -> Tuple[np.ndarray, List[str]]:
    """Stacks the runtime ``[out, D]`` style matrices of the selected rows into A (float64).

    Returns:
        ``(A [sum out, D] float64, names of the weights used)``; not normalised.

    Raises:
        ValueError: the selection uses no weight (e.g. ``ros`` on a v2 network's last row only).
    """
    rows = set(int(r) for r in rows)
    blocks, names = [], []
    for row, name in style_affines(Gs, method):
        if row not in rows:
            continue
        stored = np.asarray(Gs.get_var(name), dtype=np.float64)          # [D, out]
        blocks.append((stored * runtime_scale(Gs, stored)).T)             # [out, D]
        names.append(name)
    if not blocks:
        raise ValueError(f'--layers {mixing_schemes.format_rows(rows)}: method {method!r} uses no style '
                         'weight on these rows')
    return np.concatenate(blocks, axis=0), names


def normalize_rows(A: np.ndarray) -> np.ndarray:
    """Each style channel (row of A) to unit length, so every channel counts equally (genforce)."""
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(norms > 0, norms, 1.0)


def sign_convention(directions: np.ndarray) -> np.ndarray:
    """Flips each row so that its largest-magnitude component is positive (ties: first one)."""
    idx = np.argmax(np.abs(directions), axis=1)
    signs = np.sign(directions[np.arange(directions.shape[0]), idx])
    return directions * np.where(signs == 0, 1.0, signs)[:, None]


def factorize_matrix(A: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Directions ``[D, D]`` (rows, unit norm, sign convention) and eigenvalues ``[D]`` of
    ``A^T A``, largest first. The SVD of A avoids squaring A's condition number."""
    _, s, vt = np.linalg.svd(A, full_matrices=True)            # s descending, vt [D, D]
    eig = np.zeros(A.shape[1], dtype=np.float64)
    eig[:s.size] = s ** 2                                       # rank < D: the rest are zeros
    return sign_convention(vt), eig


# ------------------------------------------------------------------------------------------------
# Layer selections.

def parse_layers(text: str, num_rows: int, log: Optional[Log] = print) -> np.ndarray:
    """``--layers`` -> sorted dlatent rows.

    Accepts ``all``, rows and ranges (``0-3``, ``0,2,5``, ``8-``), the mixing scripts' scheme names
    (``coarse``, ``middle``, ``fine``, ``middle-wide``, ``even``, ``odd``; several joined by ``,``
    are united), and genforce's ``gf-low`` / ``gf-mid`` / ``gf-high`` (rows 0-1 / 2-5 / 6-13).
    Explicit rows past the last row are an error; named schemes are cut to the network.
    """
    text = str(text).strip()
    if text.lower() in GF_NAMED_ROWS:
        a, b = GF_NAMED_ROWS[text.lower()]
        if num_rows != GF_NAMED_ROWS_FOR and log is not None:
            log(f'warning: --layers {text} is genforce\'s row set for {GF_NAMED_ROWS_FOR}-row '
                f'networks; this network has {num_rows} rows')
        rows = np.arange(a, min(b, num_rows - 1) + 1)
    else:
        try:
            schemes = mixing_schemes.parse_scheme(text)
        except ValueError as e:
            raise ValueError(f'--layers: {e}') from e
        found = set()
        for scheme in schemes:
            notes: List[str] = []
            found.update(mixing_schemes.scheme_rows(scheme, num_rows, log=notes.append).tolist())
            if scheme.name.startswith('rows') and any('past the last row' in n for n in notes):
                raise ValueError(f'--layers {text}: rows out of range; this network has rows '
                                 f'0-{num_rows - 1}')
        rows = np.array(sorted(found), dtype=np.int64)
    if rows.size == 0:
        raise ValueError(f'--layers {text}: selects no row of this {num_rows}-row network')
    return rows.astype(np.int64)


# ------------------------------------------------------------------------------------------------
# The factorization of a network.

def factorize(Gs, layers='all', method: str = 'gf', log: Optional[Log] = None) -> Dict:
    """SeFa on ``Gs`` (either implementation).

    Args:
        Gs: network with the official API.
        layers: a ``--layers`` string (see ``parse_layers``) or a sequence of rows.
        method: ``'gf'`` (row-normalised, genforce's layers) or ``'ros'`` (rosinality's).
        log: where warnings go.

    Returns:
        Dict with ``directions`` ``[K, D]`` float32 (unit rows, largest eigenvalue first),
        ``eigenvalues`` ``[K]`` float64, ``layers`` (rows), ``method``, ``normalize``,
        ``weights`` (names used) and ``fingerprint`` (sha256 of the runtime A before normalising).
    """
    num_rows = int(Gs.components.synthesis.input_shape[1])
    rows = parse_layers(layers, num_rows, log) if isinstance(layers, str) else \
        np.asarray(sorted(set(int(r) for r in layers)), dtype=np.int64)
    A, names = affine_matrix(Gs, rows, method)
    normalize = method == 'gf'
    directions, eig = factorize_matrix(normalize_rows(A) if normalize else A)
    fingerprint = hashlib.sha256(np.ascontiguousarray(A).tobytes()).hexdigest()
    return dict(directions=directions.astype(np.float32), eigenvalues=eig, layers=rows,
                method=method, normalize=normalize, weights=names, fingerprint=fingerprint)


def save_factorization(result: Dict, path: str, source_pkl: str) -> str:
    """Writes the npz contract: ``directions``, ``eigenvalues``, ``layers``, ``method``,
    ``normalize``, ``source_pkl``, ``weights`` and ``weights_sha256``."""
    from editing.dlatents_io import save_npz
    return save_npz(path, directions=result['directions'], eigenvalues=result['eigenvalues'],
                    layers=result['layers'], method=np.array(result['method']),
                    normalize=np.array(bool(result['normalize'])),
                    source_pkl=np.array(str(source_pkl)), weights=np.array(result['weights']),
                    weights_sha256=np.array(result['fingerprint']))


def load_directions(path: str, dlatent_size: Optional[int] = None, flag: str = '--directions'
                    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Reads ``directions`` ``[K, D]`` (and ``eigenvalues`` if present) from a SeFa npz."""
    data = read_npz(path, f'{path} ({flag})', 'directions')
    where = f'{path} ({flag})'
    d = data.get('directions')
    if d is None or d.ndim != 2 or d.shape[0] == 0 or not np.issubdtype(d.dtype, np.floating):
        raise ValueError(f'{where}: needs "directions" float [K, D] (as sefa.py --out-npz writes)')
    if dlatent_size is not None and d.shape[1] != dlatent_size:
        raise ValueError(f'{where}: direction size mismatch: D={d.shape[1]}, the network has '
                         f'D={dlatent_size}')
    return d.astype(np.float32), data.get('eigenvalues')


# ------------------------------------------------------------------------------------------------
# Editing.

def check_indices(indices: Sequence[int], num_directions: int, flag: str = '--indices') -> None:
    """Direction indices must lie in ``0 .. K-1``."""
    bad = [i for i in indices if not 0 <= int(i) < num_directions]
    if bad or not len(indices):
        raise ValueError(f'{flag}: direction index {bad[0] if bad else "(none)"} out of range; '
                         f'there are {num_directions} directions (0-{num_directions - 1})')


def edit_dlatents(dlatents: np.ndarray, direction: np.ndarray, distances: Sequence[float],
                  rows: Sequence[int]) -> np.ndarray:
    """``w_edit[rows] = w[rows] + d * n`` for every distance d.

    Args:
        dlatents: ``[N, L, D]``.
        direction: ``[D]``.
        distances: ``[M]``.
        rows: the rows to move; the others are returned unchanged (bit for bit).

    Returns:
        ``[N, M, L, D]`` float32.
    """
    dl = np.asarray(dlatents, dtype=np.float32)                          # [N, L, D]
    step = np.asarray(distances, np.float32)[:, None] * np.asarray(direction, np.float32)[None]
    out = np.repeat(dl[:, None], len(distances), axis=1)                 # [N, M, L, D]
    rows = np.asarray(rows, dtype=np.int64)
    out[:, :, rows, :] += step[None, :, None, :]
    return out


def sefa_edits(Gs, dlatents: np.ndarray, directions: np.ndarray, indices: Sequence[int],
               distances: Sequence[float], rows: Sequence[int], truncation_psi: Optional[float],
               truncation_cutoff: Optional[int], edit_before_truncation: bool = False
               ) -> np.ndarray:
    """Edited dlatents for every (sample, direction index, distance).

    ``dlatents`` are untruncated mapping outputs (or final dlatents from a file, with psi None).
    Default order (genforce): truncate, then edit; with ``edit_before_truncation`` (rosinality):
    edit, then truncate.

    Returns:
        ``[N, K, M, L, D]`` float32.
    """
    avg = np.asarray(Gs.get_var('dlatent_avg'), dtype=np.float32)
    trunc = lambda x: mixing.truncate(x, avg, truncation_psi, truncation_cutoff)  # noqa: E731
    base = dlatents if edit_before_truncation else trunc(dlatents)
    out = []
    for k in indices:
        edited = edit_dlatents(base, directions[int(k)], distances, rows)  # [N, M, L, D]
        if edit_before_truncation:
            shape = edited.shape
            edited = trunc(edited.reshape((-1,) + shape[2:])).reshape(shape)
        out.append(edited)
    return np.stack(out, axis=1)


# ------------------------------------------------------------------------------------------------
# The edit grid and a whole sefa.py run.

def parse_numbers(text: str, flag: str, kind=float) -> List:
    """``'-10,-5,0,5,10'`` -> numbers; a bad or empty list is an error naming the flag."""
    try:
        values = [kind(t) for t in str(text).split(',') if t.strip()]
    except ValueError:
        raise ValueError(f'{flag}: {text!r} is not a comma-separated list of '
                         f'{"integers" if kind is int else "numbers"}') from None
    if not values:
        raise ValueError(f'{flag}: empty list')
    if kind is float and not all(np.isfinite(values)):
        raise ValueError(f'{flag}: {text!r} holds a value that is not finite')
    return values


def default_truncation(Gs) -> Tuple[float, Optional[int]]:
    """The official Gs defaults: psi 0.7 on rows < 8 for StyleGAN (G_style), 0.5 on all rows for
    StyleGAN2 (G_main), as genforce's demo samples them."""
    return (0.5, None) if mixing.is_stylegan2(Gs) else (0.7, 8)


GRID_LAYOUTS = ('gf', 'ros')


def edit_grid(images: np.ndarray, sample_labels: Sequence[str], indices: Sequence[int],
              eigenvalues: Optional[np.ndarray], distances: Sequence[float], corner: str = '',
              layout: str = 'gf'):
    """The edit figure; the unedited images (d = 0) are framed.

    ``gf`` (genforce's pages): one row per (sample, direction), one column per distance.
    ``ros`` (rosinality's ``apply_factor.py``): one row per (direction, distance), one column per
    sample; ``--degrees 5,0,-5`` gives its +d / original / -d rows.

    Args:
        images: ``[N, K, M, C, H, W]`` float NCHW.
    """
    if layout not in GRID_LAYOUTS:
        raise ValueError(f'--layout: {layout!r}; choose one of {GRID_LAYOUTS}')
    n, k, m = images.shape[:3]
    cells = figures.images_to_uint8(images.reshape((-1,) + images.shape[3:]))
    if cells.shape[-1] == 1:
        cells = np.repeat(cells, 3, axis=-1)
    cells = cells.reshape((n, k, m) + cells.shape[1:])

    def direction(idx):
        eig = '' if eigenvalues is None else f'\neig {float(eigenvalues[int(idx)]):.3g}'
        return f'dir {int(idx)}{eig}'
    if layout == 'ros':
        rows = cells.transpose(1, 2, 0, 3, 4, 5).reshape((k * m, n) + cells.shape[3:])
        labels = [f'{direction(idx)}\nd={d:g}' for idx in indices for d in distances]
        marked = [i for i, (_, d) in enumerate((idx, d) for idx in indices for d in distances)
                  if d == 0]
        return figures.labelled_grid(rows, labels, list(sample_labels), corner=corner, marked_rows=marked)
    labels = [f'{label}\n{direction(idx)}' for label in sample_labels for idx in indices]
    marked = [j for j, d in enumerate(distances) if d == 0]
    return figures.labelled_grid(cells.reshape((n * k, m) + cells.shape[3:]), labels,
                         [f'd={d:g}' for d in distances], marked, corner)


def run_sefa(network_pkl: str, layers: str = 'all', method: str = 'gf', impl: str = 'tf2',
             out_npz: Optional[str] = None, outdir: Optional[str] = None,
             seeds: Optional[Sequence[int]] = None, dlatents_npz: Optional[str] = None,
             indices: Sequence[int] = (0, 1, 2), distances: Sequence[float] = (-5, -2.5, 0, 2.5, 5),
             edit_layers: Optional[str] = None, truncation_psi: Optional[float] = None,
             truncation_cutoff: Optional[int] = None, edit_before_truncation: bool = False,
             minibatch_size: int = 8, log: Optional[Log] = print,
             layout: str = 'gf') -> Dict[str, str]:
    """``sefa.py``: factorize, optionally save the directions and draw an edit grid.

    Everything is checked (paths, the pickle, layers, indices, the dlatents file) before anything
    is written. With ``outdir``: ``sefa-grid.png`` and ``sefa-edits.npz`` (the edited dlatents
    ``[N*K*M, L, D]`` with ``sample``, ``index`` and ``distance`` per entry).

    Returns:
        Written paths by kind (``npz``, ``grid``, ``edits``).
    """
    from editing import dlatents_io
    from dnnlib.util import check_output_dir
    if out_npz is None and outdir is None:
        raise ValueError('nothing to write: give --out-npz and/or --outdir')
    if layout not in GRID_LAYOUTS:
        raise ValueError(f'--layout: {layout!r}; choose one of {GRID_LAYOUTS}')
    if out_npz:
        dlatents_io.check_npz_path(out_npz, '--out-npz')
    if outdir is not None:
        check_output_dir(outdir)
        if (seeds is None) == (dlatents_npz is None):
            raise ValueError('the edit grid (--outdir) needs exactly one of --seeds and --dlatents')
        if seeds is not None and not len(seeds):
            raise ValueError('--seeds: no seeds given')
    Gs = mixing.load_gs(network_pkl, impl)
    num_rows = int(Gs.components.synthesis.input_shape[1])
    dlatent_size = int(Gs.components.synthesis.input_shape[2])
    result = factorize(Gs, layers, method, log)
    if log is not None:
        log(f'{network_pkl}: {"StyleGAN2" if mixing.is_stylegan2(Gs) else "StyleGAN"}, '
            f'{num_rows} rows, D={dlatent_size}; method {method}, rows '
            f'{mixing_schemes.format_rows(result["layers"])}, {len(result["weights"])} style weights; '
            f'top eigenvalues {np.array2string(result["eigenvalues"][:5], precision=4)}')
    written: Dict[str, str] = {}
    if outdir is None:
        written['npz'] = save_factorization(result, out_npz, network_pkl)
        return written
    # Check the edit inputs before writing anything.
    check_indices(indices, result['directions'].shape[0])
    rows = result['layers'] if edit_layers is None else parse_layers(edit_layers, num_rows, log)
    if dlatents_npz is not None:
        dl, file_seeds = dlatents_io.load_dlatents(dlatents_npz, num_rows, dlatent_size)
        labels = [f'seed {s}' for s in file_seeds] if file_seeds is not None else \
            [f'item {i}' for i in range(dl.shape[0])]
        psi, cutoff = truncation_psi, truncation_cutoff     # file dlatents are final: no default
    else:
        dl = mixing.map_seeds(Gs, seeds, minibatch_size)
        labels = [f'seed {s}' for s in seeds]
        psi, cutoff = (truncation_psi, truncation_cutoff) if truncation_psi is not None \
            else default_truncation(Gs)
    edits = sefa_edits(Gs, dl, result['directions'], indices, distances, rows, psi, cutoff,
                       edit_before_truncation)                                # [N, K, M, L, D]
    images = mixing.synthesize(Gs, edits.reshape((-1,) + edits.shape[3:]), False, minibatch_size)
    images = images.reshape(edits.shape[:3] + images.shape[1:])
    order = 'edit, then truncate' if edit_before_truncation else 'truncate, then edit'
    trunc = 'none' if psi is None or psi == 1 else \
        f'psi {psi:g}' + ('' if cutoff is None else f' rows<{cutoff}')
    corner = f'{method} rows {mixing_schemes.format_rows(result["layers"])}\nedit rows ' \
             f'{mixing_schemes.format_rows(rows)}\ntrunc {trunc}\n{order}'
    fig = edit_grid(images, labels, indices, result['eigenvalues'], distances, corner, layout)
    if out_npz:
        written['npz'] = save_factorization(result, out_npz, network_pkl)
    written['grid'] = figures.save_png(fig, f'{outdir}/sefa-grid.png')
    n, k, m = edits.shape[:3]
    grid_idx = np.indices((n, k, m)).reshape(3, -1)
    written['edits'] = dlatents_io.save_npz(
        f'{outdir}/sefa-edits.npz', dlatents=edits.reshape((-1,) + edits.shape[3:]),
        sample=grid_idx[0], index=np.asarray(indices)[grid_idx[1]],
        distance=np.asarray(distances, np.float32)[grid_idx[2]], rows=np.asarray(rows))
    if log is not None:
        log(f'truncation {trunc} ({order}); wrote ' + ', '.join(written.values()))
    return written
