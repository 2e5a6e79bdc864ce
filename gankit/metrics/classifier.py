"""``classifier``: a small CNN trained on the labelled reference set, used as a feature extractor.

FID and IS were defined on ImageNet Inception-v3 features (Heusel et al. 2017; Salimans et al. 2016),
but on MNIST-like domains those features mean little (ImageNet has no digits), and the network
weights must be downloaded. Much GAN work therefore computes the same formulas with a classifier
trained on the dataset itself: the MODE score of Che et al. 2017 and the mode counts on stacked MNIST
(Metz et al. 2017; Srivastava et al. 2017) use an MNIST classifier, and TF-GAN ships
``mnist_score`` / ``mnist_frechet_distance`` for the same reason. Its penultimate layer is the feature
space for FID/KID/precision-recall; its softmax gives p(y|x) for IS and mode counts.

Such scores are only comparable between runs that use the *same* classifier, so the weights are
trained deterministically from a seed, cached under the dataset's content fingerprint, and the
SHA-256 of the weights goes into ``protocol()`` beside every score.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.data.base import InMemoryImages, check_images, to_float
from gankit.files import atomic_write
from gankit.metrics import advice
from gankit.metrics.features import FEATURES, TRAITS, Extractor, Traits, cache_dir

RESOLUTION = 32
# Measured: 3 epochs on 8k MNIST images give 99 % held out (~25 s on 2 CPU cores); tiny sets want
# more (1400 sklearn digits: 5 epochs -> 97 %, 20 -> 98.5 %). Either way it is trained once, then cached.
DEFAULT_EPOCHS = 5
# What a small set lacks is optimiser steps, not epochs: 5 epochs of 200 images are 10 steps of one-cycle
# Adam, which leave the network near its initialisation, with features so small that pure noise scores
# classifier-FID 0.8 (measured on 20 sklearn digits per class: held-out accuracy 0.21, chance). So unless
# ``epochs`` is given, a set of fewer than 15 batches trains for more epochs, to at least this many steps:
# the 75 of the default on the sklearn digits (15 batches x 5 epochs, 97 % held out), whose weights
# are therefore unchanged. With it, 5 digits per class already reach 87 % held out and noise scores
# FID 962 against 10 for held-out real digits (docs in source_problem).
MIN_TRAIN_STEPS = 75
# Fewest labelled images in any class for the classifier to be used for scoring. Measured (seed 0,
# default training with MIN_TRAIN_STEPS, held-out accuracy on 400 digits / 1000 MNIST test images):
#   per class         5      10     20     30     50     100
#   sklearn digits   0.868  0.945  0.970  0.985  0.985
#   MNIST (10-way)   0.865  0.914  0.950  0.960  0.970  0.980
# Noise scores far from real at every count (classifier-FID 800-10000, held-out real 9-13), so
# what grows with the count is how well the features and class logits (IS, class-coverage,
# class-agreement) describe the data: 20 is the fewest at which both sets reach 95 % held out.
# (RetinaMNIST's training split, whose rarest grade has 66 images, passes.)
MIN_IMAGES_PER_CLASS = 20
FEATURE_DIM = 128
FORMAT = "gankit-classifier"
# Bump when the architecture or the training recipe changes: it is part of the cache key, so old
# cached weights are never mistaken for the new recipe's.
RECIPE_VERSION = 1
_BATCH_SIZE, _LR, _SHIFT = 128, 2e-3, 2


def resize(x: torch.Tensor) -> torch.Tensor:
    """Float NCHW -> NC x 32 x 32, bilinear; antialiased when shrinking so small details alias less."""
    if tuple(x.shape[-2:]) == (RESOLUTION, RESOLUTION):
        return x
    shrink = x.shape[-2] > RESOLUTION or x.shape[-1] > RESOLUTION
    return F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", align_corners=False, antialias=shrink)


def _block(cin: int, cout: int) -> list[nn.Module]:
    # No conv bias: BatchNorm's shift makes it redundant.
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallClassifier(nn.Module):
    """Two conv-conv-pool stages (32, 64 channels) on 32x32 inputs, a ``feature_dim`` ReLU layer
    (the features) and a linear head. Inputs are float NCHW in [-1, 1] of any size."""

    def __init__(self, in_channels: int, num_classes: int, feature_dim: int = FEATURE_DIM) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.feature_dim = in_channels, num_classes, feature_dim
        self.body = nn.Sequential(
            *_block(in_channels, 32),
            *_block(32, 32),
            nn.MaxPool2d(2),
            *_block(32, 64),
            *_block(64, 64),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(64 * (RESOLUTION // 4) ** 2, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(feature_dim, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(features, logits)``."""
        features = self.body(resize(x))
        return features, self.head(features)


