"""Mask-based local editing: the reference's synthesis features inside a mask, blended into the
source's at chosen resolutions (spec §5.5); StyleGAN and StyleGAN2 pickles through the tf2
implementation. Library: editing/local_editing.py."""

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='local_editing.py', description=__doc__ + '''
examples:
  python local_editing.py --network net.pkl --src-seed 1 --ref-seed 2 --mask-half right \\
      --layer-res 16 --outdir out/local
  python local_editing.py --network net.pkl --src-dlatents projected.npz --ref-seed 7 \\
      --mask mouth.png --layer-res 32,64 --outdir out/local
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--network', required=True, metavar='PKL', help='official-format network pickle')
    p.add_argument('--impl', choices=('tf2', 'legacy'), default='tf2',
                   help='only tf2 works here (the blend runs the synthesis block by block)')
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
    p.add_argument('--trunc', type=float, default=None, metavar='PSI',
                   help='truncation psi for seeds. Default: 0.7 rows < 8 (StyleGAN), 0.5 (StyleGAN2)')
    p.add_argument('--trunc-cutoff', type=int, default=None, metavar='N',
                   help='truncate rows < N only (needs --trunc)')
    p.add_argument('--outdir', required=True,
                   help='writes local-edit.png (source, reference, mask, result) and local-edit-result.png')
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.trunc_cutoff is not None and args.trunc is None:
        p.error('--trunc-cutoff needs --trunc')
    from editing import local_editing
    try:
        local_editing.run_local_editing(
            args.network, args.outdir, args.layer_res, args.mask, args.mask_half, args.src_seed,
            args.src_dlatents, args.src_index, args.ref_seed, args.ref_dlatents, args.ref_index,
            args.trunc, args.trunc_cutoff, args.impl, feather=args.feather)
    except (OSError, ValueError) as e:
        print(f'local_editing.py: error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
