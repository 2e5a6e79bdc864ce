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

from gankit.data.base import InMemoryImages, check_images
from gankit.files import atomic_write
from gankit.metrics import advice
from gankit.metrics.classifier_net import (
    BATCH_SIZE,
    DEFAULT_EPOCHS,
    FEATURE_DIM,
    RECIPE_VERSION,
    RESOLUTION,
    SmallClassifier,
    accuracy,
    default_epochs,
    train_classifier,
    weights_sha256,
)
from gankit.metrics.features import FEATURES, TRAITS, Extractor, Traits, cache_dir, pick_device

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
FORMAT = "gankit-classifier"


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
    dev = pick_device(device)
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
        "batch_size": BATCH_SIZE,
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
