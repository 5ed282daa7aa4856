"""legacy_tf.tflib: the official ``dnnlib.tflib`` API (Network, init_tf, run, ...) on TF 2.

Official-era scripts change one import (``import dnnlib.tflib as tflib`` ->
``from legacy_tf import tflib``) and load pickles with ``tflib.load_pkl`` or
``legacy_tf.load_network``.
"""
from .tfutil import (init_tf, reset_tf, is_tf_initialized, get_graph, get_session,  # noqa: F401
                     graph_scope, run, is_tf_expression, shape_to_list, lerp, lerp_clip,
                     absolute_name_scope, absolute_variable_scope, set_vars, get_vars,
                     init_uninitialized_vars, convert_images_to_uint8,
                     convert_images_from_uint8, convert_images_from_uint8_v2)
from .network import (Network, BUILD_MODULES, resolve_build_func, load_network,  # noqa: F401
                      load_pkl, save_pkl)
