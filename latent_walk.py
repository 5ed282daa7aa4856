"""Latent walks and interpolation videos of a StyleGAN/StyleGAN2 pickle: between seeds in W
(NVIDIA's looping cubic spline, or lerp) or Z (slerp), or along a SeFa direction; one cell or a
grid; GIF (Pillow) or MP4 (needs imageio-ffmpeg). Library: editing/latent_walk.py (spec §4)."""

import argparse
import sys

from editing import cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='latent_walk.py', description=__doc__ + '''
examples:
  python latent_walk.py --network net.pkl --seeds 0-31 --grid 4x2 --output lerp.mp4
  python latent_walk.py --network net.pkl --seeds 1,2,3 --space z \\
      --frames-per-keyframe 24 --fps 24 --output slerp.gif
  python sefa.py --network net.pkl --out-npz dirs.npz
  python latent_walk.py --network net.pkl --seeds 1-4 --grid 2x2 --directions dirs.npz \\
      --index 0 --max-distance 8 --num-frames 48 --fps 24 --output sefa0.gif
''', formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_network_arguments(p)
    p.add_argument('--seeds', default=None, help='keyframe seeds, e.g. 0-31 or 1,2,5-10')
    p.add_argument('--dlatents', default=None, metavar='FILE.npz',
                   help='keyframes from a dlatents file instead (key dlatents or w); in W, as they are')
    p.add_argument('--grid', default='1x1', help='cells WxH, each with its own keyframes (NVIDIA '
                   'layout: seeds used cyclically). Default: %(default)s')
    p.add_argument('--num-keyframes', type=int, default=None,
                   help='keyframes per cell (default: number of seeds / cells)')
    p.add_argument('--shuffle-seed', type=int, default=None, help='shuffle the keyframe seeds')
    p.add_argument('--space', choices=('w', 'z'), default='w',
                   help='interpolate dlatents in W, or latents in Z by slerp. Default: %(default)s')
    p.add_argument('--kind', choices=('cubic', 'linear'), default=None,
                   help='cubic spline (NVIDIA gen_video.py) or linear (lerp in W, slerp in Z). '
                        'Default: cubic in W, linear in Z')
    p.add_argument('--frames-per-keyframe', type=int, default=120,
                   help='frames between keyframes (NVIDIA --w-frames). Default: %(default)s')
    p.add_argument('--fps', type=float, default=60, help='frames per second. Default: %(default)s')
    p.add_argument('--no-loop', dest='loop', action='store_false',
                   help='end on the last keyframe (default: loop back to the first, seamlessly)')
    cli.add_truncation_arguments(p, 'truncation psi. ' + cli.TRUNC_DEFAULT_HELP + '; none for --dlatents')
    p.add_argument('--directions', default=None, metavar='FILE.npz',
                   help='walk along a SeFa direction (sefa.py --out-npz) from each cell\'s seed')
    p.add_argument('--index', type=int, default=0, help='direction index. Default: %(default)s')
    p.add_argument('--max-distance', type=float, default=5.0,
                   help='largest distance along the direction. Default: %(default)s')
    p.add_argument('--edit-layers', default=None,
                   help='rows the direction moves (default: the rows it was factorized on)')
    p.add_argument('--num-frames', type=int, default=120,
                   help='frames of a direction walk. Default: %(default)s')
    p.add_argument('--output', required=True, help='video file: .gif or .mp4')
    p.add_argument('--frames-dir', default=None, help='also write every frame as PNG here')
    cli.add_minibatch_argument(p)
    p.add_argument('--no-progress', dest='progress', action='store_false', help='no progress bar')
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    from dnnlib.util import parse_seeds
    from editing import latent_walk
    try:
        seeds = None if args.seeds is None else parse_seeds(args.seeds)
    except ValueError as e:
        p.error(f'--seeds: {e}')
    cli.check_common_args(p, args)
    kind = args.kind or ('linear' if args.space == 'z' else 'cubic')     # slerp has no spline
    return cli.run_or_report('latent_walk.py', lambda: latent_walk.run_latent_walk(
        args.network, args.output, seeds, args.dlatents, args.grid, args.num_keyframes,
        args.shuffle_seed, args.space, kind, args.frames_per_keyframe, args.fps, args.loop,
        args.trunc, args.trunc_cutoff, args.directions, args.index, args.max_distance,
        args.edit_layers, args.num_frames, args.frames_dir, args.impl, args.minibatch,
        args.progress))


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
