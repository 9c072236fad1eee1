"""Layers, functional ops and initialisers with PyTorch names."""
