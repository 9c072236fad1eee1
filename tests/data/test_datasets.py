"""Data sets: ArrayDataset, MNIST/Fashion-MNIST lookup order, the offline error and the mocked download."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from hetero import HeteroError
from hetero.data import (
    MNIST,
    ArrayDataset,
    DatasetNotFoundError,
    FashionMNIST,
    IDXError,
    get_dataset,
    sources,
    write_idx,
)
from tests.data.fakes import make_split


def test_array_dataset(rng):
    images = rng.integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)
    labels = np.array([0, 2, 1, 2, 0], np.int32)
    ds = ArrayDataset(images, labels, name="tiny", classes=["a", "b", "c"])
    assert (len(ds), ds.name, ds.classes, ds.image_shape) == (5, "tiny", ["a", "b", "c"], (3, 4, 4))
    assert ds.labels.dtype == np.int64
    image, label = ds[3]
    np.testing.assert_array_equal(image, images[3])
    assert label == 2
    assert ds.mean == pytest.approx(images.mean() / 255)
    assert ds.std == pytest.approx(images.std() / 255)
    assert not ds.images.flags.writeable  # shared by loaders and threads
    assert images.flags.writeable  # the caller's array is left alone


def test_array_dataset_defaults_and_floats():
    images = np.array([[[0.0, 1.0]], [[0.5, 0.5]]], np.float32)  # (2, 1, 2): float data is taken as is
    ds = ArrayDataset(images, [1, 3])
    assert ds.classes == ["0", "1", "2", "3"] and ds.name == "arrays"
    assert ds.mean == pytest.approx(0.5) and ds.std == pytest.approx(np.sqrt(0.125))
    assert ArrayDataset(images, [0, 1], mean=0.1, std=0.2).mean == 0.1


@pytest.mark.parametrize("images, labels, classes, message", [
    (np.zeros((2, 4), np.uint8), [0, 1], None, r"images must be \(N, H, W\)"),
    (np.zeros((2, 4, 4), np.int32), [0, 1], None, "images must be uint8 or float"),
    (np.zeros((2, 4, 4), np.uint8), [0.5, 1], None, "labels must be integers"),
    (np.zeros((2, 4, 4), np.uint8), [0, 1, 1], None, "2 images but 3 labels"),
    (np.zeros((2, 4, 4), np.uint8), [0, -1], None, "labels must be >= 0"),
    (np.zeros((2, 4, 4), np.uint8), [0, 2], ["a", "b"], "label 2 but only 2 classes"),
])
def test_array_dataset_rejects(images, labels, classes, message):
    with pytest.raises(ValueError, match=message):
        ArrayDataset(images, labels, classes=classes)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", [".", "mnist", "MNIST/raw"])
def test_mnist_from_root(isolated, gz, layout):
    images, labels = make_split(isolated / "data" / layout, 7, train=False, gz=gz)
    ds = MNIST(root=isolated / "data", train=False, download=False)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (7, 28, 28)
    assert (ds.name, ds.mean, ds.std, ds.classes) == ("mnist", 0.1307, 0.3081, [str(i) for i in range(10)])
    assert ds.files[0].parent == isolated / "data" / layout
    assert ds.files[0].name.endswith(".gz") == gz


def test_fashion_mnist(isolated):
    make_split(isolated / "data" / "FashionMNIST" / "raw", 4)
    make_split(isolated / "data" / "MNIST" / "raw", 5)  # both data sets under one root
    ds = get_dataset("fashion-mnist", root=isolated / "data", download=False)
    assert isinstance(ds, FashionMNIST) and len(ds) == 4
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert (ds.mean, ds.std) == (0.2860, 0.3530)
    assert len(get_dataset("MNIST", root=isolated / "data", download=False)) == 5


def test_lookup_order(isolated, monkeypatch):
    """root, then $HETERO_DATA_DIR, then ~/.cache/hetero/datasets, then the system folder."""
    places = {
        "root": isolated / "root",
        "env": isolated / "env",
        "cache": isolated / "home" / ".cache" / "hetero" / "datasets" / "mnist",
        "system": isolated / "system" / "mnist",
    }
    for n, folder in enumerate(places.values()):
        make_split(folder, n + 1)  # each place holds a data set of its own size
    monkeypatch.setenv("HETERO_DATA_DIR", str(places["env"]))
    assert len(MNIST(root=places["root"], download=False)) == 1
    assert len(MNIST(download=False)) == 2
    monkeypatch.delenv("HETERO_DATA_DIR")
    assert len(MNIST(download=False)) == 3
    monkeypatch.setenv("HOME", str(isolated / "elsewhere"))
    assert len(MNIST(download=False)) == 4
    # a root named on purpose is the only place looked at: no silent training on other files
    with pytest.raises(DatasetNotFoundError, match="explicit root is the only place"):
        MNIST(root=isolated / "empty", download=False)


def test_offline_error_lists_every_place(isolated, monkeypatch):
    monkeypatch.setenv("HETERO_DATA_DIR", str(isolated / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        get_dataset("mnist", root=isolated / "root", train=True)
    text = str(info.value)
    assert isinstance(info.value, HeteroError)
    assert "mnist training files (train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz) not found" in text
    assert str(isolated / "root") in text and str(isolated / "env") not in text  # only the root named
    assert "download into" not in text
    with pytest.raises(DatasetNotFoundError) as info:
        get_dataset("mnist", train=True)
    text = str(info.value)
    for place in (isolated / "env", isolated / "home" / ".cache" / "hetero" / "datasets", isolated / "system"):
        assert str(place) in text
    assert "MNIST/raw" in text
    assert (isolated / "mirror").as_uri() + "/train-images-idx3-ubyte.gz" in text  # the failed download
    assert "--data DIR" in text and "HETERO_DATA_DIR=DIR" in text


def test_error_without_download_names_missing_companion(isolated):
    folder = isolated / "root"
    make_split(folder, 3, train=False)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=folder, train=False, download=False)
    text = str(info.value)
    assert "explicit root is the only place looked at" in text
    assert f"{folder / 't10k-images-idx3-ubyte.gz'} is there but t10k-labels-idx1-ubyte[.gz] is missing" in text
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(train=False, download=False)
    text = str(info.value)
    assert "$HETERO_DATA_DIR: not set" in text
    assert "download: not attempted (download=False)" in text


def _serve(isolated, monkeypatch, n=6, train=True, wrong_md5=False):
    """Put a split's .gz files on the file:// mirror and make their md5 sums the expected ones."""
    images, labels = make_split(isolated / "mirror", n, train=train)
    source = sources.SOURCES["mnist"]
    md5 = dict(source.md5)
    for path in (isolated / "mirror").iterdir():
        md5[path.name] = "0" * 32 if wrong_md5 else hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setitem(sources.SOURCES, "mnist", sources.Source(source.name, source.dirnames, source.mirrors, md5))
    return images, labels


