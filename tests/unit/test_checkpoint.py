"""Checkpoints: exact safetensors round trips, torch interchange, training state, atomic writes, damaged files."""

import json
import os
import random
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import hetero
from hetero import checkpoint, nn, optim
from hetero.checkpoint import CheckpointError
from hetero.train import load_checkpoint, save_checkpoint


def _weights(rng) -> dict[str, np.ndarray]:
    return {
        "conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "conv1.bias": rng.standard_normal(4).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "bn.running_mean": rng.standard_normal(4).astype(np.float32),
        "fc.weight": rng.standard_normal((10, 36)),  # float64 stays float64
        "labels": rng.integers(0, 10, 5).astype(np.int32),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(0.5, np.float32),
    }


def _assert_same(loaded: dict, expected: dict) -> None:
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        v = np.asarray(v)
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
        assert np.array_equal(loaded[k], v), k


class _Model:
    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return dict(self.state)


def test_round_trip_is_exact(tmp_path, rng):
    w = _weights(rng)
    checkpoint.save(w, tmp_path / "w.safetensors")
    _assert_same(checkpoint.load(tmp_path / "w.safetensors"), w)
    checkpoint.save(_Model(w), str(tmp_path / "m.safetensors"), metadata={"arch": "resnet18"})
    _assert_same(checkpoint.load(str(tmp_path / "m.safetensors")), w)
    assert checkpoint.read_metadata(tmp_path / "m.safetensors") == {"arch": "resnet18"}
    assert checkpoint.read_metadata(tmp_path / "w.safetensors") == {}
    assert (os.stat(tmp_path / "w.safetensors").st_mode & 0o777) == 0o644


def test_device_tensors_are_saved_exactly(dev, tmp_path, rng):
    host = {"a.weight": rng.standard_normal((5, 7)).astype(np.float32), "a.idx": np.arange(4, dtype=np.int32)}
    model = _Model({k: hetero.tensor(v, device=dev) for k, v in host.items()})
    checkpoint.save(model, tmp_path / "d.safetensors")
    _assert_same(checkpoint.load(tmp_path / "d.safetensors"), host)


def test_torch_reads_ours_and_we_read_torchs(tmp_path, rng):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    w = {k: v for k, v in _weights(rng).items() if k != "mask"}
    checkpoint.save(w, tmp_path / "ours.safetensors")
    theirs = st_torch.load_file(str(tmp_path / "ours.safetensors"))
    for k, v in w.items():
        assert np.array_equal(theirs[k].numpy(), v), k
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    st_torch.save_file(model.state_dict(), str(tmp_path / "theirs.safetensors"))
    _assert_same(checkpoint.load(tmp_path / "theirs.safetensors"),
                 {k: v.numpy() for k, v in model.state_dict().items()})


def test_bad_inputs_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="tensor names must be strings"):
        checkpoint.save({1: np.zeros(3)}, tmp_path / "x")
    with pytest.raises(ValueError, match="'a' has dtype object"):
        checkpoint.save({"a": np.array([object()])}, tmp_path / "x")
    with pytest.raises(ValueError, match="expected a model with state_dict"):
        checkpoint.save([np.zeros(3)], tmp_path / "x")
    with pytest.raises(ValueError, match="metadata maps strings to strings"):
        checkpoint.save({"a": np.zeros(3)}, tmp_path / "x", metadata={"epoch": 3})
    with pytest.raises(ValueError, match="collides with the optimizer state prefix"):
        checkpoint.save_training(tmp_path / "x", {"optimizer.state.0.x": np.zeros(1)}, None, 0, 0)
    with pytest.raises(ValueError, match="extra holds a set"):
        checkpoint.save_training(tmp_path / "x", {}, None, 0, 0, extra={"s": {1, 2}})
    with pytest.raises(ValueError, match="non-string dict key 3"):
        checkpoint.save_training(tmp_path / "x", {}, None, 0, 0, rng_state={3: "x"})
    assert not list(tmp_path.iterdir()), "a rejected save writes nothing"


