"""Command-line options shared by the scripts (argparse helpers; the scripts stay thin).

Every script that reads a network pickle takes ``--network``/``--impl`` and, where it makes
images from seeds, ``--trunc``/``--trunc-cutoff`` and ``--minibatch`` with the same meaning and
the same one-line errors; ``run_or_report`` turns a library's user error into
``<script>: error: <message>`` and exit code 1.
"""

import math
import sys
from typing import Callable, Tuple, Type

from dnnlib.util import parse_seeds
from editing.mixing_schemes import SCHEME_HELP, parse_scheme

IMPLS = ('tf2', 'legacy')
NOISE_MODES = ('const', 'random')
TRUNC_DEFAULT_HELP = 'Default: 0.7 on rows < 8 (StyleGAN), 0.5 on all rows (StyleGAN2)'


def add_network_arguments(p, impl_help: str = 'implementation that loads and runs the pickle. '
                                              'Default: %(default)s') -> None:
    p.add_argument('--network', required=True, metavar='PKL', help='official-format network pickle')
    add_impl_argument(p, impl_help)


def add_impl_argument(p, help: str) -> None:
    p.add_argument('--impl', choices=IMPLS, default='tf2', help=help)


def add_truncation_arguments(p, psi_help: str = 'truncation psi. ' + TRUNC_DEFAULT_HELP,
                             cutoff_help: str = 'truncate rows < N only (needs --trunc)') -> None:
    p.add_argument('--trunc', type=float, default=None, metavar='PSI', help=psi_help)
    p.add_argument('--trunc-cutoff', type=int, default=None, metavar='N', help=cutoff_help)


def add_minibatch_argument(p, default: int = 8) -> None:
    p.add_argument('--minibatch', type=int, default=default, metavar='N',
                   help='images per forward pass. Default: %(default)s')


def check_common_args(p, args) -> None:
    """The checks of the shared options that a script has (``p.error`` names the flag)."""
    trunc, cutoff = getattr(args, 'trunc', None), getattr(args, 'trunc_cutoff', None)
    if cutoff is not None and trunc is None:
        p.error('--trunc-cutoff needs --trunc')
    if cutoff is not None and cutoff < 0:
        p.error('--trunc-cutoff must be >= 0')
    if trunc is not None and not math.isfinite(trunc):
        p.error(f'--trunc must be a finite number, got {trunc}')
    if getattr(args, 'minibatch', 1) < 1:
        p.error('--minibatch must be at least 1')


def run_or_report(script: str, work: Callable[[], object],
                  errors: Tuple[Type[BaseException], ...] = (OSError, ValueError)) -> int:
    """Runs ``work()``; a user error (bad file, path, value) becomes one line on stderr, exit 1."""
    try:
        work()
    except errors as e:
        print(f'{script}: error: {e}', file=sys.stderr)
        return 1
    return 0


def add_mixing_arguments(p, dst_required: bool = True) -> None:
    """Adds the options both mixing scripts share to an ``argparse`` parser (``dst_required``:
    False where destinations may come from a dlatents file instead)."""
    p.add_argument('--dst-seeds', required=dst_required,
                   help='destination seeds (figure rows), e.g. "1,2,3" or "1-3"')
    p.add_argument('--scheme', default='coarse,middle,fine', help=SCHEME_HELP)
    add_truncation_arguments(
        p, 'truncation psi, applied towards dlatent_avg before mixing (1 = none). Default: none for '
           'StyleGAN networks, 0.5 on all rows for StyleGAN2 (G_main) networks',
        'truncate only rows < N (default: all rows; needs --trunc)')
    p.add_argument('--noise-mode', choices=NOISE_MODES, default='const',
                   help='const: the stored noise inputs (randomize_noise=False); random: fresh '
                        'noise per image. Default: %(default)s')
    add_impl_argument(p, 'implementation that loads and runs the pickles. Default: %(default)s')
    p.add_argument('--outdir', required=True, help='where figures and mix PNGs are written')
    p.add_argument('--out-npz', default=None, metavar='FILE',
                   help='also save dlatents, mixed dlatents, float32 NCHW images, rows and seeds '
                        'here (keys in docs/generation-and-mixing.md; with several schemes keyed '
                        '<name>_<scheme>)')


def check_mixing_args(p, args) -> None:
    """Parses seed and scheme lists so that bad input fails (``p.error``) before anything loads."""
    try:
        if args.dst_seeds is not None:
            args.dst_seeds = parse_seeds(args.dst_seeds)
        if args.src_seeds is not None:
            args.src_seeds = parse_seeds(args.src_seeds)
        args.scheme = parse_scheme(args.scheme)
    except ValueError as e:
        p.error(str(e))
    check_common_args(p, args)
