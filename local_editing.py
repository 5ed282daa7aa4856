"""Mask-based local editing: the reference's synthesis features inside a mask, blended into the
source's at chosen resolutions (spec §5.5); StyleGAN and StyleGAN2 pickles through the tf2
implementation. Library: editing/local_editing.py."""

import argparse
import sys

from editing import cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='local_editing.py', description=__doc__ + '''
examples:
  python local_editing.py --network net.pkl --src-seed 1 --ref-seed 2 --mask-half right \\
      --layer-res 16 --outdir out/local
  python local_editing.py --network net.pkl --src-dlatents projected.npz --ref-seed 7 \\
      --mask mouth.png --layer-res 32,64 --outdir out/local
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_network_arguments(p, 'only tf2 works here (the blend runs the synthesis block by block)')
    for who, name in (('src', 'source'), ('ref', 'reference')):
        p.add_argument(f'--{who}-seed', type=int, default=None, help=f'{name} seed')
        p.add_argument(f'--{who}-dlatents', default=None, metavar='FILE.npz',
                       help=f'{name} from a dlatents file (dlatents or w), used as is')
        p.add_argument(f'--{who}-index', type=int, default=0,
                       help=f'entry of --{who}-dlatents. Default: %(default)s')
    p.add_argument('--mask', default=None, metavar='PNG',
                   help='mask image at the network\'s resolution; white = take the reference')
    p.add_argument('--mask-half', choices=('left', 'right', 'top', 'bottom'), default=None,
                   help='instead of --mask: that half from the reference')
    p.add_argument('--feather', type=float, default=0.0, metavar='PX',
                   help='soften the mask edge with a Gaussian of this many image pixels. '
                        'Default: %(default)s (hard edge)')
    p.add_argument('--layer-res', default='16', help='resolution(s) at which features are '
                   'blended, e.g. 16 or 8,32. Default: %(default)s')
    cli.add_truncation_arguments(p, 'truncation psi for seeds. ' + cli.TRUNC_DEFAULT_HELP)
    p.add_argument('--outdir', required=True,
                   help='writes local-edit.png (source, reference, mask, result) and local-edit-result.png')
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cli.check_common_args(p, args)
    from editing import local_editing
    return cli.run_or_report('local_editing.py', lambda: local_editing.run_local_editing(
        args.network, args.outdir, args.layer_res, args.mask, args.mask_half, args.src_seed,
        args.src_dlatents, args.src_index, args.ref_seed, args.ref_dlatents, args.ref_index,
        args.trunc, args.trunc_cutoff, args.impl, feather=args.feather))


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