def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random integer offset in [-2, 2] px (edges replicated)."""
    (n, c, h, w), s = x.shape, _SHIFT
    xp = F.pad(x, (s, s, s, s), mode="replicate")
    dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1), generator=g).to(x.device)
    rows = (torch.arange(h, device=x.device) + dy)[:, None, :, None].expand(n, c, h, w + 2 * s)
    cols = (torch.arange(w, device=x.device) + dx)[:, None, None, :].expand(n, c, h, w)
    return xp.gather(2, rows).gather(3, cols)


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def accuracy(net: SmallClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` on uint8 ``images`` (eval mode)."""
    net.eval()
    device = next(net.parameters()).device
    hits = 0
    for xb, yb in zip(images.split(batch_size), labels.split(batch_size)):
        hits += int((net(to_float(xb).to(device))[1].argmax(1).cpu() == yb).sum())
    return hits / max(1, len(labels))


def default_epochs(num_images: int, batch_size: int = _BATCH_SIZE) -> int:
    """``DEFAULT_EPOCHS``, or more for a set of fewer than 15 batches, so that training takes at least
    ``MIN_TRAIN_STEPS`` optimiser steps (a few steps leave the network untrained)."""
    steps_per_epoch = max(1, -(-num_images // batch_size))
    return max(DEFAULT_EPOCHS, -(-MIN_TRAIN_STEPS // steps_per_epoch))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = _BATCH_SIZE,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    feature_dim: int = FEATURE_DIM,
) -> SmallClassifier:
    """Train a ``SmallClassifier`` on uint8 ``images`` (N, C, H, W) and int64 ``labels``; returns it
    in eval mode. Adam with a one-cycle learning rate and ±2 px shifts; deterministic given
    ``seed`` on a given device (the global RNG is restored afterwards)."""
    check_images(images, dtype=torch.uint8)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    labels = labels.to(torch.int64)
    if labels.shape != (images.shape[0],) or int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"need {images.shape[0]} labels in 0..{num_classes - 1}, got {tuple(labels.shape)}")
    dev = _device(device)
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-images.shape[0] // batch_size)
    total = max(1, epochs * steps_per_epoch)
    # fork_rng: init and dropout draw from the global RNG; seed it here without disturbing the caller.
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type=dev.type):
        torch.manual_seed(seed)
        net = SmallClassifier(images.shape[1], num_classes, feature_dim).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=_LR)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=_LR, total_steps=total, pct_start=0.15)
        bar = task = None
        if progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            bar.start()
            task = bar.add_task("training classifier", total=total, info="")
        try:
            net.train()
            for epoch in range(epochs):
                for idx in torch.randperm(images.shape[0], generator=g).split(batch_size):
                    x = _shift(resize(to_float(images[idx]).to(dev, non_blocking=True)), g)
                    y = labels[idx].to(dev, non_blocking=True)
                    logits = net(x)[1]
                    loss = F.cross_entropy(logits, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if bar is not None and task is not None:  # set together
                        bar.update(task, advance=1, info=f"epoch {epoch + 1}/{epochs} loss {loss.item():.3f}")
        finally:
            if bar is not None:
                bar.stop()
    return net.eval()


def weights_sha256(net: nn.Module) -> str:
    """SHA-256 of the state dict's names, dtypes, shapes and bytes. Not of the file: safetensors
    writes its metadata in an arbitrary order, so equal weights may be saved as unequal bytes."""
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


_weights_sha256 = weights_sha256  # ClassifierFeatures.__init__ has a parameter of the same name


class ClassifierFeatures(Extractor):
    """A trained ``SmallClassifier`` as an extractor: penultimate features and class logits."""

    name = "classifier"

    def __init__(self, net: SmallClassifier, weights_sha256: str | None = None, trained_on: str = "") -> None:
        """``weights_sha256`` None: hash ``net``'s weights (pass a string only for throwaway nets)."""
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.dim, self.num_classes = net.feature_dim, net.num_classes
        self.weights_sha256 = weights_sha256 if weights_sha256 is not None else _weights_sha256(net)
        self.trained_on = trained_on

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "weights_sha256": self.weights_sha256,
            "trained_on": self.trained_on,
            "resize": f"bilinear-antialias to {RESOLUTION}x{RESOLUTION}",
            "num_classes": self.num_classes,
        }

    def train(self, mode: bool = True) -> ClassifierFeatures:
        # Always eval: BatchNorm/dropout in train mode would make features depend on the batch.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.net.in_channels
        check_images(
            x,
            "the classifier extractor's input",
            channels=c,
            hint=f"it was trained on {c}-channel images: evaluate against a reference set with the same channels",
        )
        features, logits = self.net(x.float())
        return {"features": features.float(), "logits": logits.float()}


