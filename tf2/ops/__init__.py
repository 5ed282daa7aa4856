"""StyleGAN2 custom ops for TensorFlow 2: fused_bias_act and upfirdn2d with its wrappers.

Every op takes ``impl=``: 'ref' (plain TensorFlow, the readable reference), 'cpp' (C++ CPU
kernel compiled at first use), 'cuda' (CUDA kernel compiled with nvcc when a GPU is listed) or
'auto' (the fastest available, announced once per op). See tf2/ops/_build.py.
"""
from tf2.ops._build import IMPLS, OpBuildError
from tf2.ops.fused_bias_act import ACTIVATIONS, fused_bias_act
from tf2.ops.upfirdn2d import (conv_downsample_2d, downsample_2d, filter_2d, setup_kernel,
                               upfirdn2d, upsample_2d, upsample_conv_2d)

__all__ = ['IMPLS', 'OpBuildError', 'ACTIVATIONS', 'fused_bias_act', 'setup_kernel', 'upfirdn2d',
           'upsample_2d', 'downsample_2d', 'filter_2d', 'upsample_conv_2d', 'conv_downsample_2d']
