import numpy as np
import torch
from PIL import Image

from gankit.cli import main
from gankit.sampling import generate, load_generator
from gankit.train import checkpoint as ck


def test_list_all_and_one_kind(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("recipes", "objectives", "penalties", "generators", "datasets", "metrics", "dcgan-digits", "wgan-gp"):
        assert word in out
    assert main(["list", "objectives"]) == 0
    out = capsys.readouterr().out
    assert "hinge" in out and "dcgan-digits" not in out
    assert main(["list", "nonsense"]) == 2
    assert "valid kinds" in capsys.readouterr().out


def test_bad_input_fails_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "gan-grid", "schedule.stpes=3", "--out", str(out)]) == 2
    assert "unknown key 'schedule.stpes'" in capsys.readouterr().out
    assert main(["train", "gan-grid", "objective.name=wgan", "--out", str(out)]) == 2
    assert "valid choices" in capsys.readouterr().out
    assert main(["train", "dcgan-mnist", f"data.path={tmp_path / 'nowhere'}", "--out", str(out)]) == 2
    msg = capsys.readouterr().out
    assert "nowhere" in msg and "does not exist" in msg
    assert not out.exists(), "a failed start must not leave a run directory behind"


def test_show_prints_resolved_recipe(capsys):
    assert main(["show", "wgan-grid", "schedule.steps=9"]) == 0
    out = capsys.readouterr().out
    assert "steps: 9" in out and "weight-clipping" in out and "n_critic: 5" in out


def test_train_then_sample(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "dcgan-digits", "schedule.steps=4", "generator.width=8", "discriminator.width=8",
            "schedule.batch_size=8", "ema.start=0", "log.tensorboard=false", "--out", str(run)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "samples:" in out and "checkpoint:" in out and str(run) in out
    assert main(["sample", str(run), "--num", "10", "--out", str(tmp_path / "s.npz")]) == 0
    data = np.load(tmp_path / "s.npz")
    assert data["images"].dtype == np.uint8 and data["images"].shape == (10, 16, 16, 1) and "labels" not in data
    # the file holds exactly what the EMA generator makes from seed 0
    G, _, _, meta = load_generator(run, device="cpu")
    assert meta["weights"] == "G_ema"
    ref = ((generate(G, 10, seed=0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
    assert np.array_equal(data["images"], ref.numpy())
    assert main(["sample", str(ck.find_checkpoint(run)), "--num", "16", "--no-ema", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] >= 64
    assert main(["sample", str(run), "--out", str(tmp_path / "s.txt")]) == 2
    assert main(["sample", str(tmp_path / "none"), "--out", str(tmp_path / "s.npz")]) == 1
    # Truncation: the same seed with a threshold gives other samples; the latent grid has rows x steps cells.
    assert main(["sample", str(run), "--num", "10", "--truncation", "0.5", "--out", str(tmp_path / "t.npz")]) == 0
    assert not np.array_equal(np.load(tmp_path / "t.npz")["images"], data["images"])
    assert main(["latent", str(run), "--rows", "3", "--steps", "5", "--out", str(tmp_path / "walk.png")]) == 0
    w, h = Image.open(tmp_path / "walk.png").size
    assert w > h and round(w / h) == 2  # 5 columns by 3 rows of equal cells
    assert main(["latent", str(run), "--out", str(tmp_path / "walk.jpg")]) == 2


def test_sample_points(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "gan-ring", "schedule.steps=3", "log.tensorboard=false", "--out", str(run)]) == 0
    assert main(["sample", str(run), "--num", "50", "--out", str(tmp_path / "p.npz")]) == 0
    pts = np.load(tmp_path / "p.npz")["points"]
    assert pts.dtype == np.float32 and pts.shape == (50, 2)


def test_readme_quick_start_matches_ci():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text().splitlines()
    start = readme.index("```bash")
    block = readme[start + 1: readme.index("```", start + 1)]
    assert len(block) == 2, "the quick start is exactly two shell lines"
    assert "gankit train" in block[0] and "venv" in block[0]
    assert "pytest" in block[1]
    assert block[1] in (repo / ".ci" / "run").read_text(), ".ci/run must run the README's test command verbatim"


def test_train_prints_the_family_scores(tmp_path, capsys):
    """The semi-supervised family's test_error is not a registered metric, and the summary shows it."""
    run = tmp_path / "run"
    args = ["train", "ssgan-mnist", "data={name: digits, resolution: 16, holdout: 200, labels_per_class: 3}",
            "schedule.steps=3", "generator.width=8", "discriminator.width=8", "schedule.batch_size=16",
            "log.tensorboard=false", "--out", str(run)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test_error" in out and "num_test=200" in out
