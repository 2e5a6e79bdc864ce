import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gankit.data import DATASETS, InMemoryImages
from gankit.data.base import to_float
from gankit.metrics import classifier as clf
from gankit.metrics.classifier import ClassifierFeatures, load_or_train
from gankit.metrics.classifier_net import SmallClassifier, accuracy, train_classifier
from gankit.metrics.features import FEATURES, build_extractor, extract


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test caches into its own folder, never into the real ~/.cache/gankit."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def digits() -> InMemoryImages:
    """A 400-image slice of sklearn digits: enough to train on in well under a second per epoch."""
    full = DATASETS.build("digits")
    return InMemoryImages("digits", full.images[:400], full.labels[:400], num_classes=10)


def cached_files(cache: Path) -> list[Path]:
    return sorted((cache / "classifiers").glob("*.safetensors"))


def test_heldout_mnist_accuracy(mnist_dir: Path) -> None:
    src = DATASETS.build("mnist", path=str(mnist_dir), split="test")
    start = time.perf_counter()
    net = train_classifier(src.images[:8000], src.labels[:8000], 10, epochs=3, seed=0, device="cpu", progress=False)
    seconds = time.perf_counter() - start
    acc = accuracy(net, src.images[8000:], src.labels[8000:])
    print(f"\nclassifier: held-out MNIST accuracy {acc:.4f} (train 8000 images, 3 epochs, {seconds:.1f} s)")
    assert acc >= 0.98


def test_forward_shapes_and_protocol(digits: InMemoryImages, cache: Path) -> None:
    ext = load_or_train(digits, epochs=1, device="cpu", progress=False)
    assert isinstance(ext, ClassifierFeatures)
    assert (ext.name, ext.dim, ext.num_classes) == ("classifier", 128, 10)
    for size in (8, 16, 28, 64):  # one architecture for every resolution: it resizes to 32x32
        out = ext(torch.rand(5, 1, size, size) * 2 - 1)
        assert out["features"].shape == (5, 128) and out["features"].dtype == torch.float32
        assert out["logits"].shape == (5, 10) and out["logits"].dtype == torch.float32
        assert (out["features"] >= 0).all()  # the ReLU penultimate layer
    proto = ext.protocol()
    (path,) = cached_files(cache)
    assert proto["extractor"] == "classifier" and proto["dim"] == 128 and proto["num_classes"] == 10
    net = SmallClassifier(1, 10)
    net.load_state_dict(load_file(str(path)))
    assert proto["weights_sha256"] == clf.weights_sha256(net)
    assert proto["trained_on"] == digits.fingerprint()[:16]
    assert "bilinear" in proto["resize"] and "32x32" in proto["resize"]
    # Batched extraction gives the same features as one big batch (eval mode: no batch statistics).
    x = to_float(digits.images[:50])
    ext.train()  # must stay in eval mode whatever the caller does
    assert torch.allclose(extract(ext, x, batch_size=7)["features"], ext(x)["features"], atol=1e-5)


