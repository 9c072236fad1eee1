"""Data: MNIST / Fashion-MNIST from IDX files (found or downloaded), image folders, in-memory data sets, and the
DataLoader."""

from .datasets import DATASETS, MNIST, ArrayDataset, FashionMNIST, IDXDataset, get_dataset
from .folder import BadImageError, FolderError, FolderSpec, ImageFolder, decode_image, load_image_folder
from .idx import IDXError, read_idx, write_idx
from .loader import DataLoader
from .sources import DatasetNotFoundError, locate, print_progress

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "BadImageError",
    "DataLoader",
    "DatasetNotFoundError",
    "FashionMNIST",
    "FolderError",
    "FolderSpec",
    "IDXDataset",
    "IDXError",
    "ImageFolder",
    "MNIST",
    "decode_image",
    "get_dataset",
    "load_image_folder",
    "locate",
    "print_progress",
    "read_idx",
    "write_idx",
]