def test_download(isolated, monkeypatch):
    images, labels = _serve(isolated, monkeypatch)
    calls = []
    ds = MNIST(progress=lambda name, done, total: calls.append((name, done, total)))
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    cache = isolated / "home" / ".cache" / "hetero" / "datasets" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert ds.files[0] == cache / "train-images-idx3-ubyte.gz"
    size = (cache / "train-images-idx3-ubyte.gz").stat().st_size
    assert calls[0] == ("train-images-idx3-ubyte.gz", 0, size)
    assert ("train-images-idx3-ubyte.gz", size, size) in calls
    assert calls[-1][0] == "train-labels-idx1-ubyte.gz" and calls[-1][1] == calls[-1][2]
    assert oct((cache / "train-images-idx3-ubyte.gz").stat().st_mode & 0o777) == "0o644"
    for path in (isolated / "mirror").iterdir():
        path.unlink()  # the next load finds the cached files and does not download
    assert len(MNIST(progress=lambda *a: pytest.fail("downloaded again"))) == 6


def test_download_default_progress_prints_to_stderr(isolated, monkeypatch, capsys):
    _serve(isolated, monkeypatch, train=False)
    MNIST(train=False)
    err = capsys.readouterr().err
    assert "downloading t10k-images-idx3-ubyte.gz: 100%" in err
    assert "downloading t10k-labels-idx1-ubyte.gz: 100%" in err


def test_download_md5_mismatch_keeps_nothing(isolated, monkeypatch):
    _serve(isolated, monkeypatch, wrong_md5=True)
    with pytest.raises(DatasetNotFoundError, match=r"train-images-idx3-ubyte.gz: md5 [0-9a-f]{32} but 0{32} was"):
        MNIST(progress=lambda *a: None)
    cache = isolated / "home" / ".cache" / "hetero" / "datasets" / "mnist"
    assert list(cache.iterdir()) == []  # neither the file nor its temporary is left behind


def test_download_falls_back_to_the_next_mirror(isolated, monkeypatch):
    _serve(isolated, monkeypatch)
    source = sources.SOURCES["mnist"]
    dead = (isolated / "dead").as_uri() + "/"
    monkeypatch.setitem(sources.SOURCES, "mnist",
                        sources.Source(source.name, source.dirnames, (dead, *source.mirrors), source.md5))
    assert len(MNIST(progress=lambda *a: None)) == 6


def test_mislabelled_files(isolated):
    make_split(isolated / "root", 5, n_labels=4)
    with pytest.raises(IDXError, match=r"train-images-idx3-ubyte.gz holds 5 images but .*"
                                       r"train-labels-idx1-ubyte.gz holds 4 labels"):
        MNIST(root=isolated / "root", download=False)


