"""Datasets: toy mixtures, sklearn digits, MNIST IDX files, image folders, and the stream contract."""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.data import DATASETS, DataPathError, IDXError, InMemoryImages
from gankit.registry import RegistryError


def shared_data(sub: str) -> Path:
    root = os.environ.get("GANKIT_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    path = Path(root) / sub
    if not path.exists():
        pytest.skip(f"shared test data {path} not available")
    return path


@pytest.fixture(scope="module")
def digits():
    return DATASETS.build("digits")


def indexed_source(n: int = 10) -> InMemoryImages:
    """Item i is a 1x1x1 image of value i, so a batch tells which items it holds."""
    return InMemoryImages("indexed", torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1), torch.arange(n))


def ids(x: torch.Tensor) -> list[int]:
    return ((x.flatten() + 1) * 127.5).round().long().tolist()


# -- toy mixtures -------------------------------------------------------------------------------
def test_grid_and_ring_centres_are_exactly_the_specified_sets():
    grid = DATASETS.build("grid")
    assert {tuple(c) for c in grid.centers.tolist()} == {(a, b) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert grid.std == 0.05 and grid.kind == "points" and grid.shape == (2,) and grid.num_classes == 0
    ring = DATASETS.build("ring")
    ref = torch.tensor([[math.cos(math.pi * k / 4), math.sin(math.pi * k / 4)] for k in range(8)])
    torch.testing.assert_close(ring.centers, ref, atol=1e-7, rtol=0)
    assert ring.std == 0.01
    small = DATASETS.build("ring", num_modes=4, radius=2.0)
    torch.testing.assert_close(small.centers, torch.tensor([[2.0, 0], [0, 2], [-2, 0], [0, -2]]), atol=1e-6, rtol=0)
    with pytest.raises(RegistryError, match="num_modes"):
        DATASETS.build("ring", num_modes="many")


def test_line_clusters_and_drawn_centres():
    line = DATASETS.build("line")
    c = line.centers
    assert c.shape == (9, 2) and torch.equal(c[:, 0], c[:, 1])  # on y = x
    assert float(torch.linalg.norm(c[-1] - c[0])) == pytest.approx(3.0, abs=1e-6)
    assert float(torch.linalg.norm(c[1] - c[0])) == pytest.approx(3.0 / 8, abs=1e-6)  # evenly spaced
    two = DATASETS.build("clusters")
    assert two.centers.tolist() == [[-1.0, -0.5], [1.0, 0.5]] and two.std == 0.25
    drawn = DATASETS.build("drawn", points=[[0.5, 1.5], [-2, 3]])
    assert drawn.centers.tolist() == [[0.5, 1.5], [-2.0, 3.0]] and drawn.std == 0.03
    for bad, says in (
        ([], "non-empty"),
        ([[1, 2, 3]], r"\[x, y\] pairs"),
        ([["a", 1]], "valid number"),
        ([[1, float("inf")]], "finite"),
    ):
        with pytest.raises(ValueError, match=says):
            DATASETS.build("drawn", points=bad)


# chi-square 99.9% quantiles, df 7 / 24 / 3 (the line's modes overlap, so its points are not labelled by the nearest)
@pytest.mark.parametrize("name,crit", [("ring", 24.3), ("grid", 51.2), ("drawn", 16.3)])
def test_mixture_std_and_uniform_mode_frequencies(name, crit):
    options = {"points": [[0, 0], [1, 1], [2, -1], [-3, 0.5]]} if name == "drawn" else {}
    src = DATASETS.build(name, labels=True, **options)
    k = src.centers.shape[0]
    assert src.num_classes == k
    x, y = src.sample_real(40_000, seed=1)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(torch.cdist(x, src.centers).argmin(1), y)  # labels are the mode ids
    resid = x - src.centers[y]
    assert abs(resid.std().item() / src.std - 1) < 0.02
    assert resid.mean(0).abs().max() < 5 * src.std / math.sqrt(len(x))
    counts = torch.bincount(y, minlength=k).double()
    expected = len(x) / k
    assert ((counts - expected) ** 2 / expected).sum() < crit


def test_toy_source_is_endless():
    src = DATASETS.build("grid")
    with pytest.raises(TypeError, match="endless"):
        len(src)
    assert bool(src)
    assert src.stream(8, 0).next()[1] is None


# -- the stream contract, for every kind of source ---------------------------------------------
SOURCES = {
    "ring": lambda: DATASETS.build("ring", labels=True),
    "grid": lambda: DATASETS.build("grid"),
    "indexed": indexed_source,
}


@pytest.mark.parametrize("name", SOURCES)
def test_streams_with_same_args_are_identical(name):
    src = SOURCES[name]()
    a, b, c = src.stream(3, seed=5), src.stream(3, seed=5), src.stream(3, seed=6)
    xs = [a.next() for _ in range(8)]
    for xa, ya in xs:
        xb, yb = b.next()
        assert torch.equal(xa, xb) and (ya is None or torch.equal(ya, yb))
    assert not all(torch.equal(xa, c.next()[0]) for xa, _ in xs)


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("skip", [0, 2, 3, 7])  # for 'indexed' (3 batches/epoch) 3 and 7 cross epochs
def test_resume_from_state_dict_is_bit_identical(name, skip):
    src = SOURCES[name]()
    a = src.stream(3, seed=11)
    for _ in range(skip):
        a.next()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert all(isinstance(v, (int, float, str, bool, torch.Tensor)) for v in state.values())
    b = src.stream(3, seed=11)
    b.next()  # b is somewhere else before loading
    b.load_state_dict(state)
    for _ in range(12):
        (xa, ya), (xb, yb) = a.next(), b.next()
        assert torch.equal(xa, xb)
        assert (ya is None and yb is None) or torch.equal(ya, yb)


@pytest.mark.parametrize("name", SOURCES)
def test_streams_leave_the_global_rng_alone(name):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    src = SOURCES[name]()
    s = src.stream(4, seed=0)
    first = [s.next()[0] for _ in range(5)]
    src.sample_real(5)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(123)  # a different global seed changes nothing
    again = src.stream(4, seed=0)
    assert all(torch.equal(x, again.next()[0]) for x in first)


def test_finite_epochs_shuffle_and_drop_the_last_batch():
    src = indexed_source(10)
    s = src.stream(3, seed=0)
    epoch0 = [i for _ in range(3) for i in ids(s.next()[0])]
    assert len(set(epoch0)) == 9 and s.state_dict()["epoch"] == 0
    epoch1 = [i for _ in range(3) for i in ids(s.next()[0])]
    assert len(set(epoch1)) == 9 and s.state_dict()["epoch"] == 1 and s.state_dict()["position"] == 9
    assert epoch0 != epoch1
    x, y = s.next()
    assert torch.equal(torch.tensor(ids(x)), y)  # labels travel with their images
    with pytest.raises(ValueError, match="larger than the dataset"):
        src.stream(11, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        src.stream(2, seed=0).load_state_dict(s.state_dict())


def test_sample_real_is_deterministic_and_without_replacement():
    src = indexed_source(10)
    x, y = src.sample_real(10, seed=3)
    assert sorted(ids(x)) == list(range(10)) and torch.equal(torch.tensor(ids(x)), y)
    assert torch.equal(src.sample_real(10, seed=3)[0], x) and not torch.equal(src.sample_real(10, seed=4)[0], x)
    many = ids(src.sample_real(25, seed=0)[0])
    assert max(many.count(i) for i in range(10)) == 3 and len(many) == 25


# -- digits ------------------------------------------------------------------------------------
def test_digits(digits):
    from sklearn.datasets import load_digits

    ref = load_digits()
    assert len(digits) == 1797 and digits.shape == (1, 16, 16) and digits.num_classes == 10
    assert torch.equal(digits.labels, torch.from_numpy(ref.target).long())
    x, y = digits.stream(64, 0).next()
    assert x.shape == (64, 1, 16, 16) and x.min() >= -1 and x.max() <= 1 and set(y.tolist()) <= set(range(10))
    # Downsampled back, the images are close to sklearn's 8x8 scaled to [-1, 1].
    full = digits.images.float() / 127.5 - 1
    small = torch.from_numpy(ref.images).float().unsqueeze(1) / 8 - 1
    pooled = F.avg_pool2d(full, 2)
    assert (pooled - small).abs().mean() < 0.2
    assert torch.corrcoef(torch.stack([pooled.flatten(), small.flatten()]))[0, 1] > 0.97
    # Exactly: separable bilinear weights with half-pixel centres, then rounding to uint8.
    w = np.zeros((16, 8))
    for o in range(16):
        c = min(max((o + 0.5) / 2 - 0.5, 0.0), 7.0)
        i0 = int(c)
        w[o, i0] += 1 - (c - i0)
        w[o, min(i0 + 1, 7)] += c - i0
    exact = np.einsum("oi,nij,pj->nop", w, ref.images, w) * 255 / 16
    assert np.abs(exact - digits.images[:, 0].numpy()).max() <= 0.5 + 1e-4
    unlabeled = DATASETS.build("digits", labels=False, resolution=8)
    assert unlabeled.num_classes == 0 and unlabeled.sample_real(4)[1] is None and unlabeled.shape == (1, 8, 8)


# -- MNIST IDX -----------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = False) -> None:
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def decode_reference(path: Path) -> np.ndarray:
    raw = gzip.open(path, "rb").read()
    dims = struct.unpack(">" + "I" * raw[3], raw[4 : 4 + 4 * raw[3]])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def test_mnist_test_split_matches_an_independent_decode(tmp_path):
    root = shared_data("mnist")
    src = DATASETS.build("mnist", path=str(root), split="test")
    assert len(src) == 10_000 and src.shape == (1, 28, 28) and src.num_classes == 10
    assert src.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    images = decode_reference(root / "t10k-images-idx3-ubyte.gz")
    assert np.array_equal(src.images[:, 0].numpy(), images)
    assert torch.bincount(src.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # A gunzipped copy under the dotted names, and an images file given directly, read the same.
    for kind, idx in (("images", 3), ("labels", 1)):
        data = gzip.open(root / f"t10k-{kind}-idx{idx}-ubyte.gz").read()
        (tmp_path / f"t10k-{kind}.idx{idx}-ubyte").write_bytes(data)
    for path in (tmp_path, tmp_path / "t10k-images.idx3-ubyte"):
        copy = DATASETS.build("mnist", path=str(path), split="test")
        assert torch.equal(copy.images, src.images) and torch.equal(copy.labels, src.labels)
    big = DATASETS.build("mnist", path=str(root), split="test", resolution=32, labels=False)
    assert big.shape == (1, 32, 32) and big.num_classes == 0 and big.sample_real(2)[1] is None
    assert abs(big.images.float().mean() - src.images.float().mean()) < 1.0  # resizing keeps brightness


def test_mnist_errors_name_the_problem(tmp_path):
    with pytest.raises(DataPathError, match=r"does not exist.*data\.path=") as err:
        DATASETS.build("mnist", path=str(tmp_path / "nowhere"))
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataPathError, match=r"train-images-idx3-ubyte\.gz.*notes\.txt"):
        DATASETS.build("mnist", path=str(tmp_path))
    imgs = np.arange(3 * 4 * 4).reshape(3, 4, 4)
    write_idx(tmp_path / "train-images-idx3-ubyte", imgs, 0x803, compress=True)
    with pytest.raises(DataPathError, match=r"data\.labels=false"):
        DATASETS.build("mnist", path=str(tmp_path))
    src = DATASETS.build("mnist", path=str(tmp_path), labels=False, resolution=4)
    assert torch.equal(src.images[:, 0], torch.from_numpy(imgs).to(torch.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2]), 0x801)
    with pytest.raises(IDXError, match="2 labels.*3 images"):
        DATASETS.build("mnist", path=str(tmp_path), resolution=4)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2, 3]), 0x803)
    with pytest.raises(IDXError, match="bad magic number 0x00000803"):
        DATASETS.build("mnist", path=str(tmp_path), resolution=4)
    raw = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(raw, imgs, 0x803)
    raw.write_bytes(raw.read_bytes()[:-5])
    with pytest.raises(IDXError, match="truncated"):
        DATASETS.build("mnist", path=str(tmp_path), split="test", labels=False)
    raw.write_bytes(gzip.compress(np.zeros(40, np.uint8).tobytes())[:-12])
    with pytest.raises(IDXError, match="truncated"):
        DATASETS.build("mnist", path=str(tmp_path), split="test", labels=False)