# ----- training checkpoints -----

def _trained_adam(dev, rng, steps=3):
    params = [hetero.tensor(rng.standard_normal(s).astype(np.float32), device=dev) for s in [(6,), (3, 4)]]
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], lr=0.01, amsgrad=True)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(steps):
        for p in params:
            p.grad = hetero.tensor(rng.standard_normal(p.shape).astype(np.float32), device=dev)
        opt.step()
        sched.step()
    return params, opt, sched


def test_training_checkpoint_round_trip_and_resume(dev, tmp_path, rng):
    params, opt, sched = _trained_adam(dev, rng)
    model = _Model({"layer.weight": params[1], "layer.bias": params[0]})
    gen = np.random.default_rng(99)
    gen.standard_normal(3)
    rng_state = {"numpy": gen.bit_generator.state, "legacy": np.random.RandomState(5).get_state(),
                 "python": random.Random(3).getstate()}
    extra = {"best_acc": 0.875, "history": [1.5, 0.75], "note": "run 3", "shape": (2, 3), "ok": True, "none": None}
    path = tmp_path / "train.safetensors"
    checkpoint.save_training(path, model, opt, epoch=4, step=1234, rng_state=rng_state, extra=extra, scheduler=sched)

    ck = checkpoint.load_training(path)
    assert ck["epoch"] == 4 and ck["step"] == 1234 and ck["optimizer_class"] == "Adam"
    assert ck["extra"] == extra  # the tuple comes back as a tuple
    _assert_same(ck["model"], {"layer.weight": params[1].numpy(), "layer.bias": params[0].numpy()})
    # RNG states restore generators that continue identically
    g2 = np.random.default_rng(0)
    g2.bit_generator.state = ck["rng_state"]["numpy"]
    assert np.array_equal(g2.standard_normal(4), gen.standard_normal(4))
    legacy = np.random.RandomState(0)
    legacy.set_state(ck["rng_state"]["legacy"])
    assert np.array_equal(legacy.rand(3), np.random.RandomState(5).rand(3))
    r = random.Random()
    r.setstate(ck["rng_state"]["python"])
    assert r.random() == random.Random(3).random()
    # the optimizer state is exact
    saved = opt.state_dict()
    assert ck["optimizer"]["param_groups"] == saved["param_groups"]
    assert set(ck["optimizer"]["state"]) == set(saved["state"])
    for i, entry in saved["state"].items():
        _assert_same(ck["optimizer"]["state"][i], entry)
    # resuming gives the same parameters as going on
    params2 = [hetero.tensor(ck["model"][k], device=dev) for k in ("layer.bias", "layer.weight")]
    opt2 = optim.Adam([{"params": params2[:1]}, {"params": params2[1:]}], amsgrad=True)
    sched2 = optim.StepLR(opt2, step_size=10)  # built before loading, as in torch: building one sets lr
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    for _ in range(3):
        for p, p2 in zip(params, params2):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, p2.grad = hetero.tensor(g, device=dev), hetero.tensor(g, device=dev)
        opt.step()
        opt2.step()
        sched.step()
        sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    for p, p2 in zip(params, params2):
        assert np.array_equal(p.numpy(), p2.numpy())


