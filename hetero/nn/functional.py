"""PyTorch-named functional ops. Each is defined, with its kernels' launchers and its gradient, in
hetero/ops/<op>.py; this module is the explicit list of what users call."""

from ..ops.activation import elu, leaky_relu, prelu, relu, selu, sigmoid, tanh
from ..ops.batch_norm import batch_norm
from ..ops.conv2d import conv2d
from ..ops.dropout import dropout
from ..ops.elementwise import add, flatten, mul, reshape
from ..ops.layout import cat, permute, strided_slice
from ..ops.linear import linear
from ..ops.local_response_norm import local_response_norm
from ..ops.matmul import matmul
from ..ops.pad import pad
from ..ops.pointwise import clamp, reciprocal
from ..ops.pool2d import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ..ops.softmax import cross_entropy, log_softmax, nll_loss, softmax

__all__ = [
    "adaptive_avg_pool2d", "add", "avg_pool2d", "batch_norm", "cat", "clamp", "conv2d", "cross_entropy", "dropout",
    "elu", "flatten", "leaky_relu", "linear", "local_response_norm", "log_softmax", "matmul", "max_pool2d", "mul",
    "nll_loss", "pad", "permute", "prelu", "reciprocal", "relu", "reshape", "selu", "sigmoid", "softmax",
    "strided_slice", "tanh",
]