# -- image folders -----------------------------------------------------------------------------
def stripes(w: int, h: int) -> Image.Image:
    """Three vertical bands, red | green | blue."""
    a = np.zeros((h, w, 3), np.uint8)
    for band in range(3):
        a[:, band * w // 3 : (band + 1) * w // 3, band] = 255
    return Image.fromarray(a)


def test_image_folder_classes_resize_crop_and_grayscale(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs" / "big").mkdir(parents=True)
    stripes(60, 20).save(tmp_path / "cats" / "wide.png")
    Image.new("RGB", (30, 90), (0, 0, 255)).save(tmp_path / "dogs" / "tall.JPG", quality=95)
    Image.new("RGB", (16, 16), (255, 255, 255)).save(tmp_path / "dogs" / "big" / "white.bmp")
    (tmp_path / "dogs" / "readme.txt").write_text("not an image")
    src = DATASETS.build("image-folder", path=str(tmp_path), resolution=16)
    assert src.classes == ["cats", "dogs"] and src.num_classes == 2 and len(src) == 3
    assert [f.name for f in src.files] == ["wide.png", "white.bmp", "tall.JPG"]  # sorted by relative path
    assert src.labels.tolist() == [0, 1, 1] and src.shape == (3, 16, 16)
    wide = src.images[0].float().mean((1, 2))  # the centre crop of red|green|blue is the green band
    assert wide[1] > 200 and wide[0] < 30 and wide[2] < 30
    assert src.images[2, 2].float().mean() > 240 and src.images[2, :2].float().mean() < 15
    gray = DATASETS.build("image-folder", path=str(tmp_path), resolution=8, channels=1, labels="none")
    assert gray.shape == (1, 8, 8) and gray.num_classes == 0 and gray.classes == []
    assert gray.images[1].min() == 255
    assert len(DATASETS.build("image-folder", path=str(tmp_path), resolution=8, max_images=2)) == 2
    stripes(9, 9).save(tmp_path / "root.png")  # an image in the root: no classes
    assert DATASETS.build("image-folder", path=str(tmp_path), resolution=8).num_classes == 0


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataPathError, match="does not exist"):
        DATASETS.build("image-folder", path=str(tmp_path / "nowhere"))
    with pytest.raises(DataPathError, match=r"no images.*\.png.*\.webp"):
        DATASETS.build("image-folder", path=str(tmp_path))
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="broken.png"):
        DATASETS.build("image-folder", path=str(tmp_path))
    with pytest.raises(RegistryError, match="channels"):
        DATASETS.build("image-folder", path=str(tmp_path), channels=2)


