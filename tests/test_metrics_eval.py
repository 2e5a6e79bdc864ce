"""The evaluator, its caching and protocol, best-checkpoint keeping, and `gankit eval`."""

import json

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.config import ConfigError
from gankit.data import DATASETS, InMemoryImages
from gankit.data.base import to_float
from gankit.metrics import METRICS
from gankit.metrics.evaluate import Evaluator
from gankit.recipes.load import load_recipe


@pytest.fixture
def digits():
    return DATASETS.build("digits")


def pixel_metrics(n=300):
    return [
        (name, METRICS.build(name, features="pixels", num_samples=n)) for name in ("fid", "kid", "precision-recall")
    ]


def test_scores_separate_real_from_noise_and_carry_their_protocol(digits):
    ev = Evaluator(pixel_metrics(), digits, seed=0)
    real_like, _ = digits.sample_real(300, seed=9)  # other draws from the same set
    good, protocols = ev.evaluate(lambda n: real_like[:n])
    bad, _ = ev.evaluate(lambda n: torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert good["fid"] < 0.2 * bad["fid"]
    assert good["kid"] < 0.1 * bad["kid"]
    assert good["precision"] > 0.5 and bad["precision"] == 0.0
    p = protocols["fid"]
    for key in ("metric", "extractor", "num_fake", "num_real", "reference", "seed", "gankit"):
        assert key in p, key
    assert p["extractor"] == "pixels" and p["num_fake"] == 300
    assert p["reference"]["fingerprint"] == digits.fingerprint()[:16]
    assert protocols["kid"]["subset_size"] == 300  # fewer samples than the standard 1000: recorded


def test_features_are_extracted_once_per_extractor(digits):
    calls = []
    real, _ = digits.sample_real(300, seed=9)

    def generate(n):
        calls.append(n)
        return real[:n]

    metrics = pixel_metrics(300) + [("mmd", METRICS.build("mmd", features="pixels", num_samples=200))]
    Evaluator(metrics, digits).evaluate(generate)
    assert calls == [300]  # one draw, the largest size; the 200-sample metric uses a prefix


def test_images_are_scored_clamped_to_the_image_range(digits):
    """A linear-output G (BEGAN's) is scored on what a user sees, the clamped image."""
    real, _ = digits.sample_real(300, seed=9)
    overshoot = real * 3.0  # same sign, far outside [-1, 1]
    ev = Evaluator(pixel_metrics(), digits, seed=0)
    clamped, _ = ev.evaluate(lambda n: overshoot[:n].clamp(-1, 1))
    raw, _ = ev.evaluate(lambda n: overshoot[:n])
    assert raw == clamped
    assert clamped["fid"] != ev.evaluate(lambda n: overshoot[:n] * 0.5)[0]["fid"]


def test_reference_features_are_cached_by_fingerprint(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    drawn, _ = digits.sample_real(300, seed=3)
    fake = lambda n: drawn[:n]  # noqa: E731
    first, _ = Evaluator(pixel_metrics(), digits).evaluate(fake)
    files = list((tmp_path / "reference").iterdir())
    assert len(files) == 1 and digits.fingerprint()[:16] in files[0].name

    def no_sampling(*a, **k):
        raise AssertionError("the cached reference features should have been used")

    monkeypatch.setattr(digits, "sample_real", no_sampling)
    again, _ = Evaluator(pixel_metrics(), digits).evaluate(fake)
    assert again == first

    # One changed pixel is another dataset: new fingerprint, new statistics, nothing stale reused.
    images = digits.images.clone()
    images[0, 0, 0, 0] ^= 1
    changed = InMemoryImages("digits", images, digits.labels, num_classes=10)
    Evaluator(pixel_metrics(), changed).evaluate(fake)
    assert len(list((tmp_path / "reference").iterdir())) == 2


def test_training_logs_protocol_and_keeps_the_best_checkpoint(tmp_path):
    from gankit.runlog import read_metrics
    from gankit.training.run import start_run

    recipe = load_recipe(
        "dcgan-digits",
        [
            "schedule.steps=60",
            "generator.width=8",
            "discriminator.width=8",
            "log.tensorboard=false",
            "ema.enabled=false",
            "eval.every=20",
            "eval.best=fid",
            "eval.metrics=[{name: fid, features: pixels, num_samples: 300}]",
        ],
    )
    result = start_run(recipe, out=tmp_path / "run")
    rows = [r for r in read_metrics(tmp_path / "run") if "eval/fid" in r]
    assert [r["step"] for r in rows] == [20, 40, 60]
    assert rows[0]["eval/protocol"]["fid"]["extractor"] == "pixels"
    best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
    best_row = min(rows, key=lambda r: r["eval/fid"])
    assert best["value"] == pytest.approx(best_row["eval/fid"]) and best["step"] == best_row["step"]
    assert (tmp_path / "run" / "best" / f"step-{best['step']:07d}" / "weights.safetensors").is_file()
    assert result["eval"]["fid"] == pytest.approx(rows[-1]["eval/fid"])


def test_evaluating_mid_run_leaves_the_training_trajectory_alone(tmp_path, monkeypatch):
    """A metric that draws from torch's global RNG (a cached classifier is initialised before its weights
    load; a probe trains) used to shift every later batch: the weights at step 60 depended on eval.every."""
    from safetensors.torch import load_file

    from gankit.training.run import start_run

    scored = Evaluator.evaluate

    def drawing(self, draw):
        torch.rand(100)  # what building a network does to the global stream
        return scored(self, draw)

    monkeypatch.setattr(Evaluator, "evaluate", drawing)
    base = ["schedule.steps=60", "generator.width=8", "discriminator.width=8", "log.tensorboard=false"]
    base += ["eval.metrics=[{name: kid, features: pixels, num_samples: 100}]", "eval.best=null"]
    weights = {}
    for every in (0, 20):
        out = tmp_path / f"every{every}"
        start_run(load_recipe("dcgan-digits", [*base, f"eval.every={every}"]), out=out)
        weights[every] = load_file(out / "checkpoints" / "step-0000060" / "weights.safetensors")
    assert weights[0].keys() == weights[20].keys()
    differ = [k for k in weights[0] if not torch.equal(weights[0][k], weights[20][k])]
    assert not differ, f"evaluating every 20 steps changed {len(differ)} tensors, e.g. {differ[:3]}"


def test_best_must_name_a_score_of_the_recipe():
    from gankit.training.trainer import Trainer

    recipe = load_recipe("gan-grid", ["eval.best=fid", "log.tensorboard=false"])
    with pytest.raises(ConfigError, match="modes"):
        Trainer(recipe, "/nonexistent")


def save_npz(path, images):
    np.savez(path, images=((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())


def test_cli_eval_compares_two_files(tmp_path, digits, capsys):
    a, _ = digits.sample_real(400, seed=1)
    save_npz(tmp_path / "a.npz", a)
    save_npz(tmp_path / "noise.npz", torch.rand(400, 1, 16, 16) * 2 - 1)
    out = tmp_path / "scores.json"
    args = ["eval", "--real", str(tmp_path / "a.npz"), "--features", "pixels", "--metrics", "fid,kid", "--num", "400"]
    assert main([*args, "--fake", str(tmp_path / "a.npz"), "--out", str(out)]) == 0
    same = json.loads(out.read_text())
    assert same["results"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["protocol"]["fid"]["num_real"] == 400
    assert main([*args, "--fake", str(tmp_path / "noise.npz"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["results"]["fid"] > 100
    assert "fid" in capsys.readouterr().out


def test_cli_eval_of_a_run_appends_to_its_eval_log(tmp_path):
    run = tmp_path / "run"
    # Pixel FID at the end too: the recipe's classifier-FID would train a classifier (~40 s) for nothing here.
    assert (
        main(
            [
                "train",
                "dcgan-digits",
                "schedule.steps=5",
                "generator.width=8",
                "discriminator.width=8",
                "log.tensorboard=false",
                "eval.metrics=[{name: fid, features: pixels, num_samples: 300}]",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert main(["eval", str(run), "--features", "pixels", "--metrics", "fid,swd", "--num", "300"]) == 0
    record = json.loads((run / "eval.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 5 and set(record["results"]) == {"fid", "swd"}
    assert record["protocol"]["sliced-wasserstein"]["reference"]["dataset"] == "digits"


def test_cli_eval_without_inception_weights_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    np.savez(tmp_path / "a.npz", images=np.zeros((20, 8, 8), np.uint8))
    code = main(["eval", "--real", str(tmp_path / "a.npz"), "--fake", str(tmp_path / "a.npz"), "--num", "20"])
    text = capsys.readouterr().out
    assert code != 0 and "gankit fetch inception" in text and "--features classifier" in text


def test_cli_eval_rejects_bad_input(tmp_path, capsys):
    assert main(["eval"]) == 2
    assert main(["eval", "--real", "x.npz"]) == 2
    np.savez(tmp_path / "a.npz", images=np.zeros((20, 8, 8), np.uint8))
    assert (
        main(
            [
                "eval",
                "--real",
                str(tmp_path / "a.npz"),
                "--fake",
                str(tmp_path / "a.npz"),
                "--metrics",
                "fid,nope",
                "--features",
                "pixels",
            ]
        )
        == 2
    )
    assert "nope" in capsys.readouterr().out


def test_npz_dataset_reads_medmnist_layout(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (10, 28, 28, 3), dtype=np.uint8)
    np.savez(tmp_path / "m.npz", train_images=x, train_labels=np.arange(10).reshape(10, 1) % 5)
    src = DATASETS.build("npz", path=str(tmp_path / "m.npz"), key="train_images", labels_key="train_labels")
    assert src.shape == (3, 28, 28) and src.num_classes == 5
    assert torch.equal(src.images[3], torch.from_numpy(x[3]).permute(2, 0, 1))
    np.savez(tmp_path / "f.npz", images=x.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        DATASETS.build("npz", path=str(tmp_path / "f.npz"))
    assert to_float(src.images).min() >= -1


def test_classifier_fid_tells_real_from_blurred_mnist(mnist_dir):
    # Two disjoint halves of the MNIST test split: real-vs-real must be far below real-vs-blurred.
    import torchvision

    src = DATASETS.build("mnist", path=str(mnist_dir), split="test")
    half = InMemoryImages("mnist", src.images[:5000], src.labels[:5000], num_classes=10)
    other = to_float(src.images[5000:])
    blurred = torchvision.transforms.functional.gaussian_blur(other, kernel_size=5, sigma=1.0)
    metrics = [
        (n, METRICS.build(n, features="classifier", num_samples=5000, feature_options={"epochs": 2}))
        for n in ("fid", "kid", "inception-score")
    ]
    ev = Evaluator(metrics, half)
    real, protocol = ev.evaluate(lambda n: other[:n])
    blur, _ = ev.evaluate(lambda n: blurred[:n])
    print(
        f"classifier-FID real-vs-real {real['fid']:.2f}, real-vs-blurred {blur['fid']:.2f}; "
        f"KID {real['kid']:.3f} vs {blur['kid']:.3f}; IS {real['is']:.2f} vs {blur['is']:.2f}"
    )
    assert real["fid"] < 0.25 * blur["fid"]
    assert real["kid"] < 0.25 * blur["kid"]
    assert real["is"] > 8.0 > blur["is"]  # 10 balanced, confidently classified digits score near 10
    assert protocol["fid"]["trained_on"] == half.fingerprint()[:16]


# -- start-up check: every metric against the data, before step 0 ----------------------------------------
def _unlabelled_folder(root, n=80, size=32):
    from PIL import Image

    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return root


def test_training_refuses_a_metric_the_data_cannot_serve_before_step_0(tmp_path, monkeypatch, capsys):
    """The issue's example: dcgan-digits on an unlabelled folder trained, then its end-of-run evaluation
    failed because the classifier extractor needs labels. Now the Trainer refuses it when built, before
    the run directory is written, with advice in recipe keys (no `--features`, which `train` lacks)."""
    from gankit.training.trainer import Trainer

    folder = _unlabelled_folder(tmp_path / "imgs")
    overrides = [
        "data.name=image-folder",
        f"data.path={folder}",
        "data.resolution=32",
        "data.channels=3",
        "schedule.steps=100",
        "schedule.batch_size=16",
        "log.tensorboard=false",
    ]
    with pytest.raises(ConfigError) as err:
        Trainer(load_recipe("dcgan-digits", overrides), tmp_path / "run")
    msg = str(err.value)
    assert "metrics 'fid', 'inception-score' (features: classifier)" in msg and "has no labels" in msg
    assert "eval.metrics=[{name: fid, features: random-projection, num_samples: 1797}]" in msg
    assert "--features" not in msg and "--metrics" not in msg
    assert not (tmp_path / "run").exists()

    # Through the command line: status 2, no run directory, and no training step taken.
    monkeypatch.setattr(Trainer, "train_step", lambda *a, **k: pytest.fail("trained a step"))
    assert main(["train", "dcgan-digits", *overrides, "--out", str(tmp_path / "run")]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "error: metrics 'fid', 'inception-score' (features: classifier)" in out and "eval.metrics=[" in out
    assert not (tmp_path / "run").exists()


def test_the_advice_names_what_the_command_takes(digits):
    unlabelled = DATASETS.build("digits", labels=False)
    metrics = [
        ("fid", METRICS.build("fid", features="classifier", num_samples=300)),
        ("kid", METRICS.build("kid", features="pixels", num_samples=300)),
    ]
    with pytest.raises(ConfigError) as train:
        Evaluator(metrics, unlabelled)  # context="train", the default: the trainer's
    with pytest.raises(ConfigError) as cli:
        Evaluator(metrics, unlabelled, context="eval")
    assert "eval.metrics=[{name: fid, features: random-projection, num_samples: 300}]" in str(train.value)
    assert "--features" not in str(train.value)
    assert "--features random-projection or --features inception" in str(cli.value)
    assert "eval.metrics" not in str(cli.value)
    # Image metrics on 2-D points, and too few samples: likewise phrased for each command.
    ring = DATASETS.build("ring")
    pix = [("fid", METRICS.build("fid", features="pixels", num_samples=300))]
    cnn = [("fid", METRICS.build("fid", features="inception", num_samples=3000))]
    assert "eval.metrics=[{name: toy-mixture}]" in _refusal(cnn, ring, "train")
    assert "--metrics toy-mixture" in _refusal(cnn, ring, "eval")
    Evaluator(pix, ring)  # pixels of 2-D points: a Frechet distance of the points, as tests/test_distributed.py uses
    few = [("fid", METRICS.build("fid", features="pixels", num_samples=100))]
    assert "eval.metrics=[{name: fid, features: pixels, num_samples: 257}]" in _refusal(few, digits, "train")
    assert "(--num 257 --num-real 257)" in _refusal(few, digits, "eval")
    with pytest.raises(ValueError, match="context"):
        Evaluator(pix, digits, context="bench")


def _refusal(metrics, source, context):
    with pytest.raises(ConfigError) as err:
        Evaluator(metrics, source, context=context)
    return str(err.value)


def test_training_with_missing_inception_weights_is_refused_at_start_up(tmp_path, monkeypatch):
    from gankit.training.trainer import Trainer

    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    recipe = load_recipe(
        "dcgan-digits", ["log.tensorboard=false", "eval.metrics=[{name: fid, features: inception, num_samples: 2100}]"]
    )
    with pytest.raises(ConfigError) as err:
        Trainer(recipe, tmp_path / "run")
    msg = str(err.value)
    assert "gankit fetch inception" in msg and "feature_options: {weights: PATH}" in msg
    assert "--inception-weights" not in msg and "--features" not in msg
    assert not (tmp_path / "run").exists()


def test_a_recipe_with_an_unknown_extractor_fails_at_start_up(tmp_path):
    from gankit.registry import RegistryError
    from gankit.training.trainer import Trainer

    recipe = load_recipe("dcgan-digits", ["log.tensorboard=false", "eval.metrics=[{name: fid, features: pixles}]"])
    with pytest.raises((ConfigError, RegistryError), match="unknown feature extractor 'pixles'; valid choices"):
        Trainer(recipe, tmp_path / "run")