def test_cache_hit_loads_instead_of_training(
    digits: InMemoryImages, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_or_train(digits, epochs=1, device="cpu", progress=False)
    (path,) = cached_files(cache)
    assert path.name.startswith(digits.fingerprint()[:16] + "-")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["in_channels"] == "1" and meta["num_classes"] == "10" and meta["feature_dim"] == "128"
    assert meta["epochs"] == "1" and meta["seed"] == "0" and meta["dataset"] == digits.fingerprint()
    assert 0.0 <= float(meta["train_accuracy"]) <= 1.0

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("train_classifier called although the classifier is cached")

    with monkeypatch.context() as m:
        m.setattr(clf, "train_classifier", no_training)
        second = load_or_train(digits, epochs=1, device="cpu", progress=False)
    x = to_float(digits.images[:64])
    assert torch.equal(first(x)["features"], second(x)["features"])
    assert first.protocol() == second.protocol()

    # Training is deterministic given the seed: retraining without the cache gives the same weights.
    again = load_or_train(digits, epochs=1, device="cpu", cache=False, progress=False)
    assert again.protocol()["weights_sha256"] == first.protocol()["weights_sha256"]

    # One changed pixel is another dataset: another fingerprint, another cache file, a retrained net.
    images = digits.images.clone()
    images[0, 0, 0, 0] ^= 1
    changed = InMemoryImages("digits", images, digits.labels, num_classes=10)
    other = load_or_train(changed, epochs=1, device="cpu", progress=False)
    assert len(cached_files(cache)) == 2
    assert other.protocol()["trained_on"] != first.protocol()["trained_on"]


def test_training_leaves_the_global_rng_alone(digits: InMemoryImages) -> None:
    state = torch.get_rng_state()
    train_classifier(digits.images[:64], digits.labels[:64], 10, epochs=1, device="cpu", progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_unlabelled_source_is_refused() -> None:
    unlabelled = DATASETS.build("digits", labels=False)
    with pytest.raises(ValueError, match="needs a labelled dataset") as err:
        load_or_train(unlabelled, epochs=1, progress=False)
    assert "random-projection or inception" in str(err.value)
    # The advice names what the command that prints it takes: flags in `eval`, recipe keys in `train`.
    with pytest.raises(ValueError, match="labelled") as err:
        build_extractor("classifier", source=unlabelled, context="eval")
    assert "--features random-projection or --features inception" in str(err.value)
    with pytest.raises(ValueError, match="labelled") as err:
        build_extractor("classifier", source=unlabelled, context="train")
    assert "--features" not in str(err.value)
    assert "eval.metrics=[{name: fid, features: random-projection}]" in str(err.value)


def test_few_images_per_class_are_refused_for_scoring_but_train_longer(digits: InMemoryImages) -> None:
    """Below MIN_IMAGES_PER_CLASS the scoring extractor is refused; at it, a small set trains for at least
    MIN_TRAIN_STEPS optimiser steps (5 epochs of 200 images would be 10 steps: an untrained network)."""
    few = digits.subset(
        torch.cat([(digits.labels == k).nonzero().flatten()[: clf.MIN_IMAGES_PER_CLASS - 1] for k in range(10)]),
        "digits",
    )
    with pytest.raises(ValueError, match=f"fewer than {clf.MIN_IMAGES_PER_CLASS} images"):
        build_extractor("classifier", source=few)
    assert clf.default_epochs(1797) == clf.DEFAULT_EPOCHS  # the sklearn digits: 15 batches x 5 epochs, unchanged
    assert clf.default_epochs(200) == 38  # 2 batches of 128 per epoch: 76 >= MIN_TRAIN_STEPS steps
    assert clf.default_epochs(60000) == clf.DEFAULT_EPOCHS


def test_wrong_channel_count_is_refused(digits: InMemoryImages) -> None:
    ext = load_or_train(digits, epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="trained on 1-channel images"):
        ext(torch.zeros(2, 3, 16, 16))


def test_weights_option(digits: InMemoryImages, cache: Path, tmp_path: Path) -> None:
    trained = load_or_train(digits, epochs=1, device="cpu", progress=False)
    (path,) = cached_files(cache)
    loaded = load_or_train(digits, weights=str(path), device="cpu", progress=False)
    assert loaded.protocol() == trained.protocol()

    # A classifier for other data (3 channels, 4 classes) does not fit this source.
    g = torch.Generator().manual_seed(0)
    rgb = InMemoryImages(
        "rgb",
        torch.randint(0, 256, (40, 3, 12, 12), dtype=torch.uint8, generator=g),
        torch.arange(40) % 4,
        num_classes=4,
    )
    load_or_train(rgb, epochs=1, device="cpu", progress=False)
    rgb_file = next(p for p in cached_files(cache) if p.name.startswith(rgb.fingerprint()[:16]))
    with pytest.raises(ValueError, match="3-channel images and 4 classes.*1 channels and 10 classes"):
        load_or_train(digits, weights=str(rgb_file), progress=False)

    # A safetensors file that this module did not write (no gankit metadata) is refused, not guessed at.
    foreign = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in SmallClassifier(1, 10).state_dict().items()}, str(foreign))
    with pytest.raises(ValueError, match="not a classifier weights file"):
        load_or_train(digits, weights=str(foreign), progress=False)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_or_train(digits, weights=str(tmp_path / "missing.safetensors"), progress=False)


def test_registered_factory(digits: InMemoryImages) -> None:
    assert "classifier" in FEATURES.names()
    assert FEATURES.describe()["classifier"]
    assert set(FEATURES.options("classifier")) == {"epochs", "weights", "device"}
    ext = build_extractor("classifier", source=digits, epochs=1, device="cpu")
    assert isinstance(ext, ClassifierFeatures) and ext.protocol()["trained_on"] == digits.fingerprint()[:16]


def test_stacked_mnist_has_1000_modes_and_per_channel_classification(monkeypatch, tmp_path):
    # Stacked digits (offline): labels encode the three channels' digits, and the per-channel
    # classifier's joint class equals 100 a + 10 b + c of the channel predictions.
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    from gankit.data import DATASETS
    from gankit.data.base import to_float
    from gankit.metrics.classifier import PerChannelClassifier
    from gankit.metrics.features import build_extractor

    stacked = DATASETS.build("stacked-mnist", base="digits", num=600, seed=1)
    base = stacked.channel_source
    assert stacked.shape == (3, 16, 16) and stacked.num_classes == 1000
    digit_of = {bytes(base.images[i].numpy()): int(base.labels[i]) for i in range(len(base))}
    for i in range(5):
        digits = [digit_of[bytes(stacked.images[i, c : c + 1].numpy())] for c in range(3)]
        assert int(stacked.labels[i]) == 100 * digits[0] + 10 * digits[1] + digits[2]

    ex = build_extractor("classifier", source=stacked, epochs=1)
    assert isinstance(ex, PerChannelClassifier) and ex.num_classes == 1000 and ex.dim == 3 * 128
    x = to_float(stacked.images[:50])
    out = ex(x)
    single = [ex.single(x[:, c : c + 1])["logits"].argmax(1) for c in range(3)]
    assert torch.equal(out["logits"].argmax(1), 100 * single[0] + 10 * single[1] + single[2])
    assert torch.allclose(out["logits"].exp().sum(1), torch.ones(50, dtype=out["logits"].dtype), atol=1e-4)
    assert ex.protocol()["per_channel"] == 3
