"""Choose between the two implementations that read official pickles: ``tf2`` and ``legacy``.

Both return ``(G, D, Gs)`` objects with the same official inference API (design.md), so scripts
and library code written against that API work with either.
"""

import os

IMPLS = ('tf2', 'legacy')
GENERATOR_FUNCS = ('G_style', 'G_main')     # the official Gs build functions: StyleGAN, StyleGAN2


def build_func_name(net) -> str:
    """The official build function name of a network of either implementation."""
    return getattr(net, 'build_func_name', None) or getattr(net, '_build_func_name', None) or '?'


def check_generator_pickle(nets, path: str) -> None:
    """Raises ValueError (naming the file) unless ``nets`` is ``(G, D, Gs)`` with a generator as Gs."""
    if not (isinstance(nets, tuple) and len(nets) == 3):
        size = f' of length {len(nets)}' if isinstance(nets, tuple) else ''
        raise ValueError(f'{path}: expected a (G, D, Gs) tuple of networks, found {type(nets).__name__}{size}')
    name = build_func_name(nets[2]).rsplit('.', 1)[-1]
    if name not in GENERATOR_FUNCS:
        raise ValueError(f'{path}: its Gs is built by {name}, not a generator (G_style for StyleGAN, '
                         'G_main for StyleGAN2)')


def load_network(path: str, impl: str = 'tf2'):
    """Loads ``(G, D, Gs)`` from an official-format pickle with the chosen implementation.

    Args:
        path: network pickle (NVIDIA's or one of our snapshots).
        impl: ``'tf2'`` (Keras 3 port, eager/tf.function) or ``'legacy'`` (TF1-faithful graph mode).

    Raises:
        ValueError: naming the file: no such file, not an official network pickle (refused,
            damaged, or executable content), or networks that are not ``(G, D, Gs)`` with a
            generator as Gs.
    """
    if impl not in IMPLS:
        raise ValueError(f'unknown impl {impl!r}; choose one of {IMPLS}')
    if not os.path.isfile(path):
        raise ValueError(f'{path}: network pickle not found' if not os.path.exists(path) else
                         f'{path}: not a file')
    from dnnlib import legacy_pickle
    check_generator_pickle(legacy_pickle.load(path), path)   # plain data, no TensorFlow: fails fast
    if impl == 'tf2':
        from tf2 import load_network as _load
    else:
        from legacy_tf import load_network as _load
    nets = _load(path)
    check_generator_pickle(nets, path)
    return nets
