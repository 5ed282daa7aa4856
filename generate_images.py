#!/usr/bin/env python
"""Generate images with Gs of an official StyleGAN network pickle (NVIDIA's or ours).

Example:
    python generate_images.py --network karras2019stylegan-ffhq-1024x1024.pkl \\
        --seeds 0-7 --trunc 0.7 --outdir out --grid
"""

import argparse
import math
import os
import sys

from dnnlib.util import parse_seeds
from editing.generate_images import NOISE_MODES, generate_images


def _seeds(text):
    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv=None):
    p = argparse.ArgumentParser(
        description='Generate one PNG per seed (seedNNNN.png), or per entry of a dlatents file '
                    '(projNN.png), with Gs of an official (G, D, Gs) StyleGAN pickle, any '
                    'resolution.',
        epilog='A seed s means np.random.RandomState(s).randn(1, latent_size), as in NVIDIA\'s '
               'scripts. Example: python generate_images.py --network net.pkl --seeds 0-7 '
               '--trunc 0.7 --outdir out --grid')
    p.add_argument('--network', required=True, metavar='PKL', help='network pickle')
    p.add_argument('--seeds', type=_seeds, metavar='LIST',
                   help='seeds: ranges and lists such as 0-3,7,10-12')
    p.add_argument('--dlatents', metavar='FILE.npz', default=None,
                   help='instead of --seeds: render the dlatents of this file (key dlatents or w, '
                        '[N, L, D] or [N, D], e.g. projector.py\'s projected.npz) with its saved '
                        'noise maps if it has them; used as they are unless --trunc; writes '
                        'projNN.png')
    p.add_argument('--trunc', type=float, default=None, metavar='PSI',
                   help='truncation psi (default: the network\'s own, 0.7 for StyleGAN v1; '
                        '1 disables truncation)')
    p.add_argument('--trunc-cutoff', type=int, default=None, metavar='N',
                   help='truncate dlatent rows < N (default: the network\'s own, 8 for v1)')
    p.add_argument('--noise-mode', choices=NOISE_MODES, default='const',
                   help='const: the stored noise inputs (deterministic); random: fresh noise '
                        '(default: %(default)s)')
    p.add_argument('--outdir', required=True, metavar='DIR', help='output directory (created)')
    p.add_argument('--grid', action='store_true', help='also write all images as grid.png')
    p.add_argument('--impl', choices=('tf2', 'legacy'), default='tf2',
                   help='implementation: tf2 (Keras port) or legacy (TF1-faithful graph mode) '
                        '(default: %(default)s)')
    p.add_argument('--minibatch', type=int, default=8, metavar='N',
                   help='images per forward pass (default: %(default)s)')
    args = p.parse_args(argv)
    if (args.seeds is None) == (args.dlatents is None):
        p.error('give exactly one of --seeds and --dlatents')
    if args.dlatents is not None and args.trunc_cutoff is not None and args.trunc is None:
        p.error('--trunc-cutoff needs --trunc with --dlatents (file dlatents are not truncated '
                'by default)')
    if args.minibatch < 1:
        p.error('--minibatch must be at least 1')
    if args.trunc is not None and not math.isfinite(args.trunc):
        p.error(f'--trunc must be a finite number, got {args.trunc}')
    if args.trunc_cutoff is not None and args.trunc_cutoff < 0:
        p.error('--trunc-cutoff must be >= 0')

    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    try:
        written = generate_images(args.network, args.seeds, args.trunc, args.trunc_cutoff,
                                  args.noise_mode, args.outdir, args.grid, args.impl,
                                  minibatch_size=args.minibatch, dlatents_npz=args.dlatents)
    except (OSError, ValueError) as e:
        print(f'generate_images.py: error: {e}', file=sys.stderr)
        return 1
    print(f'wrote {len(written)} images to {args.outdir}')
    return 0


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
