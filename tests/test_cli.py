import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.runlog import checkpoint as ck
from gankit.sampling import generate, load_generator


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
    nowhere = tmp_path / ("nowhere-" * 12)  # longer than a line: the message must not break it
    assert main(["train", "dcgan-mnist", f"data.path={nowhere}", "--out", str(out)]) == 2
    msg = capsys.readouterr().out
    assert str(nowhere) in msg and "does not exist" in msg
    assert not out.exists(), "a failed start must not leave a run directory behind"


def test_a_batch_the_minibatch_stddev_groups_do_not_divide_fails_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    mbstd = ["discriminator.minibatch_stddev=4", "schedule.steps=1", "--out", str(out)]
    assert main(["train", "gan-grid", "schedule.batch_size=10", *mbstd]) == 2
    assert "do not divide the 10 rows" in capsys.readouterr().out
    # PacGAN: D sees one row per pack, so 12 samples in pairs are 6 rows, which groups of 4 do not divide
    pac = "tricks=[{name: pacgan, m: 2}]"
    assert main(["train", "gan-grid", "schedule.batch_size=12", pac, *mbstd]) == 2
    assert "do not divide the 6 rows" in capsys.readouterr().out
    assert not out.exists(), "a failed start must not leave a run directory behind"
    assert main(["train", "gan-grid", "schedule.batch_size=16", pac, "eval.metrics=[]", "eval.best=null", *mbstd]) == 0


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["eval", "--real", "r.npz"], "give both --real PATH and --fake PATH"),
        (["eval"], "give a RUN_DIR (or checkpoint) to evaluate"),
        (
            ["eval", "run", "--features", "classifier", "--inception-weights", "w.pt"],
            "--inception-weights only applies with --features inception",
        ),
        (["train", "gan-grid", "--resume", "run"], "with --resume, give only key=value overrides"),
    ],
)
def test_every_command_refuses_bad_flags_through_one_error_line(argv, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: ") and says in out
    assert not any(tmp_path.iterdir())


def test_show_prints_resolved_recipe(capsys):
    assert main(["show", "wgan-grid", "schedule.steps=9"]) == 0
    out = capsys.readouterr().out
    assert "steps: 9" in out and "weight-clipping" in out and "n_critic: 5" in out


def test_train_then_sample(tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "train",
        "dcgan-digits",
        "schedule.steps=4",
        "generator.width=8",
        "discriminator.width=8",
        "schedule.batch_size=8",
        "ema.start=0",
        "log.tensorboard=false",
        "--out",
        str(run),
    ]
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
    assert (
        main(["sample", str(ck.find_checkpoint(run)), "--num", "16", "--no-ema", "--out", str(tmp_path / "g.png")]) == 0
    )
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
    block = readme[start + 1 : readme.index("```", start + 1)]
    assert len(block) == 2, "the quick start is exactly two shell lines"
    assert "gankit train" in block[0] and "venv" in block[0]
    assert "pytest" in block[1]
    assert block[1] in (repo / ".ci" / "run").read_text(), ".ci/run must run the README's test command verbatim"


def test_train_prints_the_family_scores(tmp_path, capsys):
    """The semi-supervised family's test_error is not a registered metric, and the summary shows it."""
    run = tmp_path / "run"
    args = [
        "train",
        "ssgan-mnist",
        "data={name: digits, resolution: 16, holdout: 200, labels_per_class: 3}",
        "schedule.steps=3",
        "generator.width=8",
        "discriminator.width=8",
        "schedule.batch_size=16",
        "log.tensorboard=false",
        "--out",
        str(run),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test_error" in out and "num_test=200" in out


# -- issue 19: --version, show with defaults, short list, escaped text, intermixed options -----------------
TINY = ["schedule.steps=2", "log.every=1", "log.sample_every=0", "log.checkpoint_every=0", "log.tensorboard=false"]


def test_version(capsys):
    import pytest

    import gankit

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"gankit {gankit.__version__}\n"


def test_show_prints_every_option_with_its_default(capsys):
    import inspect
    import re

    import yaml

    from gankit.penalties import PENALTIES

    assert main(["show", "gan-grid", "penalties=[{name: r1}]"]) == 0
    text = capsys.readouterr().out
    r1 = yaml.safe_load(text)["penalties"][0]
    for opt, param in inspect.signature(PENALTIES.get("r1")).parameters.items():
        if param.default is not inspect.Parameter.empty:
            assert r1[opt] == param.default, opt  # r1's gamma and every, not just its name
    assert re.search(r"^  gamma: \S+  # default$", text, re.M)
    assert re.search(r"^  z_dim: 2$", text, re.M)  # the recipe's own value: no comment
    # A family's setting for D is shown as the family's, not as D's default (which would contradict it).
    assert main(["show", "acgan-mnist", "data.path=nowhere"]) == 0
    assert "conditioning: auxiliary  # set by family acgan" in capsys.readouterr().out


def test_show_output_loads_back_to_itself_for_every_recipe(tmp_path, capsys):
    import yaml

    from gankit.config import ConfigError
    from gankit.recipes import RECIPES
    from gankit.recipes.load import load_recipe

    for name in RECIPES.names():
        try:
            load_recipe(name)
            extra = []
        except ConfigError:  # the MNIST / CIFAR recipes need data.path; show does not read the data
            extra = ["data.path=nowhere"]
        assert main(["show", name, *extra]) == 0
        text = capsys.readouterr().out
        assert "# default" in text, name
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        assert load_recipe(str(path)).model_dump(mode="json") == yaml.safe_load(text), name


def test_options_anywhere_and_show_output_trains_like_the_recipe(tmp_path, capsys):
    """--out between the overrides (argparse alone stopped the overrides at the option), and a run
    from `gankit show`'s file gives the same weights as the named recipe."""
    from safetensors.torch import load_file

    overrides = ["penalties=[{name: r1}]", *TINY]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "gan-grid", "--out", str(a), *overrides]) == 0
    capsys.readouterr()  # the run's own output
    assert main(["show", "gan-grid", *overrides]) == 0
    shown = tmp_path / "shown.yaml"
    shown.write_text(capsys.readouterr().out)
    assert main(["train", str(shown), "--out", str(b), "schedule.steps=2"]) == 0
    wa, wb = (load_file(str(ck.find_checkpoint(run) / ck.WEIGHTS)) for run in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_every_subcommand_still_parses():
    import pytest

    from gankit.cli import build_parser

    parser = build_parser()
    for argv in (
        ["train", "--out", "D", "gan-grid", "schedule.steps=5", "--force"],
        ["train", "gan-grid", "--out", "D", "schedule.steps=5", "--force"],
        ["train", "gan-grid", "--force", "schedule.steps=5", "--out", "D"],
    ):
        args = parser.parse_args(argv)
        assert args.items == ["gan-grid", "schedule.steps=5"] and str(args.out) == "D" and args.force, argv
    args = parser.parse_args(["train", "--resume", "R", "schedule.steps=9"])
    assert args.items == ["schedule.steps=9"] and str(args.resume) == "R"
    assert parser.parse_args(["show", "gan-grid", "a.b=1"]).items == ["gan-grid", "a.b=1"]
    assert parser.parse_args(["bench", "toy", "--quick"]).quick
    assert parser.parse_args(["dirac", "--steps", "3"]).steps == 3
    for argv in (["dirac", "--help"], ["bench", "toy", "--help"], ["train", "--help"], ["show", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 0, argv


def test_list_is_one_line_per_name_within_the_terminal(capsys, monkeypatch):
    from gankit import cli
    from gankit.models import GENERATORS

    assert main(["list", "generators"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "generators" and lines[-1] == ""
    assert [line.split()[0] for line in lines[1:-1]] == GENERATORS.names()  # one line each, nothing wrapped
    assert all(len(line) <= cli.console.width for line in lines)
    assert "MLP generator (Goodfellow et al., 2014): z -> Linear/[BN]" in "\n".join(lines)
    # --long: every paragraph of the docstring (BEGAN's second one is about its linear output).
    monkeypatch.setattr(cli.console, "width", 400)  # one line per paragraph, so phrases stay whole
    assert main(["list", "generators", "--long"]) == 0
    out = capsys.readouterr().out
    assert "The output is linear, not tanh" in out


def test_bracketed_text_is_printed_whole(capsys, monkeypatch):
    """rich reads "[shared(y), z_i]" as a markup tag and drops it unless the text is escaped."""
    from gankit import cli

    monkeypatch.setattr(cli.console, "width", 400)
    assert main(["list", "recipes"]) == 0
    assert "conditional BN from [shared(y), z_i]" in capsys.readouterr().out
    assert main(["list", "generators", "--long"]) == 0
    assert "block i gets cond [shared(y), z_i] in its conditional batch norms" in capsys.readouterr().out
    assert main(["show", "[oops]"]) == 2  # main's error line
    assert "unknown recipe '[oops]'" in capsys.readouterr().out
    assert main(["list", "[bad]"]) == 2
    assert "unknown kind '[bad]'" in capsys.readouterr().out
