"""`gankit eval` on the inputs people actually give it (issue 19, "Scores that mean what they say").

Fewer images than asked for are used once, never repeated, and the protocol says how many; a metric
below the fewest samples its estimator is defined for is refused; real and generated images of
different shapes are an error for every extractor; unreadable files in a folder are skipped and
counted as training does; a classifier trained on too few images per class is refused; and every bad
input ends as one ``error:`` line with exit status 2, never a traceback. Fast: pixels and
random-projection features on small arrays written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.config import ConfigError
from gankit.data import DATASETS, InMemoryImages
from gankit.metrics import METRICS
from gankit.metrics.classifier import MIN_IMAGES_PER_CLASS
from gankit.metrics.evaluate import Evaluator


@pytest.fixture(scope="module")
def digits() -> InMemoryImages:
    return DATASETS.build("digits")  # 1797 labelled 16x16 images, built in


def save_npz(path: Path, images: torch.Tensor, labels: torch.Tensor | None = None) -> Path:
    """Float NCHW images in [-1, 1] as the uint8 NHWC arrays `gankit sample` writes."""
    arrays = {"images": ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    np.savez(path, **arrays)
    return path


def write_folder(root: Path, n: int, size: int = 16, classes: int = 0, seed: int = 0) -> Path:
    """``n`` random grey PNGs, in ``classes`` subfolders when > 0."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        folder = root / f"c{i % classes}" if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return root


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def run_eval(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["eval", *args])
    return code, flat(capsys.readouterr().out)


# -- 1. counts: what exists, recorded; minimums per metric ---------------------------------------------
def test_fewer_real_images_than_asked_are_used_once_and_recorded(tmp_path, digits, capsys):
    """Today the 300 reals were repeated to 400 and the protocol said num_real=400."""
    real, _ = digits.sample_real(300, seed=1)
    fake, _ = digits.sample_real(400, seed=2)
    out = tmp_path / "scores.json"
    code, text = run_eval(
        capsys,
        "--real",
        str(save_npz(tmp_path / "r.npz", real)),
        "--fake",
        str(save_npz(tmp_path / "f.npz", fake)),
        "--features",
        "random-projection",
        "--metrics",
        "kid,pr",
        "--num",
        "400",
        "--out",
        str(out),
    )
    assert code == 0, text
    protocol = json.loads(out.read_text())["protocol"]
    assert protocol["kid"]["num_real"] == 300 and protocol["kid"]["num_fake"] == 400
    assert protocol["kid"]["subset_size"] == 300  # derived from the counts actually scored
    assert protocol["precision-recall"]["num_real"] == 300
    assert "warning:" in text and "holds 300" in text and "none repeated" in text


def test_num_defaults_to_what_the_files_hold(tmp_path, digits, capsys):
    """Today --num defaulted to 10000, and 200 generated images were an error."""
    real, _ = digits.sample_real(300, seed=1)
    fake, _ = digits.sample_real(200, seed=2)
    out = tmp_path / "scores.json"
    code, text = run_eval(
        capsys,
        "--real",
        str(save_npz(tmp_path / "r.npz", real)),
        "--fake",
        str(save_npz(tmp_path / "f.npz", fake)),
        "--features",
        "random-projection",
        "--metrics",
        "kid,dc",
        "--out",
        str(out),
    )
    assert code == 0, text
    protocol = json.loads(out.read_text())["protocol"]
    assert (protocol["kid"]["num_fake"], protocol["kid"]["num_real"]) == (200, 300)
    assert (protocol["density-coverage"]["num_fake"], protocol["density-coverage"]["num_real"]) == (200, 300)
    assert "warning:" not in text  # everything asked for exists


def test_too_few_real_images_for_density_coverage_is_refused(tmp_path, digits, capsys):
    """5 real images cannot give k = 5 nearest neighbours; today they were repeated to 400 and scored."""
    real, _ = digits.sample_real(5, seed=1)
    fake, _ = digits.sample_real(400, seed=2)
    code, text = run_eval(
        capsys,
        "--real",
        str(save_npz(tmp_path / "r.npz", real)),
        "--fake",
        str(save_npz(tmp_path / "f.npz", fake)),
        "--features",
        "random-projection",
        "--metrics",
        "dc",
        "--num",
        "400",
    )
    assert code == 2
    assert "error: metric 'density-coverage' needs at least 2 generated and 6 real samples" in text
    assert "would score 400 generated and 5 real" in text and "a reference set of at least 6 images" in text


