"""conv2d (PyTorch semantics) as a table of algorithms: algorithms.choose names, for each pass, the algorithm
that computes it on a device; geometry validates the sizes; one module per algorithm family (direct,
implicit, columns, depthwise); function dispatches and holds the autograd node and the public conv2d."""

from .algorithms import Algorithms, choose
from .function import Conv2dFn, conv2d, conv2d_backward, conv2d_forward
from .geometry import ConvGeometry, conv2d_geometry

__all__ = ["Algorithms", "Conv2dFn", "ConvGeometry", "choose", "conv2d", "conv2d_backward", "conv2d_forward",
           "conv2d_geometry"]
