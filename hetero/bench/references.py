"""Reference columns on the host: `numpy` (memcpy, numpy GEMM, hetero/reference/ ops) and `torch-cpu`
(the same ops and models with torch on all CPU threads), each with a runner like hetero's."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

import numpy as np

from ..reference import conv2d as ref_conv
from ..reference import linear as ref_linear
from ..reference import local_response_norm as ref_lrn
from ..reference import pool2d as ref_pool
from .device_figures import Unsupported
from .models import MODEL_KWARGS, NUM_CLASSES, batch_data, batch_size_for, check_model
from .ops import OpSpec
from .timing import Settings, rate, sample

NUMPY_MODELS_REASON = ("hetero/reference/ holds per-op float64 oracles, not whole networks with an optimizer; "
                       "no numpy model runner")


def import_torch():
    """torch, or None with the reason it does not import."""
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        return None, f"torch does not import: {type(e).__name__}: {e}"
    return torch, ""


def describe(ref: str) -> dict:
    """The devices-list entry for a reference column."""
    if ref == "numpy":
        return {"id": "numpy", "kind": "reference", "available": True,
                "name": f"numpy {np.__version__} on {platform.machine()} ({os.cpu_count()} threads)"}
    if ref == "torch-cpu":
        torch, why = import_torch()
        if torch is None:
            return {"id": ref, "kind": "reference", "available": False, "name": "torch-cpu", "reason": why}
        return {"id": ref, "kind": "reference", "available": True,
                "name": f"torch {torch.__version__} CPU ({os.cpu_count()} threads)"}
    raise ValueError(f"bench: unknown reference {ref!r}; choose from numpy, torch-cpu")


# ---- numpy ------------------------------------------------------------------------------------------------

def numpy_memory(settings: Settings, out: dict) -> None:
    src = np.ones(settings.copy_bytes // 4, np.float32)
    dst = np.empty_like(src)
    out["copy"] = rate(2 * settings.copy_bytes / 1e9, sample(lambda: np.copyto(dst, src), None, settings))


def numpy_gemm(settings: Settings, out: dict) -> None:
    n = settings.gemm_n
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    out["fp32"] = rate(2 * n**3 / 1e9, sample(lambda: np.matmul(a, b, out=c), None, settings))


def numpy_gemm_fp16(settings: Settings, out: dict) -> None:
    raise Unsupported("numpy has no fast float16 GEMM (it computes float16 through slow loops)")


def _numpy_op(spec: OpSpec, x: np.ndarray, w: np.ndarray | None, g: np.ndarray) -> tuple[Callable, Callable]:
    kw = spec.kwargs
    if spec.name in ("conv", "depthwise"):
        pad, groups = kw["padding"], kw.get("groups", 1)
        return (lambda: ref_conv.conv2d_forward(x, w, None, 1, pad, 1, groups),
                lambda: ref_conv.conv2d_backward(g, x, w, 1, pad, 1, groups))
    if spec.name == "max_pool":
        k = kw["kernel_size"]
        _, idx = ref_pool.max_pool2d(x, k)
        return lambda: ref_pool.max_pool2d(x, k), lambda: ref_pool.max_pool2d_backward(g, idx, x.shape)
    if spec.name == "lrn":
        args = (kw["size"], kw["alpha"], kw["beta"], kw["k"])
        return (lambda: ref_lrn.local_response_norm(x, *args),
                lambda: ref_lrn.local_response_norm_backward(g, x, *args))
    if spec.name == "linear":
        return lambda: ref_linear.linear_forward(x, w), lambda: ref_linear.linear_backward(g, x, w, False)
    raise ValueError(f"bench: unknown op {spec.name!r}")


def numpy_op(spec: OpSpec, settings: Settings, out: dict) -> None:
    fwd, bwd = _numpy_op(spec, *spec.inputs())
    out["forward"] = rate(spec.work(False), sample(fwd, None, settings))
    out["backward"] = rate(spec.work(True), sample(bwd, None, settings))


def numpy_model(name: str, settings: Settings, out: dict) -> None:
    raise Unsupported(NUMPY_MODELS_REASON)


# ---- torch ------------------------------------------------------------------------------------------------

class torch_threads:
    """torch on every CPU thread for the duration, then as before."""

    def __init__(self):
        self.torch, _ = import_torch()

    def __enter__(self):
        if self.torch is not None:
            self.old = self.torch.get_num_threads()
            self.torch.set_num_threads(os.cpu_count() or 1)
        return self.torch

    def __exit__(self, *exc):
        if self.torch is not None:
            self.torch.set_num_threads(self.old)


def torch_memory(settings: Settings, out: dict) -> None:
    with torch_threads() as torch:
        src = torch.ones(settings.copy_bytes // 4)
        dst = torch.empty_like(src)
        out["copy"] = rate(2 * settings.copy_bytes / 1e9, sample(lambda: dst.copy_(src), None, settings))


def torch_gemm(settings: Settings, out: dict) -> None:
    with torch_threads() as torch:
        n = settings.gemm_n
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        out["fp32"] = rate(2 * n**3 / 1e9, sample(lambda: torch.mm(a, b, out=c), None, settings))


def torch_gemm_fp16(settings: Settings, out: dict) -> None:
    with torch_threads() as torch:
        n = settings.gemm_n
        a, b = torch.randn(n, n).half(), torch.randn(n, n).half()
        out["fp16"] = rate(2 * n**3 / 1e9, sample(lambda: torch.mm(a, b), None, settings))


def torch_op(spec: OpSpec, settings: Settings, out: dict) -> None:
    with torch_threads() as torch:
        tf = torch.nn.functional
        hx, hw, hg = spec.inputs()
        x = torch.from_numpy(hx).requires_grad_()
        w = None if hw is None else torch.from_numpy(hw).requires_grad_()
        g = torch.from_numpy(hg)
        kw = spec.kwargs
        if spec.name in ("conv", "depthwise"):
            def fwd():
                return tf.conv2d(x, w, None, padding=kw["padding"], groups=kw.get("groups", 1))
        elif spec.name == "max_pool":
            def fwd():
                return tf.max_pool2d(x, kw["kernel_size"])
        elif spec.name == "lrn":
            def fwd():
                return tf.local_response_norm(x, kw["size"], kw["alpha"], kw["beta"], kw["k"])
        else:
            def fwd():
                return tf.linear(x, w)
        inputs = [t for t in (x, w) if t is not None]
        out["forward"] = rate(spec.work(False), sample(fwd, None, settings))
        y = fwd()
        out["backward"] = rate(spec.work(True), sample(
            lambda: torch.autograd.grad(y, inputs, g, retain_graph=True), None, settings))


def _torch_model(torch, name: str):
    """torch.nn versions of hetero.models' lenet5, alexnet_mnist and resnet18 (small input, 1 channel)."""
    nn = torch.nn
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, NUM_CLASSES))
    if name == "alexnet_mnist":
        def lrn():
            return nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)
        return nn.Sequential(
            nn.Conv2d(1, 96, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(256 * 3 * 3, NUM_CLASSES))
    if name == "resnet18":
        return _torch_resnet18(torch, MODEL_KWARGS[name]["in_channels"])
    raise ValueError(f"bench: no torch model for {name!r}")


def _torch_resnet18(torch, in_channels: int):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                      nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(cout))
            self.short = nn.Identity()
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    layers = [nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, NUM_CLASSES)]
    return nn.Sequential(*layers)


class TorchModelRunner:
    """The same model, data and optimizer in torch on the CPU: train() one SGD step, infer() a forward."""

    def __init__(self, name: str, batch: int):
        check_model(name)
        torch, why = import_torch()
        if torch is None:
            raise Unsupported(why)
        self.torch = torch
        torch.manual_seed(0)
        self.model = _torch_model(torch, name)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        x, y = batch_data(batch)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y).long()

    def train(self) -> None:
        if not self.model.training:
            self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def infer(self) -> None:
        if self.model.training:
            self.model.eval()
        with self.torch.no_grad():
            self.model(self.x)

    def sync(self) -> None:
        pass


def torch_model(name: str, settings: Settings, out: dict) -> None:
    batch = batch_size_for(name, settings)
    with torch_threads():
        runner = TorchModelRunner(name, batch)
        out["train"] = rate(batch, sample(runner.train, None, settings))
        out["inference"] = rate(batch, sample(runner.infer, None, settings))
