"""Style mixing by scheme, and cross-model mixing, on any network with the official API.

Everything here works on numpy arrays through the official inference API (design.md), so it runs
on a ``Gs`` loaded by either implementation (``tf2`` or ``legacy``, see ``editing/impl.py``):
``Gs.components.mapping.run(latents, None)`` -> dlatents ``[N, L, D]``,
``Gs.components.synthesis.run(dlatents, randomize_noise=...)`` -> images ``[N, C, H, W]``,
``Gs.get_var('dlatent_avg')`` and ``Gs.components.synthesis.input_shape`` (``[None, L, D]``).
TensorFlow is imported only when a network is loaded from a file.

Vocabulary (official, paper Figure 3): a *mix* is the destination's dlatents with the scheme's
rows taken from the source. In a figure, sources run along the top, destinations down the left,
mixes fill the grid.

Row indices keep their resolution meaning: rows ``2r-4`` and ``2r-3`` belong to resolution
``2**r`` in both StyleGAN and StyleGAN2, so a scheme means the same resolutions on networks with
10, 14, 16 or 18 rows. Rows past a network's last row are cut (with a note).

Scheme grammar (``parse_scheme``):
    * ``;`` always separates schemes.
    * Inside a ``;`` part, ``,`` separates tokens. A name (``coarse``, ``middle``, ``fine``,
      ``middle-wide``, ``even``, ``odd``, ``all``, ``none``) is a scheme of its own.
    * Row tokens ``N``, ``A-B`` (inclusive) and ``A-`` (A to the last row) that follow each other
      form one custom scheme; a name, a ``;`` or a ``rows:`` prefix starts the next one.
    * So ``coarse,middle,fine`` is three schemes, ``0-3,8,10-11`` is one, and
      ``coarse,rows:0-3,8;odd`` is three: coarse, rows 0-3 + 8, odd.
    * A custom scheme is named ``rows`` + its tokens joined by ``_``, e.g. ``rows0-3_8``; that name
      is used in npz keys and file names.

Truncation: ``w = avg + (w - avg) * c`` with ``c = psi`` for rows ``< cutoff`` (all rows when the
cutoff is None) and 1 otherwise, ``avg = Gs.get_var('dlatent_avg')``; the same ``lerp`` the
official ``G_style``/``G_main`` compute. It is applied to destination and source dlatents before
mixing, as StyleGAN2's style-mixing example does. ``truncation_psi=None`` means the network's
default for mixing: none for StyleGAN (the paper figure used none), psi 0.5 on all rows for
StyleGAN2 (``G_main``, as its ``run_generator.py style-mixing-example``). ``psi == 1`` disables it.
"""

import dataclasses
import os
import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from dnnlib.util import atomic_write, read_npz

__all__ = [
    'SCHEME_NAMES', 'Scheme', 'parse_scheme', 'parse_seeds', 'scheme_rows', 'format_rows',
    'truncate', 'reconcile_rows', 'mix_dlatents', 'is_stylegan2', 'default_truncation',
    'latents_from_seeds', 'map_seeds', 'synthesize', 'mix_and_render', 'style_mixing',
    'cross_mixing', 'cross_mixing_from_dlatents', 'load_src_dlatents', 'images_to_uint8',
    'draw_mixing_figure', 'save_mixing_npz', 'write_mixing_pngs', 'load_gs', 'run_style_mixing',
    'run_cross_mixing', 'write_style_mixing_figure', 'add_mixing_arguments', 'check_mixing_args',
]

# Named schemes: (start, stop or None = to the last row, step). Paper Figure 3: coarse = 4^2-8^2,
# middle = 16^2-32^2, fine = 64^2 and up.
_NAMED_RANGES = {
    'coarse': ((0, 4, 1),),
    'middle': ((4, 8, 1),),
    'fine': ((8, None, 1),),
    'middle-wide': ((4, 13, 1),),
    'even': ((0, None, 2),),
    'odd': ((1, None, 2),),
    'all': ((0, None, 1),),
    'none': (),
}
SCHEME_NAMES = tuple(_NAMED_RANGES)
_ROW_TOKEN = re.compile(r'^(\d+)(?:-(\d*))?$')
NOISE_MODES = ('const', 'random')

Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# Schemes and seeds.

