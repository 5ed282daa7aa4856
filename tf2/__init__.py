"""Keras 3 / TensorFlow 2 port of StyleGAN with the official network API.

``tf2.load_network(path)`` returns ``(G, D, Gs)`` objects with the official inference API
(``run``, ``components``, ``get_var``/``set_var``, ``vars``, ...; see ``tf2/network.py``), and
``tf2.convert_images_to_uint8`` is the official output transform. Importing ``tf2`` does not
import TensorFlow until one of these is used.
"""

_LAZY = {
    'convert_images_to_uint8': 'tf2.network',
    'Network': 'tf2.network',
}


def load_network(path: str, data_format: str = 'NHWC'):
    """Loads an official ``(G, D, Gs)`` network pickle as objects with the official API.

    Args:
        path: NVIDIA's released pickle or one of our snapshots.
        data_format: internal layout, ``'NHWC'`` (CPU) or ``'NCHW'`` (GPU). Inputs and outputs of
            ``run`` are NCHW either way.

    Returns:
        ``(G, D, Gs)`` as :class:`tf2.network.Network` wrappers around Keras models.
    """
    from tf2.network import load_network as _load
    return _load(path, data_format=data_format)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
