"""The FID Inception extractor, tested offline: a randomly initialised network with the same layout
stands in for the real weights (nothing is downloaded)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from unittest import mock

import pytest
import torch

from gankit.metrics import inception as inc
from gankit.metrics.features import FEATURES, extract


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    path = tmp_path_factory.mktemp("w") / "random-inception.pth"  # a non-standard name
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def ext(weights: Path) -> inc.InceptionFeatures:
    return FEATURES.build("inception", weights=str(weights), sha256=digest(weights), device="cpu")


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(inc.ENV_VAR, raising=False)


def test_shapes_grayscale_and_rgb(ext: inc.InceptionFeatures) -> None:
    g = torch.Generator().manual_seed(1)
    for shape in [(2, 1, 28, 28), (2, 3, 64, 64)]:
        out = ext(torch.rand(shape, generator=g) * 2 - 1)
        assert out["features"].shape == (2, 2048) and out["logits"].shape == (2, 1008)
        assert out["features"].dtype == out["logits"].dtype == torch.float32
        assert torch.isfinite(out["features"]).all()
    assert (ext.dim, ext.num_classes, ext.name) == (2048, 1008, "inception")


def test_matches_torch_fidelity_on_quantised_input(ext: inc.InceptionFeatures, weights: Path) -> None:
    # An independent torch-fidelity module (its torch.load patched to our safely loaded tensors)
    # run on the uint8 images we expect gankit to produce: checks quantisation, grayscale repeat,
    # the requested layers and that the weights really were loaded.
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    state = torch.load(weights, map_location="cpu", weights_only=True)
    with mock.patch.object(tfi.torch, "load", lambda *a, **k: state):
        ref = tfi.FeatureExtractorInceptionV3("ref", ["2048", "logits_unbiased"], feature_extractor_weights_path="x")
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2.2 - 1.1  # some out of range
    u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).repeat(1, 3, 1, 1)
    feats, logits = ref(u8)
    out = extract(ext, x, batch_size=2)
    torch.testing.assert_close(out["features"], feats, rtol=0, atol=0)
    torch.testing.assert_close(out["logits"], logits, rtol=0, atol=0)
    assert tfi.torch.load is torch.load  # the patch was scoped to the constructor


def test_protocol_and_frozen(ext: inc.InceptionFeatures, weights: Path) -> None:
    p = ext.protocol()
    assert p == {
        "extractor": "inception",
        "dim": 2048,
        "weights_sha256": digest(weights),
        "weights_file": "random-inception.pth",
        "resize": inc.RESIZE,
        "input": "uint8 RGB, grayscale repeated",
    }
    assert "tf1-bilinear" in p["resize"] and len(ext.key()) == 16
    ext.train()
    assert not ext.net.training and not any(q.requires_grad for q in ext.net.parameters())


def test_registry_entry() -> None:
    assert "inception" in FEATURES
    desc = FEATURES.describe()["inception"]
    assert "Inception-v3" in desc and "299" in desc
    doc = FEATURES.get("inception").__doc__
    assert "Heusel" in doc and "Szegedy" in doc and "Salimans" in doc


def test_sha256_mismatch_names_both_hashes(weights: Path) -> None:
    with pytest.raises(inc.InvalidWeightsError) as e:
        inc.InceptionFeatures(weights, sha256="0" * 64)
    msg = str(e.value)
    assert "0" * 64 in msg and digest(weights) in msg and "not the FID" in msg and str(weights) in msg


def test_standard_name_checked_against_known_prefix(tmp_path: Path) -> None:
    fake = tmp_path / inc.PYTORCH_FID_NAME
    fake.write_bytes(b"not the inception weights")
    assert not digest(fake).startswith(inc.KNOWN_PREFIX)
    with pytest.raises(inc.InvalidWeightsError) as e:
        inc.InceptionFeatures(fake)
    assert "expected 6726825d" in str(e.value) and digest(fake) in str(e.value)
    with pytest.raises(ValueError, match="hex"):
        inc.verify_sha256(fake, "not-hex")


def test_unverified_name_warns_and_records_hash(weights: Path) -> None:
    with pytest.warns(UserWarning, match="unverified"):
        e = inc.InceptionFeatures(weights)
    assert e.protocol()["weights_sha256"] == digest(weights)


def test_wrong_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "small.pth"
    torch.save(torch.nn.Linear(3, 4).state_dict(), path)
    with pytest.raises(inc.InvalidWeightsError) as e:
        inc.InceptionFeatures(path, sha256=digest(path))
    msg = str(e.value)
    assert "not the FID Inception-v3 weights" in msg and "missing keys" in msg
    assert "unexpected keys (2): bias, weight" in msg and "Conv2d_1a_3x3" in msg


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "x": _Payload(marker)}, path)
    with pytest.raises(inc.InvalidWeightsError, match="weights_only=True"):
        inc.InceptionFeatures(path, sha256=digest(path))
    assert not marker.exists()
    # The payload is live: an unsafe load would have run it (this is what we refuse to do).
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_find_weights_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    with pytest.raises(inc.InceptionWeightsError) as e:
        inc.find_weights(None)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    for needle in (
        "gankit fetch inception",
        inc.URL,
        "--inception-weights",
        inc.ENV_VAR,
        "--features classifier",
        str(hub / "checkpoints" / inc.PYTORCH_FID_NAME),
        inc.TORCH_FIDELITY_NAME,
    ):
        assert needle in msg
    (hub / "checkpoints").mkdir(parents=True)
    cached = hub / "checkpoints" / inc.TORCH_FIDELITY_NAME
    cached.write_bytes(b"x")
    assert inc.find_weights(None) == cached
    env = tmp_path / "env.pth"
    env.write_bytes(b"x")
    monkeypatch.setenv(inc.ENV_VAR, str(env))
    assert inc.find_weights(None) == env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"x")
    assert inc.find_weights(str(explicit)) == explicit
    with pytest.raises(inc.InceptionWeightsError, match="--inception-weights"):
        inc.find_weights(str(tmp_path / "missing.pth"))  # a named file that is missing: no fallback
    monkeypatch.setenv(inc.ENV_VAR, str(tmp_path / "missing.pth"))
    with pytest.raises(inc.InceptionWeightsError, match=inc.ENV_VAR):
        inc.find_weights(None)