def test_training_checkpoint_is_a_plain_safetensors_file(dev, tmp_path, rng):
    params, opt, _ = _trained_adam(dev, rng, steps=1)
    path = tmp_path / "t.safetensors"
    checkpoint.save_training(path, {"w": params[0]}, opt, epoch=0, step=1)
    flat = checkpoint.load(path)
    assert np.array_equal(flat["w"], params[0].numpy())
    assert set(flat) == {"w"} | {f"optimizer.state.{i}.{n}" for i in (0, 1)
                                 for n in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
    assert checkpoint.read_metadata(path)["format"] == checkpoint.TRAINING_FORMAT
    ck = checkpoint.load_training(path)
    assert ck["rng_state"] is None and ck["extra"] is None and ck["scheduler"] is None


def test_training_checkpoint_without_optimizer(tmp_path):
    path = tmp_path / "t.safetensors"
    checkpoint.save_training(path, {"w": np.ones(2, np.float32)}, None, epoch=1, step=2)
    ck = checkpoint.load_training(path)
    assert ck["optimizer"] is None and ck["optimizer_class"] is None and ck["epoch"] == 1


def test_weights_file_is_not_a_training_checkpoint(tmp_path):
    path = tmp_path / "w.safetensors"
    checkpoint.save({"w": np.ones(2, np.float32)}, path)
    with pytest.raises(CheckpointError, match=r"w.safetensors: not a hetero training checkpoint"):
        checkpoint.load_training(path)
    checkpoint.save({"w": np.ones(2, np.float32)}, path, metadata={"format": checkpoint.TRAINING_FORMAT})
    with pytest.raises(CheckpointError, match="damaged training checkpoint metadata"):
        checkpoint.load_training(path)


# ----- atomic writes -----

def _old_file(tmp_path, rng):
    path = tmp_path / "ck.safetensors"
    old = {"w": rng.standard_normal(100).astype(np.float32)}
    checkpoint.save(old, path)
    return path, old


@pytest.mark.parametrize("fail_in", ["fsync", "replace", "write"])
def test_failed_write_keeps_the_old_file(tmp_path, rng, monkeypatch, fail_in):
    path, old = _old_file(tmp_path, rng)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if fail_in == "write":
        real_fdopen = os.fdopen

        class HalfWriter:  # writes half of the data, then the disk is full
            def __init__(self, f):
                self.f = f

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                boom()

            def __getattr__(self, name):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

        monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(os, fail_in, boom)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save({"w": np.zeros(5000, np.float32)}, path)
    monkeypatch.undo()
    _assert_same(checkpoint.load(path), old)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "the temporary file is removed"


def test_crash_during_write_keeps_the_old_file(tmp_path, rng):
    """A process killed while writing (after half the data) leaves the old checkpoint readable."""
    path, old = _old_file(tmp_path, rng)
    script = textwrap.dedent(f"""
        import os
        import numpy as np
        from hetero import checkpoint
        real_fdopen = os.fdopen
        class Dying:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *a): pass
            def write(self, data):
                self.f.write(data[: len(data) // 2]); self.f.flush()
                os._exit(9)  # killed mid-write: no cleanup runs
        os.fdopen = lambda fd, mode: Dying(real_fdopen(fd, mode))
        checkpoint.save({{"w": np.zeros(100000, np.float32)}}, {str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    _assert_same(checkpoint.load(path), old)
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert leftovers and all(p.name.startswith(".ck.safetensors.") for p in leftovers)


# ----- damaged and foreign files -----

def test_truncated_files_raise_an_error_naming_the_file(tmp_path, rng):
    path = tmp_path / "full.safetensors"
    checkpoint.save(_weights(rng), path)
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    for cut in (0, 5, 8, header_end // 2, header_end, header_end + 1, (header_end + len(data)) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.safetensors: truncated"):
            checkpoint.load(bad)


def test_foreign_files_raise_an_error_naming_the_file(tmp_path):
    zip_path = tmp_path / "model.pt"  # what torch.save writes: a zip archive
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    text = tmp_path / "notes.txt"
    text.write_text("these are not the weights you are looking for\n" * 3)
    not_json = tmp_path / "garbage.bin"
    not_json.write_bytes((12).to_bytes(8, "little") + b"\xff\xfe{not json}" + b"\0" * 10)
    for path in (zip_path, text):
        with pytest.raises(CheckpointError, match=f"{path.name}: truncated or not a safetensors file"):
            checkpoint.load(path)
    with pytest.raises(CheckpointError, match="garbage.bin: not a safetensors file"):
        checkpoint.load(not_json)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        checkpoint.load(tmp_path / "missing.safetensors")


# ----- issue 15: untrusted files, all-or-nothing restores -----


def _header_file(path, header: dict, payload: bytes = b"") -> None:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + payload)


@pytest.mark.parametrize("header, says", [
    ({"w": {"dtype": "F32", "shape": [2**40, 2**20], "data_offsets": [0, 8]}}, "needs"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}}, "bad shape"),
    ({"w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, "dtype 'Q7'"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, "needs"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": "x"}}, "bad data offsets"),
    ({"w": 5}, "is not an object"),
    ({"__metadata__": {"a": 1}}, "string->string"),
])
def test_headers_are_checked_before_anything_is_allocated(tmp_path, header, says):
    path = tmp_path / "x.safetensors"
    _header_file(path, header, b"\0" * 8)
    with pytest.raises(CheckpointError, match=says):
        checkpoint.load(path)


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_unusable_paths_are_checkpoint_errors(tmp_path, make, says):
    path = tmp_path / "x.safetensors"
    make(path)
    with pytest.raises(CheckpointError, match=says):
        checkpoint.load_training(path)


def test_load_checkpoint_is_all_or_nothing(dev, tmp_path, rng):
    """Weights that load but an optimizer state that does not: nothing is changed."""
    hetero.train.seed_everything(0)
    saved = nn.Linear(3, 2, device=dev)
    opt = optim.SGD(saved.parameters(), lr=0.1, momentum=0.9)
    save_checkpoint(tmp_path / "ck.st", saved, opt, 0, 0)
    hetero.train.seed_everything(1)
    model = nn.Linear(3, 2, device=dev)
    other = optim.SGD([model.weight], lr=0.1)  # one parameter where the file has two
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError):
        load_checkpoint(tmp_path / "ck.st", model, other)
    for k, v in model.state_dict().items():
        assert np.array_equal(v.numpy(), before[k]), k


def test_garbage_scheduler_and_rng_state_are_refused(dev, tmp_path):
    model = nn.Linear(3, 2, device=dev)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    checkpoint.save_training(tmp_path / "a.st", model, opt, 0, 0, scheduler=None, rng_state=[1, 2])
    with pytest.raises(CheckpointError, match="rng_state"):
        load_checkpoint(tmp_path / "a.st", model, opt)
    meta = checkpoint.read_metadata(tmp_path / "a.st")
    meta["scheduler"], meta["rng_state"] = '{"T_max": "x"}', "null"
    checkpoint.save(model, tmp_path / "b.st", meta)
    with pytest.raises(CheckpointError, match="lr schedule"):
        load_checkpoint(tmp_path / "b.st", model, opt, sched)


def test_a_schedule_that_makes_no_lr_is_refused(dev, tmp_path):
    """Found by fuzz/fuzz_checkpoint.py: a stored T_max of 0 was loaded, and the next lr divided by zero."""
    model = nn.Linear(3, 2, device=dev)
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    save_checkpoint(tmp_path / "a.st", model, opt, 0, 1, sched)
    meta = checkpoint.read_metadata(tmp_path / "a.st")
    state = json.loads(meta["scheduler"])
    for bad in ({"T_max": 0}, {"base_lrs": [float("inf")]}):
        meta["scheduler"] = json.dumps({**state, **bad})
        checkpoint.save(checkpoint.load(tmp_path / "a.st"), tmp_path / "b.st", meta)
        with pytest.raises(CheckpointError, match="lr schedule"):
            load_checkpoint(tmp_path / "b.st", model, opt, sched)
        assert sched.T_max == 4 and sched.get_last_lr() == [0.1]
    meta["scheduler"], meta["step"] = json.dumps(state), str(10**400)
    checkpoint.save(checkpoint.load(tmp_path / "a.st"), tmp_path / "c.st", meta)
    with pytest.raises(CheckpointError, match="must be counts"):
        load_checkpoint(tmp_path / "c.st", model, opt, sched)
