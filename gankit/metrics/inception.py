"""The FID Inception-v3 (TF-2015 graph) as a gankit feature extractor, built on torch-fidelity.

torch-fidelity's ``FeatureExtractorInceptionV3`` reproduces the TF1 graph that FID/IS/KID were defined
with, including TF1's bilinear resize to 299x299 and the (x - 128) / 128 normalisation, so we reuse it
instead of re-implementing the network. What we add: finding the weights offline, checking their
SHA-256, loading them with ``weights_only=True`` (never unpickling code), and the ``Extractor`` API.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from gankit.data.base import check_images
from gankit.metrics.features import FEATURES, TRAITS, Extractor, Traits, pick_device

ENV_VAR = "GANKIT_INCEPTION_WEIGHTS"
PYTORCH_FID_NAME = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's release file
TORCH_FIDELITY_NAME = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's release file
# torch.hub convention: the hex string in the file name is a prefix of the file's SHA-256.
KNOWN_PREFIX = "6726825d"
STANDARD_NAMES = (PYTORCH_FID_NAME, TORCH_FIDELITY_NAME)
URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{PYTORCH_FID_NAME}"
RESIZE = "tf1-bilinear to 299x299 (torch-fidelity interpolate_bilinear_2d_like_tensorflow1x)"


class InceptionWeightsError(FileNotFoundError):
    """The Inception weights file was not found; the message says where we looked and how to get it."""


class InvalidWeightsError(ValueError):
    """A weights file that is corrupt, unsafe to load, or not the FID Inception weights."""


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _weights_option(context: str | None) -> str:
    """What the user calls the weights path in ``context``: a flag of `gankit eval`, a recipe option in `train`."""
    return "--inception-weights" if context == "eval" else "the inception extractor's weights option"


def how_to_get_weights(context: str | None) -> str:
    """Where to get the weights and how to point gankit at them, phrased for ``context``."""
    if context == "eval":
        point, offline = "pass --inception-weights PATH", "use `--features classifier`"
    else:  # train: recipe keys, no flags
        point = (
            "set it in the recipe (eval.metrics=[{name: fid, features: inception, feature_options: {weights: PATH}}])"
        )
        offline = "give the metrics features: classifier (labelled data) or features: random-projection in eval.metrics"
    return (
        "To get them (about 95 MB), either:\n"
        "  * run `gankit fetch inception` (downloads into the torch hub cache), or\n"
        f"  * download {URL} yourself and {point} or set {ENV_VAR}=PATH;\n"
        f"or, offline, {offline} (scores are then not comparable with published FID)."
    )


def find_weights(path: str | Path | None = None, context: str | None = "eval") -> Path:
    """The weights file: ``path`` (``--inception-weights`` in `eval`, the extractor's ``weights``
    option in a recipe), else ``$GANKIT_INCEPTION_WEIGHTS``, else either standard file name in the
    torch hub cache. Never downloads. ``context`` ("eval", "train") phrases the advice of the error."""
    # An explicitly named file that is missing is an error, not a cue to fall back silently to
    # another file: the user asked for that one.
    for given, origin in ((path, _weights_option(context)), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise InceptionWeightsError(f"Inception weights {p} (from {origin}) do not exist or are not a file")
            return p
    looked = [hub_checkpoints() / n for n in STANDARD_NAMES]
    for p in looked:
        if p.is_file():
            return p
    raise InceptionWeightsError(
        f"FID Inception-v3 weights not found. Looked at: {_weights_option(context)} (not given), "
        f"${ENV_VAR} (not set), " + ", ".join(map(str, looked)) + ".\n" + how_to_get_weights(context)
    )


def download_weights(dest_dir: str | Path | None = None) -> Path:
    """Download the pytorch-fid weights into ``dest_dir`` (default: the torch hub checkpoints dir).

    Only ever called by an explicit user command (``gankit fetch inception``); nothing else downloads.
    """
    dest = Path(dest_dir) if dest_dir is not None else hub_checkpoints()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / PYTORCH_FID_NAME
    if not target.is_file():
        # hash_prefix: torch.hub deletes the download and raises if the SHA-256 does not match.
        torch.hub.download_url_to_file(URL, str(target), hash_prefix=KNOWN_PREFIX, progress=True)
    verify_sha256(target, KNOWN_PREFIX)
    return target


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime too, so a replaced file is hashed again; chunked, the file is ~95 MB.
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: str | Path) -> str:
    p = Path(path).resolve()
    st = p.stat()
    return _sha256(str(p), st.st_size, st.st_mtime_ns)


def verify_sha256(path: str | Path, expected: str) -> str:
    """Check that the file's SHA-256 starts with ``expected`` (a full digest or a prefix, as in
    torch.hub file names); return the full digest."""
    want = expected.strip().lower()
    if not want or any(c not in "0123456789abcdef" for c in want) or len(want) > 64:
        raise ValueError(f"sha256 must be a hex digest or a prefix of one, got {expected!r}")
    actual = sha256_of(path)
    if not actual.startswith(want):
        raise InvalidWeightsError(
            f"SHA-256 mismatch for {path}: expected {want}{'...' if len(want) < 64 else ''}, "
            f"got {actual}. The file is corrupt (e.g. a partial download) or is not the FID "
            "Inception-v3 weights; delete it and fetch it again (`gankit fetch inception`)."
        )
    return actual


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors only: ``weights_only=True`` refuses any pickle that would construct arbitrary objects."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidWeightsError(
            f"refused to load {path} with torch.load(weights_only=True): {first}. gankit never "
            "unpickles code; the file is corrupt or is not the FID Inception-v3 state dict."
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidWeightsError(f"{path} is not a state dict of tensors, so not the FID Inception-v3 weights")
    return state


def check_layout(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Raise with the missing / unexpected / wrongly shaped keys named."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or shapes:

        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = [
            f"{what} keys ({len(keys)}): {few(keys)}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrongly shaped", shapes))
            if keys
        ]
        raise InvalidWeightsError(
            "the state dict is not the FID Inception-v3 weights (TF-2015 graph, 1008 classes): " + "; ".join(parts)
        )


@functools.cache
def _net_class() -> type:
    # Imported lazily: torch-fidelity adds ~1 s to import time, and `gankit list` should stay fast.
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class FIDInceptionV3(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
            check_layout(state_dict, self.state_dict())  # a clear message before torch's long one
            return super().load_state_dict(state_dict, strict=strict, assign=assign)

    return FIDInceptionV3


class InceptionFeatures(Extractor):
    """Pool3 features (2048) and unbiased logits (1008, for IS) of the FID Inception-v3."""

    name = "inception"
    dim = 2048
    num_classes = 1008

    def __init__(self, path: str | Path, sha256: str | None = None) -> None:
        super().__init__()
        path = Path(path)
        expected = sha256 or (KNOWN_PREFIX if path.name in STANDARD_NAMES else None)
        if expected is not None:
            self.weights_sha256 = verify_sha256(path, expected)
        else:
            self.weights_sha256 = sha256_of(path)
            warnings.warn(
                f"{path.name} is not a standard FID Inception file name and no sha256 was "
                f"given, so it is unverified; its SHA-256 {self.weights_sha256} is recorded "
                "in the protocol",
                stacklevel=2,
            )
        self.weights_file = path.name
        state = load_state_dict(path)
        import torch_fidelity.feature_extractor_inceptionv3 as tfi

        # torch-fidelity's constructor loads its weights with torch.load(weights_only=False), which can
        # run code hidden in a pickle. We have already loaded the tensors safely above, so its torch.load
        # is patched, only for this call, to hand back that dict instead of opening the file.
        try:
            with mock.patch.object(tfi.torch, "load", lambda *a, **k: state):
                self.net = _net_class()(
                    "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
                )
        except InvalidWeightsError as err:
            raise InvalidWeightsError(f"{path}: {err}") from None

    def train(self, mode: bool = True) -> InceptionFeatures:
        # The network is frozen (BN running statistics are part of the protocol): never training mode.
        super().train(mode)
        self.net.eval()
        return self

    def protocol(self) -> dict[str, Any]:
        return {
            **super().protocol(),
            "weights_sha256": self.weights_sha256,
            "weights_file": self.weights_file,
            "resize": RESIZE,
            "input": "uint8 RGB, grayscale repeated",
        }

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(x, "the inception features' input", channels=(1, 3), dtype="float")
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        # Quantise like a saved PNG: FID is defined on 8-bit images, and real data arrive as 8-bit.
        u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        device = next(self.net.parameters()).device
        feats, logits = self.net(u8.to(device))
        return {"features": feats.float(), "logits": logits.float()}


@FEATURES.register("inception", injected=("context",))
def inception(
    weights: str | None = None, sha256: str | None = None, device: str = "auto", context: str | None = "eval"
) -> InceptionFeatures:
    """FID Inception-v3 (TF-2015 graph): pool3 features (2048) and logits (IS); TF1 bilinear resize to 299.

    The network of FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a
    local Nash equilibrium"), KID and the Inception Score (Salimans et al. 2016, "Improved techniques for
    training GANs"); Inception-v3 itself is Szegedy et al. 2016, "Rethinking the Inception architecture".
    Images are quantised to uint8 (as saved PNGs), grayscale is repeated to RGB, and the resize to
    299x299 is TF1's bilinear filter (align_corners=False, no antialias), replicated by torch-fidelity.
    ``weights``: the file (else $GANKIT_INCEPTION_WEIGHTS, else the torch hub cache; never downloads).
    ``sha256``: a full digest or prefix to pin the file; the standard file names are checked against
    their torch.hub prefix 6726825d by default.
    """
    return InceptionFeatures(find_weights(weights, context), sha256=sha256).to(pick_device(device))


def _traits_problem(options: dict[str, Any], source: Any, context: str | None) -> str | None:
    # Only whether the file is there (cheap); its SHA-256 and layout are checked when it is loaded.
    try:
        find_weights(options.get("weights"), context)
    except InceptionWeightsError as err:
        return str(err)
    return None


TRAITS["inception"] = Traits(
    dim=lambda options, source: InceptionFeatures.dim,
    logits=True,
    images_only=True,
    problem=_traits_problem,
    advised=True,
)
