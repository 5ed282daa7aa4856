"""Style mixing by scheme on one network (paper Figure 3 semantics).

A mix is the destination's dlatents with the scheme's rows taken from the source. Figures put the
sources along the top and the destinations down the left; each mix is also written as its own PNG.
"""

import argparse
import sys

from editing import cli, mixing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='style_mixing.py', description=__doc__ + '''
examples:
  python style_mixing.py --network results/00000-demo/network-snapshot-000010.pkl \\
      --dst-seeds 888,829,1898 --src-seeds 639,701,687,615 --scheme coarse,middle,fine \\
      --outdir out/mixing --out-npz out/mixing/mixing.npz
  python style_mixing.py --network ffhq.pkl --dst-seeds 1-3 --src-seeds 4,5 \\
      --scheme "rows:0-3,8" --trunc 0.7 --trunc-cutoff 8 --impl legacy --outdir out/m
  python style_mixing.py --network net.pkl --dlatents projected.npz --src-seeds 4-7 \\
      --scheme coarse --outdir out/photo-mixing

--dlatents / --src-dlatents FILE.npz (projector.py's projected.npz, ADA-PyTorch's key w, or any
file with "dlatents" [N, L, D] or [N, D]): the entries are used as they are (not truncated) and
rendered with the file's saved noise maps; every mix of such a destination uses its maps.
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--network', required=True, metavar='PKL', help='official-format network pickle')
    p.add_argument('--src-seeds', default=None,
                   help='source seeds (figure columns), e.g. "4,5" or "4-7"')
    p.add_argument('--src-dlatents', default=None, metavar='FILE.npz',
                   help='instead of --src-seeds: the sources from a dlatents file (see below)')
    p.add_argument('--dlatents', default=None, metavar='FILE.npz',
                   help='instead of --dst-seeds: the destinations (figure rows) from a dlatents '
                        'file, e.g. a projected photo')
    cli.add_mixing_arguments(p, dst_required=False)
    args = p.parse_args(argv)
    if (args.dst_seeds is None) == (args.dlatents is None):
        p.error('give exactly one of --dst-seeds and --dlatents')
    if (args.src_seeds is None) == (args.src_dlatents is None):
        p.error('give exactly one of --src-seeds and --src-dlatents')
    cli.check_mixing_args(p, args)
    return cli.run_or_report('style_mixing.py', lambda: mixing.run_style_mixing(
        args.network, args.dst_seeds, args.src_seeds, args.scheme, args.outdir, out_npz=args.out_npz,
        truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff, noise_mode=args.noise_mode,
        impl=args.impl, dst_dlatents_npz=args.dlatents, src_dlatents_npz=args.src_dlatents))


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
