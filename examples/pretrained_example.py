"""NVIDIA's pretrained_example.py on TensorFlow 2 through legacy_tf: only the imports changed.

The official script did ``import dnnlib.tflib as tflib`` and ``_G, _D, Gs = pickle.load(f)``.
Here ``tflib`` comes from legacy_tf and the pickle is read with ``tflib.load_pkl``, which rebuilds
the networks from their build-function names and never executes code stored in the file.

Usage:
    python examples/pretrained_example.py karras2019stylegan-ffhq-1024x1024.pkl
    python examples/pretrained_example.py network-snapshot-000140.pkl --out results/example.png
"""

import argparse
import os
import sys

import numpy as np
import PIL.Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from legacy_tf import tflib  # was: import dnnlib.tflib as tflib  # noqa: E402
from dnnlib.util import atomic_path  # noqa: E402


def generate_example(network_pkl: str, out_path: str, seed: int = 5) -> str:
    """The official example flow: load, print layers, one image with psi 0.7, save a PNG.

    Args:
        network_pkl: official-format network pickle (G, D, Gs).
        out_path: PNG file to write.
        seed: latents are ``np.random.RandomState(seed).randn(1, Gs.input_shape[1])``.

    Returns:
        The path written.
    """
    # Initialize TensorFlow.
    tflib.init_tf()

    # Load pre-trained network.
    _G, _D, Gs = tflib.load_pkl(network_pkl)   # was: pickle.load(f)

    # Print network details.
    Gs.print_layers()

    # Pick latent vector.
    rnd = np.random.RandomState(seed)
    latents = rnd.randn(1, Gs.input_shape[1])

    # Generate image.
    fmt = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)
    images = Gs.run(latents, None, truncation_psi=0.7, randomize_noise=True, output_transform=fmt)

    # Save image (to a temporary name first, so a crash never leaves half a PNG).
    image = images[0]
    image = PIL.Image.fromarray(image, 'RGB') if image.shape[-1] == 3 else \
        PIL.Image.fromarray(image[:, :, 0], 'L')
    with atomic_path(out_path) as tmp:
        image.save(tmp, format='PNG')
    return out_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description='Generate one image from an official StyleGAN network pickle the way '
                    "NVIDIA's pretrained_example.py does (seed 5, truncation_psi 0.7, random "
                    'noise), using legacy_tf on TensorFlow 2.')
    parser.add_argument('network_pkl',
                        help='network pickle, e.g. karras2019stylegan-ffhq-1024x1024.pkl')
    parser.add_argument('--out', default=os.path.join('results', 'example.png'),
                        help='PNG to write (default: results/example.png)')
    parser.add_argument('--seed', type=int, default=5, help='latent seed (default: 5)')
    args = parser.parse_args(argv)
    try:
        path = generate_example(args.network_pkl, args.out, args.seed)
    except (OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
