"""The npz and CIFAR-10 loaders: layouts, resizing, labels and refusals (no code runs from a file)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gankit.data import DATASETS, DataPathError
from gankit.data.base import resize_uint8
from gankit.data.cifar import CLASSES, CifarFormatError, read_batch


def test_npz_layouts_labels_and_resize(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (5, 28, 28, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", train_images=nhwc, train_labels=np.arange(5).reshape(5, 1))
    src = DATASETS.build("npz", path=str(tmp_path / "a.npz"), key="train_images", labels_key="train_labels")
    assert src.shape == (3, 28, 28) and src.num_classes == 5
    x, y = src.sample_real(5)
    # NHWC became NCHW: pixel (row 3, col 7) of image 2 keeps its three channel values
    order = torch.as_tensor(y).argsort()
    img = x[order][2]
    expected = torch.from_numpy(nhwc[2, 3, 7].astype(np.float32)) / 127.5 - 1
    torch.testing.assert_close(img[:, 3, 7], expected)
    big = DATASETS.build(
        "npz", path=str(tmp_path / "a.npz"), key="train_images", labels_key="train_labels", resolution=32
    )
    assert big.shape == (3, 32, 32)
    # resizing a constant image keeps the constant
    np.savez(tmp_path / "c.npz", images=np.full((2, 28, 28), 77, np.uint8))
    c = DATASETS.build("npz", path=str(tmp_path / "c.npz"), resolution=32)
    assert c.shape == (1, 32, 32) and c.num_classes == 0
    torch.testing.assert_close(c.sample_real(2)[0], torch.full((2, 1, 32, 32), 77 / 127.5 - 1))


def test_npz_refusals(tmp_path: Path) -> None:
    np.savez(tmp_path / "f.npz", images=np.zeros((2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="float32.*uint8"):
        DATASETS.build("npz", path=str(tmp_path / "f.npz"))
    with pytest.raises(ValueError, match="no array 'pics'"):
        DATASETS.build("npz", path=str(tmp_path / "f.npz"), key="pics")
    with pytest.raises(DataPathError, match="does not exist"):
        DATASETS.build("npz", path=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "o.npz", images=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError):  # object arrays need pickle, which is never allowed
        DATASETS.build("npz", path=str(tmp_path / "o.npz"))


def test_resize_uint8_matches_float_interpolate() -> None:
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    ref = (
        torch.nn.functional.interpolate(x.float(), size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
    )
    assert torch.equal(resize_uint8(x, 32, chunk=2), ref)


def test_retinamnist_from_shared_data() -> None:
    root = os.environ.get("GANKIT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    path = Path(root) / "medmnist" / "retinamnist.npz"
    if not path.exists():
        pytest.skip("shared/data/medmnist is not available")
    src = DATASETS.build("npz", path=str(path), key="train_images", labels_key="train_labels", resolution=32)
    assert len(src) == 1080 and src.shape == (3, 32, 32) and src.num_classes == 5
    x, _ = src.sample_real(64)
    # fundus photographs are red-dominant: the red channel is the brightest on average
    means = x.mean(dim=(0, 2, 3))
    assert means[0] > means[1] and means[0] > means[2]


def _write_cifar(root: Path, n: int = 4) -> np.ndarray:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6 * n, 3, 32, 32), dtype=np.uint8)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        part = images[i * n : (i + 1) * n]
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(i + j) % 10 for j in range(n)],
            b"data": part.reshape(n, 3072),
            b"filenames": [b"x.png"] * n,
        }
        with open(root / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return images


def test_cifar10_reads_the_official_python_batches(tmp_path: Path) -> None:
    images = _write_cifar(tmp_path / "cifar-10-batches-py")
    train = DATASETS.build("cifar10", path=str(tmp_path))  # the folder above the extracted one also works
    test = DATASETS.build("cifar10", path=str(tmp_path / "cifar-10-batches-py"), split="test")
    assert len(train) == 20 and len(test) == 4 and train.shape == (3, 32, 32) and train.num_classes == 10
    data, labels = read_batch(tmp_path / "cifar-10-batches-py" / "test_batch")
    assert np.array_equal(data, images[20:]) and labels.tolist() == [5, 6, 7, 8]
    assert len(CLASSES) == 10
    small = DATASETS.build("cifar10", path=str(tmp_path), split="all", resolution=16, labels=False)
    assert len(small) == 24 and small.shape == (3, 16, 16) and small.num_classes == 0


class _Evil:
    def __reduce__(self):  # would run os.system on a plain pickle.load
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_code_and_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(DataPathError, match="does not exist"):
        DATASETS.build("cifar10", path=str(tmp_path / "nope"))
    root = tmp_path / "c"
    _write_cifar(root)
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(CifarFormatError, match="refusing to unpickle"):
        DATASETS.build("cifar10", path=str(root), split="test")
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"fine_labels": [1], b"data": np.zeros((1, 3072), np.uint8)}, f)
    with pytest.raises(CifarFormatError, match="CIFAR-100"):
        DATASETS.build("cifar10", path=str(root), split="test")
    (root / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(CifarFormatError, match="not a CIFAR-10 python batch"):
        DATASETS.build("cifar10", path=str(root), split="test")
    (root / "data_batch_3").unlink()
    with pytest.raises(DataPathError, match="lacks data_batch_3"):
        DATASETS.build("cifar10", path=str(root))
