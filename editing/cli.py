"""Command-line options shared by the scripts (argparse helpers; the scripts stay thin)."""

import numpy as np

from dnnlib.util import parse_seeds
from editing.mixing_schemes import SCHEME_HELP, parse_scheme


def add_mixing_arguments(p) -> None:
    """Adds the options both mixing scripts share to an ``argparse`` parser."""
    p.add_argument('--dst-seeds', required=True,
                   help='destination seeds (figure rows), e.g. "1,2,3" or "1-3"')
    p.add_argument('--scheme', default='coarse,middle,fine', help=SCHEME_HELP)
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
                        'here (keys in docs/generation-and-mixing.md; with several schemes keyed <name>_<scheme>)')


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
