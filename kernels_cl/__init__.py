"""OpenCL C sources, shipped inside the package as hetero.kernels_cl (see hetero.program)."""
