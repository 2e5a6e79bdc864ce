"""The Python API (issue 19): `import gankit` stays light, `gankit.train` runs `gankit train`'s code,
`gankit.load(...).sample` gives what `gankit sample` writes, and the README's snippets run as printed."""

import ast
import contextlib
import importlib
import io
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import gankit
from gankit.cli import KINDS, main
from gankit.config import ConfigError, Recipe, dump_yaml
from gankit.recipes.load import load_recipe
from gankit.sampling import to_uint8_nhwc

REPO = Path(__file__).resolve().parents[1]
# On top of the README's own overrides: a conditional DCGAN small enough for seconds (EMA from step 0,
# so the checkpoint holds both G and G_ema; no classifier FID at the end).
TINY = [
    "schedule.steps=2",
    "schedule.batch_size=8",
    "generator.width=8",
    "discriminator.width=8",
    "eval.metrics=[]",
    "log.tensorboard=false",
    "family=conditional",
    "ema.start=0",
]


def readme_snippets() -> list[str]:
    """The ```python blocks of the README's "## Python API" section."""
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Python API\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Runs the README's training snippet as printed (in a fresh folder, so its relative out= path lands
    there), with TINY appended to its overrides; returns the folder, the snippet's namespace and output."""
    train_snippet = readme_snippets()[0]
    match = re.search(r"overrides=(\[.*?\])", train_snippet)
    assert match, "the README's train snippet shows overrides=[...]"
    overrides = ast.literal_eval(match.group(1)) + TINY
    code = train_snippet.replace(match.group(0), f"overrides={overrides!r}")
    root = tmp_path_factory.mktemp("readme")
    ns: dict = {}
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(root), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        exec(compile(code, "README.md (train)", "exec"), ns)
    return root, ns, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A 2-step gan-ring run (points, unconditional), given as a Recipe object, with the progress flag."""
    out = tmp_path_factory.mktemp("ring") / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        result = gankit.train(
            load_recipe("gan-ring"), ["schedule.steps=2", "log.tensorboard=false"], out=out, progress=True
        )
    return result, err.getvalue()


def run_load_snippet(root: Path) -> dict:
    ns: dict = {}
    with contextlib.chdir(root):
        exec(compile(readme_snippets()[1], "README.md (load)", "exec"), ns)
    return ns


# -- import gankit ---------------------------------------------------------------------------------
def test_import_gankit_stays_light_and_lists_the_api():
    code = (
        "import sys, gankit; assert 'torch' not in sys.modules, 'import gankit pulled in torch'; "
        "assert 'pydantic' not in sys.modules; print(gankit.__version__, sorted(gankit.__all__), dir(gankit))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("0.1.0 ")
    for name in ("train", "load", "list_recipes", "OBJECTIVES", "RECIPES", "FAMILIES"):
        assert f"'{name}'" in out
    assert set(gankit.__all__) <= set(dir(gankit))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gankit.nope  # noqa: B018


def test_registries_are_those_of_gankit_list():
    for _kind, (module, attr) in KINDS.items():
        assert attr in gankit.__all__
        assert getattr(gankit, attr) is getattr(importlib.import_module(module), attr)
    assert "hinge" in gankit.OBJECTIVES and "r1" in gankit.PENALTIES and "conditional" in gankit.FAMILIES
    assert gankit.list_recipes() == gankit.RECIPES.names() and "gan-ring" in gankit.list_recipes()


def test_train_is_a_function_that_importing_the_trainer_does_not_hide():
    import gankit.training.trainer  # noqa: F401 - the subpackage has its own name, not gankit.train

    assert callable(gankit.train) and isinstance(gankit.train, types.FunctionType)
    from gankit import train

    assert train is gankit.train and "gankit.api.train" in train.__doc__
    assert callable(gankit.load) and "seed" in gankit.TrainedGenerator.sample.__doc__


def test_resolve_recipe_takes_a_name_a_path_a_mapping_or_a_recipe(tmp_path):
    by_name = gankit.resolve_recipe("gan-ring", ["schedule.steps=7"])
    assert isinstance(by_name, Recipe) and by_name.name == "gan-ring" and by_name.schedule.steps == 7
    path = tmp_path / "mine.yaml"
    path.write_text(dump_yaml(by_name))
    for source in (path, str(path), by_name, by_name.model_dump(mode="json")):
        got = gankit.resolve_recipe(source, ["objective.name=hinge"])
        assert got.schedule.steps == 7 and got.objective.name == "hinge" and got.data.name == "ring"
    assert by_name.objective.name == "non-saturating"  # a Recipe given is not changed in place
    assert gankit.resolve_recipe(None).name == "dcgan-digits"  # `gankit train`'s default
    with pytest.raises(ConfigError, match="valid choices"):
        gankit.resolve_recipe("no-such-recipe")
    with pytest.raises(ConfigError, match="stpes"):
        gankit.resolve_recipe("gan-ring", ["schedule.stpes=3"])
    with pytest.raises(TypeError, match="list of"):
        gankit.resolve_recipe("gan-ring", "schedule.steps=3")


# -- the README's snippets -------------------------------------------------------------------------
def test_readme_section_has_a_train_and_a_three_line_load_snippet():
    snippets = readme_snippets()
    assert len(snippets) == 2
    assert "gankit.train(" in snippets[0]
    lines = snippets[1].strip().splitlines()
    assert len(lines) == 3 and lines[0] == "import gankit" and "gankit.load(" in lines[1] and ".sample(" in lines[2]


def test_readme_train_snippet_trains_quietly_and_returns_the_run(readme_run):
    root, ns, out, err = readme_run
    run = ns["run"]
    assert isinstance(run, gankit.TrainResult)
    assert run.finished and run.step == 2 and run.stopped_by is None
    run_dir = root / run.run_dir
    assert (run_dir / "config.yaml").is_file() and (run_dir / "metrics.jsonl").is_file()
    assert (root / run.checkpoint).is_dir() and (root / run.samples).is_file() and (root / run.report).is_file()
    assert run.recipe.family.name == "conditional" and run.recipe.schedule.steps == 2
    # quiet by default: the snippet's own print is all that reaches stdout, and nothing reaches stderr
    assert out.strip().splitlines() == [f"{run.step} {run.eval} {run.checkpoint}"]
    assert err == ""


def test_readme_load_snippet_samples_images_in_range_the_same_for_a_seed(readme_run):
    root = readme_run[0]
    ns = run_load_snippet(root)
    G, x = ns["G"], ns["x"]
    assert isinstance(G, gankit.TrainedGenerator)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.shape == (16, 1, 16, 16)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert torch.equal(run_load_snippet(root)["x"], x)  # same seed, same samples
    assert not torch.equal(G.sample(16, seed=1), x)
    assert (G.kind, G.shape, G.z_dim, G.num_classes, G.step) == ("image", (1, 16, 16), 32, 10, 2)
    assert G.recipe.name == "dcgan-digits" and G.weights == "G_ema" and G.device == torch.device("cpu")
    assert isinstance(G.module, torch.nn.Module) and not G.module.training
    assert "num_classes=10" in repr(G)


def test_sample_equals_what_gankit_sample_writes(readme_run, tmp_path):
    root = readme_run[0]
    run_dir = root / readme_run[1]["run"].run_dir
    for extra, ema in (([], True), (["--no-ema"], False)):
        npz = tmp_path / f"s{len(extra)}.npz"
        assert main(["sample", str(run_dir), "--num", "12", "--seed", "5", "--out", str(npz), *extra]) == 0
        data = np.load(npz)
        G = gankit.load(run_dir, device="cpu", ema=ema)
        assert G.weights == ("G_ema" if ema else "G")
        assert np.array_equal(data["images"], to_uint8_nhwc(G.sample(12, seed=5)))
        assert np.array_equal(data["labels"], np.arange(12) % 10)  # the classes in turn, by default
    assert not torch.equal(gankit.load(run_dir, ema=False).sample(12, seed=5), gankit.load(run_dir).sample(12, seed=5))


def test_labels_are_honoured(readme_run):
    with contextlib.chdir(readme_run[0]):  # the README's out= is relative to where it ran
        G = readme_run[1]["run"].load(device="cpu")
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(1))  # what seed=1 means
    with torch.no_grad():
        threes = G.module(z, torch.full((6,), 3))
    assert torch.equal(G.sample(6, labels=3, seed=1), threes)
    assert torch.equal(G.sample(6, labels=[3] * 6, seed=1), threes)
    assert torch.equal(G.sample(6, labels=np.full(6, 3), seed=1), threes)
    assert not torch.equal(G.sample(6, labels=4, seed=1), threes)
    mixed = torch.tensor([0, 9, 3, 3, 1, 7])
    with torch.no_grad():
        assert torch.equal(G.sample(6, labels=mixed, seed=1), G.module(z, mixed))
    assert torch.equal(G.sample(6, seed=1), G.sample(6, labels=torch.arange(6) % 10, seed=1))
    with pytest.raises(ValueError, match="out of range.*10 classes"):
        G.sample(4, labels=10)
    with pytest.raises(ValueError, match="one per sample"):
        G.sample(4, labels=[1, 2])
    with pytest.raises(ValueError, match="integer class ids"):
        G.sample(4, labels=1.5)
    with pytest.raises(ValueError, match="positive"):
        G.sample(0)


def test_seed_none_draws_fresh_noise_and_numpy_returns_an_array(readme_run):
    G = gankit.load(readme_run[0] / readme_run[1]["run"].run_dir)
    assert not torch.equal(G.sample(8), G.sample(8))
    torch.manual_seed(123)
    a = G.sample(8)
    torch.manual_seed(123)
    assert torch.equal(G.sample(8), a)  # None follows torch's global RNG
    arr = G.sample(8, seed=2, numpy=True)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (8, 1, 16, 16)
    assert np.array_equal(arr, G.sample(8, seed=2).numpy())


# -- points, truncation, progress ------------------------------------------------------------------
def test_points_and_truncation_match_gankit_sample(ring_run, tmp_path):
    result, err = ring_run
    assert "gankit train gan-ring" in err  # progress=True speaks (on stderr)
    assert result.finished and result.step == 2 and set(result.eval) >= {"modes"}
    G = gankit.load(result.run_dir)
    assert (G.kind, G.shape, G.z_dim, G.num_classes, G.weights) == ("points", (2,), 2, 0, "G")
    pts = G.sample(50, seed=7)
    assert pts.shape == (50, 2) and pts.dtype == torch.float32 and torch.isfinite(pts).all()
    for extra, kw in (([], {}), (["--truncation", "0.5"], {"truncation": 0.5})):
        npz = tmp_path / f"p{len(extra)}.npz"
        assert main(["sample", str(result.run_dir), "--num", "50", "--seed", "7", "--out", str(npz), *extra]) == 0
        data = np.load(npz)
        assert "labels" not in data
        assert np.array_equal(data["points"], G.sample(50, seed=7, numpy=True, **kw))
    assert not torch.equal(G.sample(50, seed=7, truncation=0.5), pts)
    with pytest.raises(ValueError, match="unconditional"):
        G.sample(4, labels=0)
    with pytest.raises(ValueError, match="psi"):
        G.sample(4, psi=0.7)
