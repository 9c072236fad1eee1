"""Data: MNIST / Fashion-MNIST from IDX files (found or downloaded), in-memory data sets, and the DataLoader."""

from .datasets import DATASETS, MNIST, ArrayDataset, FashionMNIST, IDXDataset, get_dataset
from .idx import IDXError, read_idx, write_idx
from .loader import DataLoader
from .sources import DatasetNotFoundError, locate, print_progress

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "DataLoader",
    "DatasetNotFoundError",
    "FashionMNIST",
    "IDXDataset",
    "IDXError",
    "MNIST",
    "get_dataset",
    "locate",
    "print_progress",
    "read_idx",
    "write_idx",
]
