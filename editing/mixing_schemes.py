"""Mixing schemes: which dlatent rows a mix takes from its source.

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

``reconcile_rows`` brings dlatents of one network to another's row count (14/16/18 rows).
"""

import dataclasses
import re
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

Log = Callable[[str], None]

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


def as_schemes(schemes: Union[str, Scheme, Iterable[Union[str, Scheme]]]) -> List[Scheme]:
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


SCHEME_HELP = (
    'mixing scheme(s). Names: coarse (rows 0-3), middle (4-7), fine (8 to the last), '
    'middle-wide (4-12), even, odd, all, none. Custom rows: "0-3,8,10-11", "8-" (8 to the last) '
    'or "rows:0-3,8". Several schemes: names separated by "," or any schemes by ";", e.g. '
    '"coarse,middle,fine" or "coarse;rows:0-3,8". Rows keep their resolution meaning '
    '(rows 2r-4 and 2r-3 belong to 2^r px); rows past the last one are cut, with a note. '
    'Default: %(default)s')