def test_fid_needs_more_samples_than_feature_dimensions(tmp_path, digits, capsys):
    """100 real 16x16 images (256 pixel dimensions): a singular covariance. Today they were repeated to
    400, which made the covariance full rank in appearance only, and FID came back as a number."""
    real, _ = digits.sample_real(100, seed=1)
    fake, _ = digits.sample_real(400, seed=2)
    code, text = run_eval(
        capsys,
        "--real",
        str(save_npz(tmp_path / "r.npz", real)),
        "--fake",
        str(save_npz(tmp_path / "f.npz", fake)),
        "--features",
        "pixels",
        "--metrics",
        "fid",
        "--num",
        "400",
    )
    assert code == 2
    assert "metric 'fid' needs at least 257 generated and 257 real samples of 256-d features" in text
    assert "singular" in text and "would score 400 generated and 100 real" in text


def test_minimums_are_checked_per_metric_before_any_feature_is_extracted(digits, monkeypatch):
    def no_extraction(*a, **k):
        raise AssertionError("a refused metric must not extract features")

    monkeypatch.setattr("gankit.metrics.evaluate.extract", no_extraction)
    cases = {  # metric -> (options, the message)
        "precision-recall": ({"num_samples": 3}, "needs at least 4 generated and 4 real"),
        "inception-score": ({"num_samples": 5, "features": "classifier"}, "needs at least 10 generated"),
        "fid-infinity": ({"num_samples": 257, "features": "pixels"}, "needs at least 258 generated"),
    }
    for name, (options, message) in cases.items():
        metric = METRICS.build(name, **{"features": "random-projection", **options})
        with pytest.raises(ConfigError, match=message):
            Evaluator([(name, metric)], digits)
    # A reference set smaller than num_real is scored whole: the counts say so.
    big = METRICS.build("kid", features="random-projection", num_samples=300, num_real=5000)
    with pytest.warns(UserWarning, match="asks for 5000 real images but the reference set 'digits' holds 1797"):
        ev = Evaluator([("kid", big)], digits)
    assert ev.counts["kid"] == (300, 1797)


def test_class_metrics_need_class_logits(tmp_path, digits, capsys):
    real, _ = digits.sample_real(50, seed=1)
    args = ["--real", str(save_npz(tmp_path / "r.npz", real)), "--fake", str(tmp_path / "r.npz")]
    code, text = run_eval(capsys, *args, "--features", "pixels", "--metrics", "kid,classes")
    assert code == 2
    assert "metric 'class-coverage' (features: pixels) needs class probabilities (logits)" in text
    assert "--features inception" in text and "leave class-coverage out of --metrics (--metrics kid)" in text
    code, text = run_eval(capsys, *args, "--features", "pixels", "--metrics", "agree")
    assert code == 2 and "needs the classifier's own classes" in text


# -- 2. shapes, unreadable files, and no tracebacks ----------------------------------------------------
@pytest.mark.parametrize("features", ["pixels", "random-projection", "classifier", "inception"])
def test_real_and_fake_of_different_shapes_is_an_error_for_every_extractor(tmp_path, digits, capsys, features):
    """Today: pixels raised a raw RuntimeError; random-projection returned KID for 16 px vs 32 px."""
    real, labels = digits.sample_real(300, seed=1)
    save_npz(tmp_path / "r.npz", real, labels)
    big = torch.nn.functional.interpolate(real, size=(32, 32))
    save_npz(tmp_path / "f32.npz", big)
    save_npz(tmp_path / "rgb.npz", real.repeat(1, 3, 1, 1))
    for fake, shape in (("f32.npz", "1x32x32"), ("rgb.npz", "3x16x16")):
        code, text = run_eval(
            capsys,
            "--real",
            str(tmp_path / "r.npz"),
            "--fake",
            str(tmp_path / fake),
            "--features",
            features,
            "--metrics",
            "kid",
        )
        assert code == 2, text
        assert f"holds {shape} images but --real" in text and "holds 1x16x16" in text and "one shape" in text