def test_image_folder_on_real_photos():
    root = shared_data("photos")
    src = DATASETS.build("image-folder", path=str(root), resolution=64)
    assert len(src) == 4 and src.shape == (3, 64, 64) and src.num_classes == 0
    i = [f.name for f in src.files].index("chelsea.png")
    ours = src.images[i].float().mean((1, 2)) / 255
    # Reference: the centre square of the full-resolution decode; resizing preserves mean colour.
    full = np.asarray(Image.open(root / "chelsea.png").convert("RGB"), dtype=np.float64) / 255
    h, w, _ = full.shape
    left = (w - h) // 2
    ref = torch.from_numpy(full[:, left : left + h].mean((0, 1))).float()
    torch.testing.assert_close(ours, ref, atol=0.01, rtol=0)
    assert ours[0] > ours[1] > ours[2]  # an orange-brown cat
    x, _ = src.stream(2, seed=0).next()
    assert x.shape == (2, 3, 64, 64) and x.min() >= -1 and x.max() <= 1


def test_stacked_mnist_needs_a_path_and_stacks_real_mnist(mnist_dir):
    from gankit.data import DATASETS

    with pytest.raises(ValueError, match="data.path"):
        DATASETS.build("stacked-mnist")
    s = DATASETS.build("stacked-mnist", path=str(mnist_dir), split="test", num=2000, seed=0)
    assert s.images.shape == (2000, 3, 28, 28) and s.num_classes == 1000
    # 2000 draws of 1000 equally likely modes: most modes appear (expected 1000 (1 - e^-2) = 865)
    assert 800 < len(torch.unique(s.labels)) < 930