class PerChannelClassifier(Extractor):
    """A 1-channel classifier applied to each channel of C-channel images (Stacked MNIST): the
    features are the channels' features concatenated, and the K^C joint classes (channel 0 most
    significant: 100 a + 10 b + c) get log p(a, b, c) = sum_c log p_c, channels being independent."""

    name = "classifier"

    def __init__(self, single: ClassifierFeatures, channels: int) -> None:
        super().__init__()
        self.single, self.channels = single, channels
        self.dim = single.dim * channels
        self.num_classes = single.num_classes**channels

    def protocol(self) -> dict[str, Any]:
        return {
            **self.single.protocol(),
            "dim": self.dim,
            "num_classes": self.num_classes,
            "per_channel": self.channels,
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(x, "the per-channel classifier's input", channels=self.channels)
        feats, joint = [], None
        for c in range(self.channels):
            out = self.single(x[:, c : c + 1])
            feats.append(out["features"])
            logp = torch.log_softmax(out["logits"], dim=1)
            joint = logp if joint is None else (joint.unsqueeze(2) + logp.unsqueeze(1)).flatten(1)
        assert joint is not None  # images have at least one channel
        return {"features": torch.cat(feats, dim=1), "logits": joint}


def _serialize(net: SmallClassifier, meta: dict[str, Any]) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    return save(state, metadata={k: str(v) for k, v in meta.items()})


def _deserialize(data: bytes, origin: str) -> tuple[SmallClassifier, dict[str, str]]:
    """Weights + metadata from safetensors bytes: parsing only, never code execution (no pickle)."""
    from safetensors.torch import load

    try:
        (n,) = struct.unpack("<Q", data[:8])
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
        if meta.get("format") != FORMAT:
            raise ValueError("its metadata does not say format=gankit-classifier")
        net = SmallClassifier(int(meta["in_channels"]), int(meta["num_classes"]), int(meta["feature_dim"]))
        net.load_state_dict(load(data))
    except Exception as err:  # noqa: BLE001 - any parse failure means the same thing to the user
        # No command-line flag here: this is reached from a recipe's weights option or the cache,
        # in `train` as in `eval`, so the fix is phrased for both.
        raise ValueError(
            f"{origin} is not a classifier weights file written by gankit.metrics.classifier ({err}); "
            f"delete it, or leave the classifier's weights option out to train one on the reference set"
        ) from None
    return net.eval(), meta


def _config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def class_counts(source: InMemoryImages) -> torch.Tensor:
    """Images per class id 0..K-1 of a labelled set (a class id with no image counts 0)."""
    assert source.labels is not None
    return torch.bincount(source.labels, minlength=source.num_classes)


def source_problem(source: Any, weights: str | None = None, per_class: bool = True) -> str | None:
    """Why the ``classifier`` extractor cannot give meaningful features for ``source``, as a sentence
    without advice (the advice depends on the command; gankit/metrics/advice.py), or None.

    * it trains on an in-memory labelled image set with at least 2 classes (a stacked set: its base);
    * when ``per_class`` and no ``weights`` (trained elsewhere) are given, every class needs
      ``MIN_IMAGES_PER_CLASS`` (20) images, the fewest at which the classifier reaches 95 % held-out
      accuracy on MNIST and the sklearn digits (the measurement is beside the constant).
    """
    base = getattr(source, "channel_source", None) or source
    if not isinstance(base, InMemoryImages):
        return (
            f"the classifier extractor trains on the reference image dataset, but "
            f"{getattr(source, 'name', type(source).__name__)!r} is not an image set held in memory"
        )
    if base.labels is None or base.num_classes < 2:
        found = "has no labels" if base.labels is None else f"has {base.num_classes} class"
        return (
            f"the classifier extractor needs a labelled dataset to train on, and {base.name!r} {found} "
            f"(labelled: digits, mnist with labels=true, an image folder with one subfolder per class, "
            f"an .npz with a 'labels' array)"
        )
    if per_class and weights is None:
        counts = class_counts(base)
        fewest = int(counts.min())
        if fewest < MIN_IMAGES_PER_CLASS:
            short = int((counts < MIN_IMAGES_PER_CLASS).sum())
            return (
                f"the classifier extractor would be trained on {len(base)} images of {base.num_classes} classes "
                f"in {base.name!r}, {short} of them with fewer than {MIN_IMAGES_PER_CLASS} images (class "
                f"{int(counts.argmin())} has {fewest}); below {MIN_IMAGES_PER_CLASS} per class it learns the "
                f"classes too poorly for its scores to be trusted (measured: 95 % held-out accuracy at 20 "
                f"MNIST digits per class, 87 % at 5)"
            )
    return None


def _alternatives(context: str | None, needs_logits: bool = False) -> str:
    """The other extractors, phrased for ``context`` (None: no command known, name them plainly)."""
    choices = ["inception"] if needs_logits else ["random-projection", "inception"]
    if context is None:
        return "or use another feature extractor: " + " or ".join(choices)
    return "or " + advice.other_features(context, choices)


def _check_source(
    source: Any, context: str | None = None, weights: str | None = None, per_class: bool = False
) -> InMemoryImages:
    problem = source_problem(source, weights, per_class)
    if problem is not None:
        raise ValueError(f"{problem}; {_alternatives(context)}")
    return source


def load_or_train(
    source: InMemoryImages,
    epochs: int | None = DEFAULT_EPOCHS,
    weights: str | Path | None = None,
    device: str | torch.device = "auto",
    cache: bool = True,
    seed: int = 0,
    progress: bool = True,
    context: str | None = None,
) -> ClassifierFeatures:
    """The classifier extractor for ``source``: from ``weights`` if given, else from the cache under
    the dataset's fingerprint, else trained now (and cached when ``cache``). ``epochs`` None:
    ``default_epochs`` for this set (at least ``MIN_TRAIN_STEPS`` steps).

    Checks labels but not ``MIN_IMAGES_PER_CLASS``: that is for scoring (the ``classifier`` factory
    below); this lower-level call also serves diagnostics such as CycleGAN's class agreement.
    ``context`` ("train" / "eval" / None) phrases the advice of its errors for the command."""
    source = _check_source(source, context)
    channels, classes, fingerprint = source.shape[0], source.num_classes, source.fingerprint()
    dev = _device(device)
    if epochs is None:
        epochs = default_epochs(len(source))  # the epochs trained go into the cache key below
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"classifier weights file not found: {str(path)!r}")
        data = path.read_bytes()
        net, meta = _deserialize(data, f"weights file {str(path)!r}")
        if (net.in_channels, net.num_classes) != (channels, classes):
            raise ValueError(
                f"weights file {str(path)!r} is a classifier for {net.in_channels}-channel images and "
                f"{net.num_classes} classes, but the dataset {source.name!r} has {channels} channels and "
                f"{classes} classes; train one on this dataset (leave out the weights option)"
            )
        return ClassifierFeatures(net, trained_on=meta.get("dataset", "")[:16]).to(dev)

    config = {
        "recipe": RECIPE_VERSION,
        "in_channels": channels,
        "num_classes": classes,
        "feature_dim": FEATURE_DIM,
        "epochs": epochs,
        "seed": seed,
        "batch_size": _BATCH_SIZE,
    }
    path = cache_dir() / "classifiers" / f"{fingerprint[:16]}-{_config_hash(config)}.safetensors"
    if cache and path.is_file():
        data = path.read_bytes()
        try:
            net, meta = _deserialize(data, f"cached classifier {str(path)!r}")
            if meta.get("dataset") == fingerprint:
                return ClassifierFeatures(net, trained_on=fingerprint[:16]).to(dev)
        except ValueError:
            pass  # a corrupt cache entry is retrained and overwritten below
    assert source.labels is not None  # _check_source refuses unlabelled sets
    net = train_classifier(
        source.images, source.labels, classes, epochs=epochs, seed=seed, device=dev, progress=progress
    )
    saved_meta = {
        **config,
        "format": FORMAT,
        "dataset": fingerprint,
        "train_accuracy": f"{accuracy(net, source.images, source.labels):.6f}",
    }
    if cache:
        atomic_write(path, _serialize(net, saved_meta), durable=True)  # minutes of training: worth an fsync
    return ClassifierFeatures(net, trained_on=fingerprint[:16]).to(dev)


