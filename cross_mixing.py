"""Cross-model style mixing: network A's styles in network B's images.

A's mapping makes the source dlatents (or --src-dlatents brings them from a file), B's mapping
the destination dlatents, B's synthesis renders. Each network truncates towards its own
dlatent_avg. Row counts are reconciled by resolution: a source with fewer rows than B is extended
by repeating its last row, one with more is cut. Latent and dlatent sizes must match.
"""

import argparse
import sys

from editing import cli, mixing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog='cross_mixing.py', description=__doc__ + '''
--src-dlatents FILE.npz: key "dlatents" holds W [N, D] or W+ [N, L, D] (float), key "seeds" [N]
(integers, optional) names the entries; --src-seeds then picks entries by those seeds. Dlatents
from a file are used as they are (no truncation).

examples:
  python cross_mixing.py --dst-network B.pkl --src-network A.pkl --dst-seeds 1,2,3 \\
      --src-seeds 4,5 --scheme coarse,fine --outdir out/cross --out-npz out/cross/cross.npz
  python cross_mixing.py --dst-network B.pkl --src-dlatents projected.npz --dst-seeds 1-4 \\
      --scheme middle --outdir out/cross
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dst-network', required=True, metavar='PKL',
                   help='network B: destination dlatents and rendering')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--src-network', metavar='PKL', help='network A: source dlatents')
    src.add_argument('--src-dlatents', metavar='FILE.npz',
                     help='source dlatents from a file instead of network A (see above)')
    p.add_argument('--src-seeds', default=None,
                   help='source seeds (figure columns); required with --src-network, optional '
                        'with --src-dlatents (picks entries by the file\'s "seeds")')
    cli.add_mixing_arguments(p)
    args = p.parse_args(argv)
    if args.src_network is not None and args.src_seeds is None:
        p.error('--src-seeds is required with --src-network')
    cli.check_mixing_args(p, args)
    return cli.run_or_report('cross_mixing.py', lambda: mixing.run_cross_mixing(
        args.dst_network, args.dst_seeds, args.scheme, args.outdir, src_network_pkl=args.src_network,
        src_seeds=args.src_seeds, src_dlatents_npz=args.src_dlatents, out_npz=args.out_npz,
        truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff, noise_mode=args.noise_mode,
        impl=args.impl))


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