def test_generated_images_of_another_shape_are_refused_by_the_evaluator(digits):
    """The same rule for a generator (or any caller of Evaluator.evaluate), whatever the extractor."""
    for features in ("pixels", "random-projection"):
        ev = Evaluator([("kid", METRICS.build("kid", features=features, num_samples=50))], digits)
        with pytest.raises(ValueError, match=r"generated images are 1x32x32 .* images of 'digits' are 1x16x16"):
            ev.evaluate(lambda n: torch.zeros(n, 1, 32, 32))


def test_random_projection_refuses_a_second_image_size():
    from gankit.metrics.features import build_extractor

    rp = build_extractor("random-projection")
    rp(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="first given images of 256 values and now"):
        rp(torch.zeros(2, 1, 32, 32))


def test_unreadable_files_in_folders_are_skipped_and_counted(tmp_path, capsys):
    real = write_folder(tmp_path / "real", 150)
    fake = write_folder(tmp_path / "fake", 150, seed=1)
    (real / "broken.png").write_bytes(b"<html>404</html>")
    (fake / "cut.png").write_bytes((fake / "0000.png").read_bytes()[:40])
    out = tmp_path / "scores.json"
    code, text = run_eval(
        capsys,
        "--real",
        str(real),
        "--fake",
        str(fake),
        "--features",
        "random-projection",
        "--metrics",
        "kid",
        "--out",
        str(out),
    )
    assert code == 0, text
    assert f"1 of 151 files under --real '{real}' cannot be read as images" in text
    assert f"1 of 151 files under --fake '{fake}' cannot be read as images" in text
    assert "skipped them (150 images used)" in text and "data.max_unreadable" not in text
    protocol = json.loads(out.read_text())["protocol"]["kid"]
    assert (protocol["num_fake"], protocol["num_real"]) == (150, 150)
    # More than --max-unreadable of a folder: an error naming this command's option, not a recipe key.
    code, text = run_eval(
        capsys,
        "--real",
        str(real),
        "--fake",
        str(fake),
        "--features",
        "random-projection",
        "--metrics",
        "kid",
        "--max-unreadable",
        "0.001",
    )
    assert code == 2 and "raise --max-unreadable (now 0.001) to skip them" in text
    assert "data.max_unreadable" not in text


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (eval arguments, a phrase the error must contain)."""
    rng = np.random.default_rng(0)
    good = tmp / "good.npz"
    np.savez(good, images=rng.integers(0, 256, (40, 16, 16), dtype=np.uint8))
    np.savez(tmp / "keys.npz", pictures=rng.integers(0, 256, (40, 16, 16), dtype=np.uint8))
    np.savez(tmp / "float.npz", images=rng.random((40, 16, 16)).astype(np.float32))
    np.savez(tmp / "empty_array.npz", images=np.zeros((0, 16, 16), np.uint8))
    np.savez(tmp / "big.npz", images=rng.integers(0, 256, (40, 32, 32), dtype=np.uint8))
    np.savez(tmp / "one.npz", images=rng.integers(0, 256, (1, 16, 16), dtype=np.uint8))
    (tmp / "junk.npz").write_text("not a zip archive")
    (tmp / "notes.txt").write_text("hello")
    (tmp / "empty").mkdir()
    (tmp / "texts").mkdir()
    (tmp / "texts" / "a.txt").write_text("no images here")
    (tmp / "broken").mkdir()
    for i in range(3):
        (tmp / "broken" / f"{i}.png").write_bytes(b"garbage")
    g, px = str(good), ["--features", "pixels", "--metrics", "kid"]
    return {
        "missing file": (["--real", str(tmp / "nope.npz"), "--fake", g, *px], "does not exist"),
        "missing run": ([str(tmp / "no-run"), *px], "does not exist"),
        "wrong npz keys": (
            ["--real", str(tmp / "keys.npz"), "--fake", g, *px],
            "has no array 'images' (its arrays: pictures)",
        ),
        "wrong dtype": (
            ["--real", g, "--fake", str(tmp / "float.npz"), *px],
            "is float32; gankit reads images as uint8",
        ),
        "empty array": (["--real", str(tmp / "empty_array.npz"), "--fake", g, *px], "holds no images"),
        "one image": (["--real", g, "--fake", str(tmp / "one.npz"), *px], "--fake holds 1 image"),
        "not a zip": (["--real", str(tmp / "junk.npz"), "--fake", g, *px], "cannot be read as an .npz file"),
        "not an npz": (["--real", str(tmp / "notes.txt"), "--fake", g, *px], "neither an .npz file nor a folder"),
        "empty folder": (["--real", str(tmp / "empty"), "--fake", g, *px], "no images found under --real"),
        "folder of non-images": (["--real", str(tmp / "texts"), "--fake", g, *px], "no images found under --real"),
        "unreadable folder": (["--real", str(tmp / "broken"), "--fake", g, *px], "none of the 3 image files"),
        "mismatched shapes": (["--real", g, "--fake", str(tmp / "big.npz"), *px], "must have one shape"),
        "unknown metric": (
            ["--real", g, "--fake", g, "--features", "pixels", "--metrics", "fid,nope"],
            "unknown metric 'nope'",
        ),
        "unknown extractor": (
            ["--real", g, "--fake", g, "--features", "nope", "--metrics", "kid"],
            "unknown feature extractor 'nope'",
        ),
        "num too small": (["--real", g, "--fake", g, "--num", "1", *px], "--num must be at least 2"),
        "bad max-unreadable": (
            ["--real", g, "--fake", g, "--max-unreadable", "2", *px],
            "--max-unreadable is a fraction",
        ),
    }


def test_every_bad_input_is_one_error_line_with_status_2(tmp_path, capsys):
    for name, (args, phrase) in _bad_inputs(tmp_path).items():
        code, text = run_eval(capsys, *args)  # a traceback would fail the test here
        assert code == 2, f"{name}: status {code}: {text}"
        assert text.startswith("error:") and phrase in text, f"{name}: {text}"
        assert "data.path" not in text and "data.key" not in text, f"{name}: names a recipe key: {text}"


# -- 3. the classifier extractor on too few images per class -------------------------------------------
def test_classifier_on_too_few_images_per_class_is_refused(tmp_path, capsys):
    """Today a pure-noise generator scored classifier-FID 0.8 against 20 digits per class."""
    real = write_folder(tmp_path / "real", 2 * (MIN_IMAGES_PER_CLASS - 1), classes=2)  # one short per class
    fake = write_folder(tmp_path / "fake", 40, seed=1)
    code, text = run_eval(
        capsys, "--real", str(real), "--fake", str(fake), "--features", "classifier", "--metrics", "kid", "--num", "40"
    )
    assert code == 2, text
    assert f"2 of them with fewer than {MIN_IMAGES_PER_CLASS} images" in text
    assert f"class 0 has {MIN_IMAGES_PER_CLASS - 1}" in text and "--features random-projection" in text
    assert "eval.metrics" not in text


def test_minimum_images_per_class_counts_the_smallest_class(digits):
    from gankit.metrics.classifier import source_problem

    def per_class(counts: list[int]) -> InMemoryImages:
        idx = torch.cat([(digits.labels == k).nonzero().flatten()[:c] for k, c in enumerate(counts)])
        return digits.subset(idx, "digits")

    assert source_problem(per_class([MIN_IMAGES_PER_CLASS] * 10)) is None
    short = per_class([MIN_IMAGES_PER_CLASS] * 3 + [MIN_IMAGES_PER_CLASS - 1] + [MIN_IMAGES_PER_CLASS] * 6)
    assert f"class 3 has {MIN_IMAGES_PER_CLASS - 1}" in source_problem(short)
    assert source_problem(short, weights="trained-elsewhere.safetensors") is None  # not trained here