@dataclasses.dataclass(frozen=True)
class Scheme:
    """A set of dlatent rows to take from the source.

    Attributes:
        name: key-safe name: a scheme name from ``SCHEME_NAMES`` or ``rows<tokens>``.
        ranges: ``(start, stop, step)`` triples, ``stop`` exclusive or None for "to the last row".
    """
    name: str
    ranges: Tuple[Tuple[int, Optional[int], int], ...]


def _row_range(token: str, text: str) -> Tuple[int, Optional[int], int]:
    m = _ROW_TOKEN.match(token)
    if m is None:
        raise ValueError(f'scheme {text!r}: bad row token {token!r}; rows look like 8, 0-3 or 8-')
    start = int(m.group(1))
    if m.group(2) is None:                  # "N"
        return (start, start + 1, 1)
    if m.group(2) == '':                    # "A-": to the last row
        return (start, None, 1)
    stop = int(m.group(2))
    if stop < start:
        raise ValueError(f'scheme {text!r}: row range {token!r} runs backwards')
    return (start, stop + 1, 1)


def parse_scheme(text: str) -> List[Scheme]:
    """Parses a ``--scheme`` value into a list of schemes (grammar in the module docstring).

    Args:
        text: e.g. ``'coarse'``, ``'coarse,middle,fine'``, ``'0-3,8,10-11'``,
            ``'rows:0-3;rows:8-'``.

    Returns:
        The schemes in the order given.

    Raises:
        ValueError: unknown name, bad row token, empty scheme or a scheme given twice.
    """
    schemes: List[Tuple[str, list]] = []   # (name or None for custom, row tokens)
    for part in text.split(';'):
        part = part.strip()
        if not part:
            raise ValueError(f'scheme {text!r}: empty scheme between ";"')
        open_custom = False                 # whether row tokens extend the last custom scheme
        for token in (t.strip() for t in part.split(',')):
            if token.lower() in _NAMED_RANGES:
                schemes.append((token.lower(), []))
                open_custom = False
                continue
            if token.lower().startswith('rows:'):
                token = token[5:].strip()
                open_custom = False
            if not token:
                raise ValueError(f'scheme {text!r}: empty entry (stray "," or empty "rows:")')
            if _ROW_TOKEN.match(token) is None:
                raise ValueError(
                    f'scheme {text!r}: unknown scheme {token!r}; names are '
                    f'{", ".join(SCHEME_NAMES)}; custom rows look like 0-3,8 or rows:0-3,8 '
                    '(";" separates schemes)')
            if not open_custom:
                schemes.append((None, []))
                open_custom = True
            schemes[-1][1].append(token)
    out = []
    for name, tokens in schemes:
        if name is not None:
            out.append(Scheme(name, _NAMED_RANGES[name]))
        else:
            ranges = tuple(_row_range(t, text) for t in tokens)
            out.append(Scheme('rows' + '_'.join(tokens), ranges))
    names = [s.name for s in out]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f'scheme {text!r}: scheme {name!r} given twice')
    return out


def _as_schemes(schemes: Union[str, Scheme, Iterable[Union[str, Scheme]]]) -> List[Scheme]:
    """Accepts a scheme string, a Scheme, or a sequence of either; returns a flat list."""
    if isinstance(schemes, (str, Scheme)):
        schemes = [schemes]
    out: List[Scheme] = []
    for s in schemes:
        out.extend([s] if isinstance(s, Scheme) else parse_scheme(s))
    if not out:
        raise ValueError('no mixing scheme given')
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f'a scheme is given twice in {names}')
    return out


def format_rows(rows: Sequence[int]) -> str:
    """Formats row indices compactly: ``[0, 1, 2, 3, 8]`` -> ``'0-3,8'`` (``'-'`` if empty)."""
    rows = sorted(int(r) for r in rows)
    parts, i = [], 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
            j += 1
        parts.append(str(rows[i]) if i == j else f'{rows[i]}-{rows[j]}')
        i = j + 1
    return ','.join(parts) if parts else '-'


