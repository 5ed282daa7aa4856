"""legacy_tf: NVIDIA's TF1 StyleGAN API, faithful and in graph mode, on TensorFlow 2.21.

For scripts written against the official code: change ``import dnnlib.tflib as tflib`` to
``from legacy_tf import tflib`` and load networks with ``legacy_tf.load_network(path)`` (or
``tflib.load_pkl``) instead of ``pickle.load``. The graph and session belong to legacy_tf, so the
rest of the process stays in TensorFlow 2's eager mode.
"""
from . import tflib  # noqa: F401
from .tflib import (load_network, load_pkl, save_pkl, convert_images_to_uint8,  # noqa: F401
                    convert_images_from_uint8, Network)

__all__ = ['tflib', 'load_network', 'load_pkl', 'save_pkl', 'convert_images_to_uint8',
           'convert_images_from_uint8', 'Network']
