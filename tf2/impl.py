"""Choose between the two implementations that read official pickles: ``tf2`` and ``legacy``.

Both return ``(G, D, Gs)`` objects with the same official inference API (design.md), so scripts
and library code written against that API work with either.
"""

IMPLS = ('tf2', 'legacy')


def load_network(path: str, impl: str = 'tf2'):
    """Loads ``(G, D, Gs)`` from an official-format pickle with the chosen implementation.

    Args:
        path: network pickle (NVIDIA's or one of our snapshots).
        impl: ``'tf2'`` (Keras 3 port, eager/tf.function) or ``'legacy'`` (TF1-faithful graph mode).
    """
    if impl == 'tf2':
        from tf2 import load_network as _load
    elif impl == 'legacy':
        from legacy_tf import load_network as _load
    else:
        raise ValueError(f'unknown impl {impl!r}; choose one of {IMPLS}')
    return _load(path)