def scheme_rows(scheme: Union[str, Scheme], num_rows: int,
                log: Optional[Log] = print) -> np.ndarray:
    """The dlatent rows a scheme replaces on a network with ``num_rows`` style rows.

    Rows past the last one are cut, and a note says so through ``log``.

    Args:
        scheme: a Scheme or a string holding exactly one scheme.
        num_rows: the network's number of style rows ``L`` (10 at 64 px, 18 at 1024 px).
        log: where notes go (None: silent).

    Returns:
        Sorted unique row indices, int64 array (possibly empty).
    """
    if not isinstance(scheme, Scheme):
        parsed = parse_scheme(scheme)
        if len(parsed) != 1:
            raise ValueError(f'scheme {scheme!r} holds {len(parsed)} schemes; give one')
        scheme = parsed[0]
    rows, cut = set(), set()
    for start, stop, step in scheme.ranges:
        wanted = range(start, num_rows if stop is None else stop, step)
        rows.update(r for r in wanted if r < num_rows)
        cut.update(r for r in wanted if r >= num_rows)
        if stop is None and start >= num_rows:
            cut.add(start)
    if cut and log is not None:
        log(f'note: scheme {scheme.name!r}: rows {format_rows(cut)} are past the last row '
            f'({num_rows - 1}) of this {num_rows}-row network and were cut')
    if not rows and scheme.name != 'none' and log is not None:
        log(f'note: scheme {scheme.name!r} replaces no rows on a {num_rows}-row network')
    return np.array(sorted(rows), dtype=np.int64)


def parse_seeds(text: str) -> List[int]:
    """Parses ``'1,2,5-7'`` into ``[1, 2, 5, 6, 7]``; seeds are 0 .. 2**32-1 (RandomState)."""
    seeds = []
    for token in (t.strip() for t in str(text).split(',')):
        m = re.match(r'^(\d+)(?:-(\d+))?$', token)
        if m is None:
            raise ValueError(f'bad seed list {text!r}: {token!r} is not a seed or a range A-B')
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise ValueError(f'bad seed list {text!r}: range {token!r} runs backwards')
        if b >= 2**32:
            raise ValueError(f'bad seed list {text!r}: seeds must be below 2**32')
        seeds.extend(range(a, b + 1))
    return seeds


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


def reconcile_rows(dlatents: np.ndarray, num_rows: int) -> Tuple[np.ndarray, Optional[str]]:
    """Brings dlatents to ``num_rows`` rows by resolution: extend with the last row, or cut.

    Args:
        dlatents: ``[N, L, D]`` (W+) or ``[N, D]`` (W, broadcast to every row).
        num_rows: the target network's row count.

    Returns:
        ``([N, num_rows, D] float32, note or None)``.
    """
    dlatents = np.asarray(dlatents, dtype=np.float32)
    if dlatents.ndim == 2:
        return np.repeat(dlatents[:, None, :], num_rows, axis=1), None
    assert dlatents.ndim == 3, f'dlatents must be [N, L, D] or [N, D], got {dlatents.shape}'
    have = dlatents.shape[1]
    if have == num_rows:
        return dlatents, None
    if have > num_rows:
        return dlatents[:, :num_rows], (
            f'note: source has {have} rows, destination {num_rows}: rows {num_rows}-{have - 1} '
            'of the source were cut')
    extra = np.repeat(dlatents[:, -1:], num_rows - have, axis=1)
    return np.concatenate([dlatents, extra], axis=1), (
        f'note: source has {have} rows, destination {num_rows}: source row {have - 1} was '
        f'repeated for rows {have}-{num_rows - 1}')


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


# ------------------------------------------------------------------------------------------------
# The network side (official API, numpy in and out).

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