def test_label_out_of_range(isolated):
    folder = isolated / "root"
    make_split(folder, 3)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.array([1, 10, 2], np.uint8))
    with pytest.raises(IDXError, match="train-labels-idx1-ubyte.gz: label 10 is out of range 0..9"):
        MNIST(root=folder, download=False)


def test_swapped_files(isolated):
    folder = isolated / "root"
    make_split(folder, 3)
    os.replace(folder / "train-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    make_split(isolated / "other", 3)
    os.replace(isolated / "other" / "train-labels-idx1-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz: magic number 0x00000801 but 0x00000803"):
        MNIST(root=folder, download=False)


def test_corrupt_file_is_an_error_not_a_fallback(isolated):
    """A damaged file where the files were found stops the lookup: no silent use of another copy."""
    folder = isolated / "root"
    make_split(folder, 3)
    make_split(isolated / "system" / "mnist", 4)
    data = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(data[:-10])
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz: corrupt gzip data"):
        MNIST(root=folder, download=False)


def test_another_data_sets_files_are_recognised(isolated):
    """Full-size files with MNIST's pixel mean, asked for as Fashion-MNIST, are refused with a hint."""
    folder = isolated / "root"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = (rng.random((10000, 28, 28)) < 0.1307).astype(np.uint8) * 255  # pixel mean ~0.1307
    write_idx(folder / "t10k-images-idx3-ubyte", images)
    write_idx(folder / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 10000, dtype=np.uint8))
    with pytest.raises(IDXError, match=r"pixel mean 0.13\d+, but fashion-mnist's is 0.286.*look like mnist's"):
        FashionMNIST(root=folder, train=False, download=False)
    assert len(MNIST(root=folder, train=False, download=False)) == 10000


def test_unknown_name():
    with pytest.raises(ValueError, match="dataset name 'cifar10' is unknown; choose one of mnist, fashion-mnist"):
        get_dataset("cifar10")


@pytest.mark.skipif(not os.environ.get("HETERO_DATA_DIR"), reason="set HETERO_DATA_DIR to the real MNIST files")
def test_real_mnist():
    train, test = get_dataset("mnist", download=False), get_dataset("mnist", train=False, download=False)
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert len(train.labels) == 60000 and len(test.labels) == 10000
    for ds in (train, test):
        assert ds.images.dtype == np.uint8
        assert set(np.unique(ds.labels)) == set(range(10))
    assert train.images.mean() / 255 == pytest.approx(0.1307, abs=1e-3)


# ----- issue 15: data edge cases and the bundled MNIST -----


def test_images_of_another_size_are_refused(isolated):
    make_split(isolated / "root", 5, shape=(32, 32))
    with pytest.raises(IDXError, match="32x32 pixels, but mnist images are 28x28"):
        MNIST(root=isolated / "root", download=False)


def test_an_empty_data_set_is_refused(isolated):
    make_split(isolated / "root", 0)
    with pytest.raises(IDXError, match="holds no images"):
        MNIST(root=isolated / "root", download=False)


def test_an_unsearchable_folder_is_a_clear_error(isolated, monkeypatch):
    make_split(isolated / "root", 3)
    real = Path.is_file

    def is_file(self):  # what stat() does in a folder without search permission (root ignores chmod)
        if self.parent == isolated / "root":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    with pytest.raises(DatasetNotFoundError, match="cannot look into .*Permission denied"):
        MNIST(root=isolated / "root", download=False)


def test_bundled_mnist_comes_after_the_users_places_and_before_a_download(isolated, monkeypatch):
    bundled = isolated / "bundled"
    images, _ = make_split(bundled / "mnist", 6)
    monkeypatch.setattr(sources, "BUNDLED_DIR", bundled)
    md5 = {p.name: sources._md5(p) for p in (bundled / "mnist").iterdir()}
    monkeypatch.setitem(sources.SOURCES, "mnist", dataclasses.replace(sources.SOURCES["mnist"], md5=md5))
    assert len(MNIST(download=False)) == 6
    make_split(isolated / "home" / ".cache" / "hetero" / "datasets" / "mnist", 4)  # the user's own copy wins
    assert len(MNIST(download=False)) == 4


def test_bundled_mnist_with_a_wrong_md5_is_not_used(isolated, monkeypatch):
    make_split(isolated / "bundled" / "mnist", 6)  # the md5 sums are the real files', these differ
    with pytest.raises(DatasetNotFoundError, match="md5 sums do not match"):
        MNIST(download=False)


def test_the_checkout_carries_mnist():
    """data/mnist/ holds the real files with the md5 sums downloads are checked against."""
    if sources.BUNDLED_DIR is None:
        pytest.skip("not a source checkout")
    folder = sources.BUNDLED_DIR / "mnist"
    source = sources.SOURCES["mnist"]
    for train in (True, False):
        found = tuple(folder / (stem + ".gz") for stem in sources.split_files(train))
        assert sources._verified(source, found) == found
    readme = (folder / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "Yann LeCun, Corinna Cortes and" in readme
