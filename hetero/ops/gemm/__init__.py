"""GEMM: the per-device config table (config), the buffer-level launcher (launch), the CPU variant (cpu) and
the tensor op (op)."""

from .config import gemm_config, k_splits
from .launch import Epilogue, ImplicitB, Operand, Output, launch_gemm, launch_sum_rows
from .op import gemm

__all__ = ["Epilogue", "ImplicitB", "Operand", "Output", "gemm", "gemm_config", "k_splits", "launch_gemm",
           "launch_sum_rows"]