def mix_and_render(Gs, dst_dlatents: np.ndarray, src_dlatents: np.ndarray, schemes,
                   noise_mode: str = 'const', minibatch_size: int = 8,
                   log: Optional[Log] = print) -> Dict[str, dict]:
    """Mixes given dlatents by each scheme and renders the mixes with ``Gs``'s synthesis.

    Args:
        Gs: the network that renders (its row count is the one the schemes are cut to).
        dst_dlatents: ``[Nd, L, D]``.
        src_dlatents: ``[Ns, L, D]``, already reconciled to ``L`` rows.
        schemes: scheme string(s) or Scheme(s).
        noise_mode: ``'const'`` (stored noise, ``randomize_noise=False``) or ``'random'``.
        minibatch_size: images per synthesis call.
        log: where notes go.

    Returns:
        Ordered dict scheme name -> ``{'scheme', 'rows', 'mixed_dlatents' [Nd, Ns, L, D],
        'images' [Nd, Ns, C, H, W]}``.
    """
    _check_noise_mode(noise_mode)
    out = {}
    for scheme in _as_schemes(schemes):
        rows = scheme_rows(scheme, _num_rows(Gs), log=log)
        mixed = mix_dlatents(dst_dlatents, src_dlatents, rows)       # [Nd, Ns, L, D]
        flat = mixed.reshape((-1,) + mixed.shape[2:])
        images = synthesize(Gs, flat, noise_mode == 'random', minibatch_size)
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
    schemes = _as_schemes(schemes)
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