@FEATURES.register("classifier", injected=("source", "context"))
def classifier(
    source: Any = None,
    epochs: int | None = None,
    weights: str | None = None,
    device: str = "auto",
    context: str | None = None,
) -> ClassifierFeatures | PerChannelClassifier:
    """A small CNN trained on the labelled reference set (MNIST-style FID/IS); cached by dataset hash.

    ``epochs`` defaults to 5, more on a set of fewer than 15 batches of 128 (at least
    ``MIN_TRAIN_STEPS`` = 75 optimiser steps). Refused for sets with fewer than
    ``MIN_IMAGES_PER_CLASS`` images in some class (unless ``weights`` trained elsewhere are given):
    see ``source_problem``."""
    if source is None:
        raise ValueError("the classifier extractor needs the reference dataset to train on (source=...)")
    _check_source(source, context, weights, per_class=True)
    base = getattr(source, "channel_source", None)
    if base is not None:  # stacked channels: classify each channel with a classifier of the base set
        single = load_or_train(base, epochs=epochs, weights=weights, device=device, context=context)
        return PerChannelClassifier(single, source.shape[0])
    return load_or_train(source, epochs=epochs, weights=weights, device=device, context=context)


def _traits_problem(options: dict[str, Any], source: Any, context: str) -> str | None:
    return source_problem(source, options.get("weights"))


TRAITS["classifier"] = Traits(
    dim=lambda options, source: FEATURE_DIM * (source.shape[0] if getattr(source, "channel_source", None) else 1),
    logits=True,
    images_only=True,
    problem=_traits_problem,
)
