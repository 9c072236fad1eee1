"""Optimizers (SGD, Adam, AdamW, Adagrad, RMSprop) and LR schedulers (StepLR, CosineAnnealingLR), as torch.optim.

How step() runs on the device: see optimizer.py; the update kernels are kernels_cl/optim.cl.
"""

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "RMSprop", "StepLR"]