def load_src_dlatents(path: str, seeds: Optional[Sequence[int]] = None
                      ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Reads source dlatents from an npz file (a projection, say).

    Accepted keys: ``dlatents`` ``[N, L, D]`` (W+) or ``[N, D]`` (W), required; ``seeds`` ``[N]``
    integers, optional, naming the entries. Other keys are ignored.

    Args:
        path: the ``.npz`` file.
        seeds: if given, pick these entries by their ``seeds`` (the file must have ``seeds``).

    Returns:
        ``(dlatents float32, seeds int64 array or None)``.
    """
    data = read_npz(path, path, 'source dlatents')
    if 'dlatents' not in data:
        raise ValueError(f'{path}: no "dlatents" array (found keys {sorted(data)}); expected '
                         '"dlatents" [N, L, D] or [N, D] and optionally "seeds" [N]')
    dlatents = data['dlatents']
    if dlatents.ndim not in (2, 3) or dlatents.shape[0] == 0 or not np.issubdtype(
            dlatents.dtype, np.floating):
        raise ValueError(f'{path}: "dlatents" must be a float array [N, L, D] or [N, D] with N > 0,'
                         f' got {dlatents.dtype} {dlatents.shape}')
    if not np.all(np.isfinite(dlatents)):
        raise ValueError(f'{path}: "dlatents" holds NaN or infinite values')
    file_seeds = data.get('seeds')
    if file_seeds is not None:
        if (file_seeds.shape != (dlatents.shape[0],)
                or not np.issubdtype(file_seeds.dtype, np.integer)):
            raise ValueError(f'{path}: "seeds" must be integers of shape [{dlatents.shape[0]}], '
                             f'got {file_seeds.dtype} {file_seeds.shape}')
        file_seeds = file_seeds.astype(np.int64)
    if seeds is None:
        return dlatents.astype(np.float32), file_seeds
    if file_seeds is None:
        raise ValueError(f'{path}: source seeds were asked for but the file has no "seeds" array')
    index = {int(s): i for i, s in enumerate(file_seeds)}
    missing = [s for s in seeds if int(s) not in index]
    if missing:
        raise ValueError(f'{path}: seeds {missing} are not in the file '
                         f'(it has {file_seeds.tolist()})')
    pick = [index[int(s)] for s in seeds]
    return dlatents[pick].astype(np.float32), file_seeds[pick]


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
    schemes = _as_schemes(schemes)
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
# Output: npz, PNGs and figures.

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
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def images_to_uint8(images: np.ndarray) -> np.ndarray:
    """NCHW [-1, 1] -> NHWC uint8 as ``convert_images_to_uint8``: x*127.5+128, clamp, floor."""
    x = np.asarray(images, dtype=np.float32) * np.float32(127.5) + np.float32(128)
    return np.clip(x, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def _to_pil(image_hwc: np.ndarray):
    from PIL import Image
    channels = image_hwc.shape[2]
    if channels == 1:
        return Image.fromarray(image_hwc[:, :, 0], 'L')
    if channels == 3:
        return Image.fromarray(image_hwc, 'RGB')
    raise ValueError(f'cannot draw images with {channels} channels (1 or 3 supported)')


def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):   # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _draw_label(draw, xy, text: str, size: int) -> None:
    """White text on a dark box, so that a label reads on any image."""
    font = _font(size)
    x0, y0, x1, y1 = draw.multiline_textbbox(xy, text, font=font)
    draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=(0, 0, 0))
    draw.multiline_text(xy, text, font=font, fill=(255, 255, 255))


def draw_mixing_figure(result: dict, scheme: Optional[str] = None, cell_size: Optional[int] = None):
    """Draws one scheme's mixes in the paper's layout.

    Sources along the top, destinations down the left, mixes in the grid; labels give the seeds,
    the top-left cell the scheme name and its rows.

    Args:
        result: from ``style_mixing`` / ``cross_mixing`` / ``cross_mixing_from_dlatents``.
        scheme: scheme name (a key of ``result['schemes']``); None: the only one.
        cell_size: pixel size of a cell; None: the destination network's resolution.

    Returns:
        A ``PIL.Image``.
    """
    from PIL import Image, ImageDraw
    if scheme is None:
        if len(result['schemes']) != 1:
            raise ValueError(f'result holds schemes {list(result["schemes"])}; say which to draw')
        scheme = next(iter(result['schemes']))
    mix = result['schemes'][scheme]
    images = mix['images']                                           # [Nd, Ns, C, H, W]
    nd, ns, channels, h, w = images.shape
    if cell_size is not None:
        h = w = int(cell_size)
    canvas = Image.new('RGB', (w * (ns + 1), h * (nd + 1)), 'white')   # grey images drawn as RGB
    draw = ImageDraw.Draw(canvas)
    size = max(10, h // 16)

    def paste(img_chw, col, row, label):
        pil = _to_pil(images_to_uint8(img_chw[None])[0]).convert('RGB')
        if pil.size != (w, h):
            pil = pil.resize((w, h), Image.LANCZOS)
        canvas.paste(pil, (col * w, row * h))
        if label:
            _draw_label(draw, (col * w + 4, row * h + 4), label, size)

    for j in range(ns):
        paste(result['src_images'][j], j + 1, 0, result['src_labels'][j])
    for i in range(nd):
        paste(result['dst_images'][i], 0, i + 1, result['dst_labels'][i])
        for j in range(ns):
            paste(images[i, j], j + 1, i + 1, '')
    corner = [scheme, f'rows {format_rows(mix["rows"])}']
    font = _font(size)
    draw.multiline_text((4, 4), '\n'.join(_wrap(draw, line, font, w - 8) for line in corner),
                        font=font, fill=(0, 0, 0))
    return canvas


def _wrap(draw, text: str, font, width: int) -> str:
    """Breaks ``text`` into lines at most ``width`` px wide, by character (names have no spaces)."""
    lines = ['']
    for ch in text:
        if lines[-1] and draw.textlength(lines[-1] + ch, font=font) > width:
            lines.append('')
        lines[-1] += ch
    return '\n'.join(lines)


def _save_png(image, path: str) -> str:
    with atomic_write(path) as f:
        image.save(f, format='PNG')
    return path


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
        fig = draw_mixing_figure(result, name, cell_size)
        paths['figures'].append(_save_png(fig, os.path.join(outdir, f'{prefix}-{name}.png')))
        if not write_mixes:
            continue
        uint8 = images_to_uint8(mix['images'].reshape((-1,) + mix['images'].shape[2:]))
        nd, ns = mix['images'].shape[:2]
        for k, img in enumerate(uint8):
            i, j = divmod(k, ns)
            fname = f'{prefix}-{name}-{result["dst_names"][i]}-{result["src_names"][j]}.png'
            paths['mixes'].append(_save_png(_to_pil(img), os.path.join(outdir, fname)))
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
    from editing.generate_images import check_output_dir
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


def run_style_mixing(network_pkl: str, dst_seeds: Sequence[int], src_seeds: Sequence[int],
                     schemes, outdir: str, out_npz: Optional[str] = None,
                     truncation_psi: Optional[float] = None,
                     truncation_cutoff: Optional[int] = None, noise_mode: str = 'const',
                     impl: str = 'tf2', write_mixes: bool = True, minibatch_size: int = 8,
                     log: Optional[Log] = print, require_rows: bool = True) -> Dict[str, List[str]]:
    """``style_mixing.py``: load, mix, write figures, mix PNGs and the npz.

    Everything is checked before anything is written: seeds, schemes, output paths, the pickle,
    and (with ``require_rows``) that every scheme replaces at least one row of the network.

    Returns:
        ``{'figures': [...], 'mixes': [...], 'npz': [...]}`` written paths.
    """
    schemes = _as_schemes(schemes)        # fail on a bad scheme before loading anything
    _check_noise_mode(noise_mode)
    _check_seeds(dst_seeds, 'destination')
    _check_seeds(src_seeds, 'source')
    check_outputs(outdir, out_npz)
    Gs = load_gs(network_pkl, impl)
    if require_rows:
        _check_schemes_fit(Gs, schemes, network_pkl)
    if log is not None:
        log(f'{network_pkl}: {_num_rows(Gs)} style rows, impl {impl}, noise {noise_mode}')
    result = style_mixing(Gs, dst_seeds, src_seeds, schemes, truncation_psi, truncation_cutoff,
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
    schemes = _as_schemes(schemes)
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


# ------------------------------------------------------------------------------------------------
# Command-line options shared by style_mixing.py and cross_mixing.py.

_SCHEME_HELP = (
    'mixing scheme(s). Names: coarse (rows 0-3), middle (4-7), fine (8 to the last), '
    'middle-wide (4-12), even, odd, all, none. Custom rows: "0-3,8,10-11", "8-" (8 to the last) '
    'or "rows:0-3,8". Several schemes: names separated by "," or any schemes by ";", e.g. '
    '"coarse,middle,fine" or "coarse;rows:0-3,8". Rows keep their resolution meaning '
    '(rows 2r-4 and 2r-3 belong to 2^r px); rows past the last one are cut, with a note. '
    'Default: %(default)s')


def add_mixing_arguments(p) -> None:
    """Adds the options both mixing scripts share to an ``argparse`` parser."""
    p.add_argument('--dst-seeds', required=True,
                   help='destination seeds (figure rows), e.g. "1,2,3" or "1-3"')
    p.add_argument('--scheme', default='coarse,middle,fine', help=_SCHEME_HELP)
    p.add_argument('--trunc', type=float, default=None, metavar='PSI',
                   help='truncation psi, applied towards dlatent_avg before mixing (1 = none). '
                        'Default: none for StyleGAN networks, 0.5 on all rows for StyleGAN2 '
                        '(G_main) networks')
    p.add_argument('--trunc-cutoff', type=int, default=None, metavar='N',
                   help='truncate only rows < N (default: all rows; needs --trunc)')
    p.add_argument('--noise-mode', choices=('const', 'random'), default='const',
                   help='const: the stored noise inputs (randomize_noise=False); random: fresh '
                        'noise per image. Default: %(default)s')
    p.add_argument('--impl', choices=('tf2', 'legacy'), default='tf2',
                   help='implementation that loads and runs the pickles. Default: %(default)s')
    p.add_argument('--outdir', required=True, help='where figures and mix PNGs are written')
    p.add_argument('--out-npz', default=None, metavar='FILE',
                   help='also save dlatents, mixed dlatents, float32 NCHW images, rows and seeds '
                        'here (keys in README; with several schemes keyed <name>_<scheme>)')


def check_mixing_args(p, args) -> None:
    """Parses seed and scheme lists so that bad input fails (``p.error``) before anything loads."""
    try:
        args.dst_seeds = parse_seeds(args.dst_seeds)
        if args.src_seeds is not None:
            args.src_seeds = parse_seeds(args.src_seeds)
        args.scheme = parse_scheme(args.scheme)
    except ValueError as e:
        p.error(str(e))
    if args.trunc_cutoff is not None and args.trunc is None:
        p.error('--trunc-cutoff needs --trunc')
    if args.trunc_cutoff is not None and args.trunc_cutoff < 0:
        p.error('--trunc-cutoff must be >= 0')
    if args.trunc is not None and not np.isfinite(args.trunc):
        p.error(f'--trunc must be a finite number, got {args.trunc}')
