"""Project photos into the dlatent space (W or W+) of a StyleGAN / StyleGAN2 pickle: the StyleGAN2
projector's algorithm and defaults (spec §2), through the tf2 implementation. The output
projected.npz (dlatents and the optimised noise maps) feeds generate_images.py, style_mixing.py,
cross_mixing.py, sefa.py, local_editing.py and latent_walk.py. Library: editing/projector.py."""

import argparse
import os
import sys

from editing import cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='projector.py', description=__doc__ + '''
examples:
  python projector.py --network net.pkl --target face.jpg --outdir out/proj \\
      --vgg16 vgg16_zhang_perceptual.pkl
  python projector.py --network net.pkl --target a.png b.png --space w+ --loss pixel \\
      --num-steps 500 --snapshot-steps 100,250,500 --save-video --outdir out/proj
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_network_arguments(p, 'only tf2 works here (the step differentiates through the Keras network)')
    p.add_argument('--target', required=True, nargs='+', metavar='IMG',
                   help='target image(s); each is centre-cropped to a square and resized to the '
                        'network\'s resolution (Lanczos), grayscale or RGB as the network')
    p.add_argument('--outdir', required=True, metavar='DIR',
                   help='writes projected.npz, target.png, proj.png (targets side by side), '
                        'step%%04d.png snapshots and proj.gif/.mp4 if asked')
    p.add_argument('--space', choices=('w', 'w+'), default='w',
                   help='w: one dlatent row for every layer (the paper); w+: one row per layer. '
                        'Default: %(default)s')
    p.add_argument('--loss', choices=('lpips', 'pixel'), default='lpips',
                   help='lpips: LPIPS-VGG16 (the paper; needs --vgg16); pixel: MSE in [0, 255] '
                        '(a fallback, not the paper\'s). Default: %(default)s')
    p.add_argument('--vgg16', metavar='FILE', default=None,
                   help='vgg16_zhang_perceptual.pkl (NVIDIA), or torchvision\'s vgg16-397923af.pth '
                        '(with --lpips)')
    p.add_argument('--lpips', metavar='FILE', default=None,
                   help='with a torchvision --vgg16: the lpips package\'s weights/v0.1/vgg.pth')
    p.add_argument('--num-steps', type=int, default=1000,
                   help='optimisation steps per target. Default: %(default)s')
    p.add_argument('--seed', type=int, default=303,
                   help='seeds the initial noise maps and the dlatent noise. Default: %(default)s')
    p.add_argument('--save-video', nargs='?', const='gif', default=None, choices=('gif', 'mp4'),
                   help='write the progress as proj.gif (default) or proj.mp4 (needs imageio-ffmpeg): '
                        '[target | projection], about 100 frames')
    p.add_argument('--snapshot-steps', default=None, metavar='LIST',
                   help='also write the projection after these steps, e.g. 200,400,600,800,1000 '
                        '(as StyleGAN2\'s run_projector.py)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.num_steps < 1:
        p.error('--num-steps must be at least 1')
    if args.seed < 0 or args.seed >= 2 ** 32:
        p.error('--seed must be in 0..2**32-1')
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from editing import projector
    try:
        projector.run_projector(
            args.network, args.target, args.outdir, space=args.space, loss=args.loss,
            vgg16=args.vgg16, lpips_lin=args.lpips, num_steps=args.num_steps, seed=args.seed,
            save_video=args.save_video, snapshot_steps=args.snapshot_steps, impl=args.impl,
            progress=not args.no_progress)
    except (OSError, ValueError) as e:
        print(f'projector.py: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
