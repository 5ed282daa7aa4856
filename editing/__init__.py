"""What people do with any network pickle, through either implementation (design.md layout).

Modules:
    dlatents_io: read and write dlatent files (``.npz`` with ``dlatents`` or ADA-PyTorch's ``w``).
    figures: labelled image grids (PIL), GIF/MP4 writers.
    sefa: closed-form factorization of the style affines (SeFa) and editing along directions.
    latent_walk: interpolation videos between seeds, along SeFa directions.
    local_editing: mask-based feature blending inside the synthesis network (tf2 networks).

Library code works on numpy arrays through the official inference API (``Gs.run``,
``Gs.components.mapping.run``, ``Gs.components.synthesis.run``, ``Gs.get_var``, ``Gs.vars``),
except ``local_editing``, which runs the tf2 synthesis block by block.
"""
