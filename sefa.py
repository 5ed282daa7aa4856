"""SeFa: closed-form factorization of the style affines of a StyleGAN/StyleGAN2 pickle, and edit
grids along the directions found (spec §1; library: editing/sefa.py)."""

import argparse
import sys

from editing import cli



def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='sefa.py', description=__doc__ + '''
examples:
  python sefa.py --network net.pkl --layers all --out-npz directions.npz
  python sefa.py --network net.pkl --layers coarse --seeds 1,2 --indices 0,5,12 \\
      --degrees -10,-5,0,5,10 --outdir out/sefa
  python sefa.py --network net.pkl --dlatents projected.npz --indices 0 --outdir out/photo
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_network_arguments(p)
    p.add_argument('--layers', default='all',
                   help='dlatent rows to factorize: all, rows/ranges (0-3, 0,2,5, 8-), scheme names '
                        '(coarse, middle, fine, middle-wide, even, odd) or gf-low/gf-mid/gf-high '
                        '(genforce 0-1/2-5/6-13). Default: %(default)s')
    p.add_argument('--method', choices=('gf', 'ros'), default='gf',
                   help='gf: genforce (one affine per row, rows of A normalised); ros: rosinality '
                        '(convs + 4x4 ToRGB, no normalisation). Default: %(default)s')
    p.add_argument('--out-npz', default=None, metavar='FILE',
                   help='write directions [K, D], eigenvalues [K], layers, method, normalize, '
                        'source_pkl, weights, weights_sha256')
    p.add_argument('--outdir', default=None, help='write the edit grid sefa-grid.png and the '
                   'edited dlatents sefa-edits.npz here')
    p.add_argument('--seeds', default=None, help='samples for the edit grid, e.g. 1,2 or 0-3')
    p.add_argument('--dlatents', default=None, metavar='FILE.npz',
                   help='edit these dlatents instead (key dlatents or w, [N, L, D] or [N, D]); '
                        'used as they are (no truncation unless --trunc)')
    p.add_argument('--indices', default='0,1,2', help='direction indices, one grid row each per '
                   'sample. Default: %(default)s')
    p.add_argument('--degrees', default='-5,-2.5,0,2.5,5',
                   help='distances along each unit direction, the grid columns (d=0 framed). '
                        'Default: %(default)s')
    p.add_argument('--edit-layers', default=None,
                   help='rows the edit moves (same grammar as --layers). Default: the factorized rows')
    cli.add_truncation_arguments(p, 'truncation psi for seeds. ' + cli.TRUNC_DEFAULT_HELP)
    p.add_argument('--edit-before-truncation', action='store_true',
                   help='edit, then truncate (rosinality). Default: truncate, then edit (genforce)')
    p.add_argument('--layout', choices=('gf', 'ros'), default='gf',
                   help='gf: rows = seeds x directions, columns = distances; ros: rows = '
                        'directions x distances (--degrees 5,0,-5: rosinality\'s +d/original/-d), '
                        'columns = seeds. Default: %(default)s')
    cli.add_minibatch_argument(p)
    return p


def join_negative_lists(argv, flags=('--degrees',)):
    """``--degrees -10,-5,0`` -> ``--degrees=-10,-5,0``: argparse takes a value that starts with
    '-' (and is not a plain number) for an option, and would report the flag as missing a value."""
    out = list(argv)
    for i in range(len(out) - 2, -1, -1):
        if out[i] in flags and out[i + 1].startswith('-') and out[i + 1][1:2].isdigit():
            out[i:i + 2] = [f'{out[i]}={out[i + 1]}']
    return out


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(join_negative_lists(sys.argv[1:] if argv is None else argv))
    from dnnlib.util import parse_seeds
    from editing import sefa
    try:
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
        indices = sefa.parse_numbers(args.indices, '--indices', int)
        degrees = sefa.parse_numbers(args.degrees, '--degrees', float)
    except ValueError as e:
        p.error(str(e))
    cli.check_common_args(p, args)
    return cli.run_or_report('sefa.py', lambda: sefa.run_sefa(
        args.network, args.layers, args.method, args.impl, args.out_npz, args.outdir, seeds,
        args.dlatents, indices, degrees, args.edit_layers, args.trunc, args.trunc_cutoff,
        args.edit_before_truncation, args.minibatch, layout=args.layout))


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
