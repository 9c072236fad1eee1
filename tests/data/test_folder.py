"""Image folders: layouts, the seeded split, decoding (sizes, channels, bit depths), bad files, the spec a
recipe stores, and the DataLoader on top; tiny PNG folders made in tmp_path, no device needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hetero import HeteroError
from hetero import recipe as R
from hetero.data import BadImageError, DataLoader, FolderError, FolderSpec, decode_image, load_image_folder
from hetero.data.folder import DecodeProgress, load_folder_split, plan_image_folder


def write_images(folder: Path, counts: dict[str, int], rng: np.random.Generator, size=(6, 5),
                 mode: str = "L") -> dict[Path, np.ndarray]:
    """counts[class] random PNGs in folder/<class>/; the pixels written, by path."""
    written = {}
    for name, n in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = size if mode == "L" else (*size, len(mode))
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            path = folder / name / f"img{i:02d}.png"
            Image.fromarray(pixels, mode).save(path)
            written[path] = pixels
    return written


def test_class_folders_split_by_seed_and_fraction(tmp_path, rng):
    written = write_images(tmp_path, {"zebra": 10, "ant": 10, "cat": 20}, rng)
    train, test = load_image_folder(tmp_path, test_fraction=0.2, seed=3)
    assert train.classes == test.classes == ["ant", "cat", "zebra"]  # sorted names are the ids
    assert train.images.shape == (32, 1, 6, 5) and test.images.shape == (8, 1, 6, 5)
    assert train.images.dtype == np.uint8
    # each class keeps its share of the test split
    assert np.bincount(test.labels, minlength=3).tolist() == [2, 4, 2]
    assert np.bincount(train.labels, minlength=3).tolist() == [8, 16, 8]
    for split in (train, test):  # pixels and labels as written (PNG is lossless)
        for path, image, label in zip(split.paths, split.images, split.labels):
            np.testing.assert_array_equal(image[0], written[path])
            assert split.classes[label] == path.parent.name
    assert not set(train.paths) & set(test.paths) and len(set(train.paths) | set(test.paths)) == 40

    again = load_image_folder(tmp_path, test_fraction=0.2, seed=3)
    other = load_image_folder(tmp_path, test_fraction=0, seed=4)
    assert again[1].paths == test.paths  # the same seed draws the same split
    assert other[1] is None  # test_fraction 0 holds nothing out
    assert load_image_folder(tmp_path, test_fraction=0.2, seed=4)[1].paths != test.paths

    # normalisation: the training split's per-channel moments, shared by the test split
    pixels = train.images.astype(np.float64) / 255
    assert train.mean == pytest.approx([pixels.mean()]) and train.std == pytest.approx([pixels.std()])
    assert test.mean == train.mean and test.std == train.std
    assert train.spec.to_dict() == test.spec.to_dict()


def test_train_and_test_subfolders_are_the_split(tmp_path, rng):
    write_images(tmp_path / "train", {"a": 3, "b": 2}, rng)
    write_images(tmp_path / "test", {"b": 2}, rng)  # a test class may be missing
    train, test = load_image_folder(tmp_path, test_fraction=0.5)
    assert (len(train), len(test), train.classes) == (5, 2, ["a", "b"])
    assert test.labels.tolist() == [1, 1] and train.labels.tolist() == [0, 0, 0, 1, 1]
    assert train.spec.layout == "folders"


def test_loader_batches_an_image_folder_unchanged(tmp_path, rng):
    write_images(tmp_path, {"a": 4, "b": 4}, rng, size=(4, 4), mode="RGB")
    train, _ = load_image_folder(tmp_path, test_fraction=0)
    assert train.spec.channels == 3 and len(train.mean) == 3
    x, y = next(iter(DataLoader(train, 8, device=None, prefetch=False)))
    assert x.shape == (8, 3, 4, 4) and x.dtype == np.float32 and y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    mean, std = np.array(train.mean).reshape(1, 3, 1, 1), np.array(train.std).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(x, (train.images / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    # per channel: every channel of the normalised training images has mean 0 and std 1
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-4)


def test_given_normalisation_and_channel_conversion(tmp_path, rng):
    written = write_images(tmp_path, {"a": 2, "b": 2}, rng, size=(3, 3), mode="RGB")
    train, _ = load_image_folder(tmp_path, channels=1, test_fraction=0, mean=0.5, std=[0.25])
    assert train.images.shape == (4, 1, 3, 3) and train.mean == [0.5] and train.std == [0.25]
    for path, image in zip(train.paths, train.images):  # Pillow's own RGB -> L conversion
        np.testing.assert_array_equal(image[0], np.asarray(Image.fromarray(written[path], "RGB").convert("L")))
    with pytest.raises(FolderError, match="std"):
        load_image_folder(tmp_path, test_fraction=0, std=[1, 1])
    with pytest.raises(FolderError, match="channels must be 1"):
        load_image_folder(tmp_path, channels=2)


def test_resize_mixed_sizes_and_skip_bad(tmp_path, rng):
    write_images(tmp_path, {"a": 3, "b": 3}, rng, size=(8, 8))
    odd = tmp_path / "b" / "wide.png"
    Image.fromarray(rng.integers(0, 256, (8, 12), dtype=np.uint8), "L").save(odd)
    with pytest.raises(BadImageError) as e:
        load_image_folder(tmp_path, test_fraction=0)
    assert e.value.path == odd and "is 8x12 (HxW)" in str(e.value) and "--image-size H W" in str(e.value)

    resized, _ = load_image_folder(tmp_path, image_size=(4, 6), test_fraction=0)
    assert resized.images.shape == (7, 1, 4, 6)
    index = resized.paths.index(odd)
    expected = Image.open(odd).resize((6, 4), Image.BILINEAR)
    np.testing.assert_array_equal(resized.images[index, 0], np.asarray(expected))

    skipped, _ = load_image_folder(tmp_path, test_fraction=0, skip_bad=True)
    assert len(skipped) == 6 and [p for p, _ in skipped.skipped] == [odd]
    assert skipped.spec.skip_bad is True


def test_mixed_channels_are_refused_unless_channels_given(tmp_path, rng):
    write_images(tmp_path, {"a": 2, "b": 2}, rng)
    colour = tmp_path / "b" / "colour.png"
    Image.fromarray(rng.integers(0, 256, (6, 5, 4), dtype=np.uint8), "RGBA").save(colour)
    with pytest.raises(BadImageError, match="colour but the folder's first image is grayscale.*--channels"):
        load_image_folder(tmp_path, test_fraction=0)
    grey, _ = load_image_folder(tmp_path, channels=1, test_fraction=0)
    rgb, _ = load_image_folder(tmp_path, channels=3, test_fraction=0)
    assert grey.images.shape == (5, 1, 6, 5) and rgb.images.shape == (5, 3, 6, 5)
    i = rgb.paths.index(colour)  # alpha dropped, colour kept
    np.testing.assert_array_equal(rgb.images[i].transpose(1, 2, 0), np.asarray(Image.open(colour).convert("RGB")))


def test_unreadable_images_and_other_files(tmp_path, rng):
    write_images(tmp_path, {"a": 3, "b": 3}, rng)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    (tmp_path / "b" / "notes.txt").write_text("not an image, and not named like one")
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(BadImageError) as e:
        load_image_folder(tmp_path, test_fraction=0)
    assert e.value.path == tmp_path / "a" / "broken.png" and "--skip-bad" in str(e.value)
    assert isinstance(e.value, HeteroError) and isinstance(e.value, ValueError)
    train, _ = load_image_folder(tmp_path, test_fraction=0, skip_bad=True)
    assert len(train) == 6 and len(train.skipped) == 1
    assert train.ignored == (tmp_path / "b" / "notes.txt",)
    with pytest.raises(BadImageError, match="not an image Pillow can read"):
        decode_image(tmp_path / "b" / "notes.txt", 1)


def test_sixteen_bit_and_jpeg(tmp_path):
    deep = np.array([[0, 257, 65535], [1000, 30000, 65000]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit grayscale PNG
    np.testing.assert_array_equal(decode_image(tmp_path / "deep.png", 1)[0], np.rint(deep / 257).astype(np.uint8))
    flat = np.full((8, 8, 3), (200, 100, 50), np.uint8)
    Image.fromarray(flat, "RGB").save(tmp_path / "flat.jpg", quality=95)
    decoded = decode_image(tmp_path / "flat.jpg", 3)
    assert decoded.shape == (3, 8, 8)
    np.testing.assert_allclose(decoded.reshape(3, -1).mean(axis=1), [200, 100, 50], atol=3)


@pytest.mark.parametrize("make, words", [
    (lambda d: None, ["no such folder"]),
    (lambda d: (d.mkdir(), Image.new("L", (2, 2)).save(d / "x.png")), ["1 images but no class subfolders"]),
    (lambda d: (d / "only").mkdir(parents=True), ["only the class folder only/", "at least"]),
    (lambda d: ((d / "a").mkdir(parents=True), (d / "b").mkdir()), ["holds no images"]),
    (lambda d: (d / "train" / "a").mkdir(parents=True), ["train/ alone", "test/<class>/"]),
    (lambda d: ((d / "train").mkdir(parents=True), (d / "test").mkdir(), (d / "cats").mkdir()),
     ["class-like folders cats"]),
])
def test_folder_layout_errors_say_what_to_do(tmp_path, make, words):
    folder = tmp_path / "data"
    make(folder)
    with pytest.raises(FolderError) as e:
        plan_image_folder(folder)
    for w in words:
        assert w in str(e.value)


def test_test_classes_must_be_training_classes(tmp_path, rng):
    write_images(tmp_path / "train", {"a": 2, "b": 2}, rng)
    write_images(tmp_path / "test", {"c": 1}, rng)
    with pytest.raises(FolderError, match="class folder.s. c have no match"):
        plan_image_folder(tmp_path)


def test_progress_reports_large_folders(tmp_path, rng, capsys):
    write_images(tmp_path, {"a": 6, "b": 6}, rng, size=(2, 2))
    calls = []
    load_image_folder(tmp_path, test_fraction=0.5, progress=lambda what, done, total: calls.append((done, total)))
    assert calls == [(6, 6), (6, 6)]  # the end of each split (fewer than _PROGRESS_EVERY images)
    printer = DecodeProgress(minimum=10)
    for done in (1, 4, 7, 10):
        printer("DIR (train)", done, 10)
    printer("small", 1, 9)  # under the minimum: silent
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"decoding DIR (train): {d}/10 images ({10 * d}%)" for d in (1, 4, 7, 10)]


def test_spec_reads_the_folder_again(tmp_path, rng):
    write_images(tmp_path / "data", {"a": 5, "b": 5}, rng)
    train, test = load_image_folder(tmp_path / "data", image_size=(3, 3), test_fraction=0.3, seed=1)
    spec = FolderSpec.from_dict(json.loads(json.dumps(train.spec.to_dict())))
    assert spec == train.spec and spec.path == str(tmp_path / "data")
    again = load_folder_split(spec, train=False)
    assert again.paths == test.paths and np.array_equal(again.images, test.images)
    assert again.mean == train.mean  # the recorded normalisation, not the test split's own

    (tmp_path / "data").rename(tmp_path / "moved")
    moved = load_folder_split(spec, train=True, root=tmp_path / "moved")
    assert np.array_equal(moved.images, train.images) and moved.spec.path == str(tmp_path / "moved")
    write_images(tmp_path / "moved", {"c": 1}, rng)
    with pytest.raises(FolderError, match=r"classes are now \[a, b, c\].*trained on \[a, b\]"):
        load_folder_split(spec, root=tmp_path / "moved")


@pytest.mark.parametrize("change, words", [
    ({"channels": 2}, ["channels must be 1 or 3"]),
    ({"classes": ["a"]}, ["2 to 65536 distinct"]),
    ({"image_size": [0, 28]}, ["image_size must be (H, W)"]),
    ({"image_size": [10**6, 28]}, ["each 1 to 4096"]),
    ({"mean": [0.1, 0.2]}, ["mean must be 1 finite number"]),
    ({"std": [0.0]}, ["std must be"]),
    ({"test_fraction": 1.0}, ["test_fraction"]),
    ({"layout": "zip"}, ["layout must be one of fraction, folders"]),
    ({"colour": 1}, ["unknown key(s) colour"]),
])
def test_spec_names_the_bad_key(change, words):
    good = {"path": "/data", "classes": ["a", "b"], "channels": 1, "image_size": [28, 28], "mean": [0.1],
            "std": [0.3]}
    assert FolderSpec.from_dict(good).image_size == (28, 28)
    with pytest.raises(FolderError) as e:
        FolderSpec.from_dict({**good, **change})
    for w in words:
        assert w in str(e.value)


# ----- in a training recipe -----


def _spec(channels: int = 1, size=(28, 28), classes=("cat", "dog", "emu")) -> dict:
    return FolderSpec("/data/pets", tuple(classes), channels, size, (0.5,) * channels, (0.25,) * channels).to_dict()


def test_recipe_records_the_folder_and_round_trips():
    r = R.TrainingRecipe(model="resnet18", dataset="folder", data_folder=_spec(3, (32, 32)))
    assert r.model_kwargs == {"num_classes": 3, "in_channels": 3, "small_input": True}  # from the folder
    assert r.folder.classes == ("cat", "dog", "emu") and r.folder.image_size == (32, 32)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["data_folder"]["path"] == "/data/pets" and R.TrainingRecipe.from_dict(d) == r
    assert R.TrainingRecipe(dataset="folder", data_folder=_spec()).model_kwargs == {"num_classes": 3}

    mnist = r.replace(dataset="mnist")  # another data set reads no folder, and its model kwargs follow
    assert mnist.data_folder is None and mnist.model_kwargs["num_classes"] == 10
    assert "data_folder" not in R.TrainingRecipe().to_dict()  # readable by hetero before image folders
    other = r.replace(data_folder=_spec(1, (32, 32), classes=("a", "b")))
    assert other.model_kwargs == {"num_classes": 2, "in_channels": 1, "small_input": True}


@pytest.mark.parametrize("fields, words", [
    ({"model": "lenet5", "data_folder": _spec(3)}, ["lenet5 takes 1-channel 28x28", "--channels 1", "resnet18"]),
    ({"model": "alexnet_mnist", "data_folder": _spec(1, (32, 32))}, ["1-channel 32x32", "--image-size 28 28"]),
    ({"data_folder": None}, ["needs data_folder"]),
    ({"data_folder": {"path": "/x"}}, ["data_folder: data folder spec: missing classes"]),
    ({"model": "resnet18", "data_folder": _spec(3), "model_kwargs": {"num_classes": 5}},
     ["num_classes 5 but the data folder has 3 classes"]),
    ({"dataset": "mnist", "data_folder": _spec()}, ["data_folder is only for dataset 'folder'"]),
])
def test_recipe_refuses_a_folder_its_model_cannot_take(fields, words):
    with pytest.raises(R.RecipeError) as e:
        R.TrainingRecipe(**{"dataset": "folder", **fields})
    for w in words:
        assert w in str(e.value)
