"""CycleGAN: unpaired data, the ResNet translator, the history of fakes, the family end to end."""

import pytest
import torch

from gankit.config import ConfigError
from gankit.data import DATASETS
from gankit.data.split import split_holdout
from gankit.data.unpaired import UnpairedImages
from gankit.models import GENERATORS
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.runlog import read_metrics
from gankit.training.run import start_run
from gankit.training.trainer import Trainer
from gankit.tricks import ImageHistory

CG_FAST = [
    "data.base=digits",
    "data.path=null",
    "data.split=train",
    "data.holdout=100",
    "generator.width=8",
    "generator.blocks=1",
    "discriminator.width=8",
    "schedule.batch_size=4",
    "log.tensorboard=false",
]


def test_unpaired_halves_share_no_image_and_streams_resume():
    s = DATASETS.build("unpaired", task="invert")
    assert s.shape == s.in_shape == (1, 32, 32) and len(s.a) + len(s.b) == 1797
    inverted_back = {bytes((255 - x).numpy()) for x in s.b.images}
    assert not inverted_back & {bytes(x.numpy()) for x in s.a.images}  # no B image is the twin of an A image
    r = DATASETS.build("unpaired", task="rotate")
    digits = {bytes(x.numpy()) for x in DATASETS.build("digits", resolution=32).images}
    turned_back = {bytes(x.numpy()) for x in torch.rot90(r.b.images, -1, dims=(2, 3))}
    assert turned_back <= digits and not turned_back & {bytes(x.numpy()) for x in r.a.images}
    stream = s.stream(8, seed=0)
    for _ in range(130):  # past an epoch of B, so both sides have reshuffled
        stream.next()
    state = stream.state_dict()
    want = [stream.next()[0] for _ in range(3)]
    again = s.stream(8, seed=0)
    again.load_state_dict(state)
    assert all(torch.equal(w, again.next()[0]) for w in want)
    x = want[0]
    assert x.shape == (8, 2, 32, 32)
    train, test = split_holdout(s, 50, seed=0)
    assert isinstance(test, UnpairedImages) and len(test.a) == len(test.b) == 50 and len(train.a) == len(s.a) - 50


def test_unpaired_folder_reads_train_a_and_b(tmp_path):
    from PIL import Image

    for side, n in (("trainA", 3), ("trainB", 5)):
        (tmp_path / side).mkdir()
        for i in range(n):
            Image.new("RGB", (10, 12), (40 * i, 0, 0)).save(tmp_path / side / f"{i}.png")
    s = DATASETS.build("unpaired-folder", path=str(tmp_path), resolution=8)
    assert len(s.a) == 3 and len(s.b) == 5 and s.shape == (3, 8, 8)
    with pytest.raises(FileNotFoundError, match="no folder testA/ or A/"):
        DATASETS.build("unpaired-folder", path=str(tmp_path), split="test")


def test_cyclegan_generator_keeps_size():
    G = GENERATORS.build("cyclegan", in_shape=(1, 16, 16), out_shape=(3, 16, 16), num_classes=0, width=4, blocks=2)
    assert G(torch.randn(2, 1, 16, 16)).shape == (2, 3, 16, 16) and G.z_dim == 0
    with pytest.raises(ValueError, match="divisible by 4"):
        GENERATORS.build("cyclegan", in_shape=(1, 18, 18), out_shape=(1, 18, 18), num_classes=0)


def test_image_history():
    h = ImageHistory(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(h(first), first) and torch.equal(h.images, first)  # filling: shown as is
    new = torch.arange(100.0, 300.0).view(200, 1, 1, 1)
    out = h(new).flatten()
    swapped = (out != new.flatten()).nonzero().flatten()
    assert 60 < len(swapped) < 140  # about half are swapped for stored fakes
    for i in swapped.tolist():  # ... each for one stored earlier: an initial one or an earlier new one
        assert out[i] < 4 or 100 <= out[i] < new[i]
    state = h.state_dict()
    a = h(torch.full((20, 1, 1, 1), 5.0))
    h2 = ImageHistory(size=4)
    h2.load_state_dict(state)
    assert torch.equal(h2(torch.full((20, 1, 1, 1), 5.0)), a)  # resumes exactly
    assert torch.equal(ImageHistory(size=0)(new), new)


def test_cyclegan_refusals(tmp_path):
    with pytest.raises(ConfigError, match="identity loss compares"):
        Trainer(
            load_recipe("cyclegan-mnist", CG_FAST + ["data={name: pairs, task: colour, holdout: 100}"]), tmp_path / "a"
        )
    with pytest.raises(ConfigError, match="needs two image collections"):
        Trainer(load_recipe("cyclegan-mnist", CG_FAST + ["data={name: digits, resolution: 32}"]), tmp_path / "b")
    with pytest.raises(ConfigError, match="does not compose with trick"):
        Trainer(load_recipe("cyclegan-mnist", CG_FAST + ["tricks=[{name: instance-noise}]"]), tmp_path / "c")
    with pytest.raises(ConfigError, match="takes no penalties"):
        Trainer(load_recipe("cyclegan-mnist", CG_FAST + ["penalties=[{name: r1}]"]), tmp_path / "d")


@pytest.mark.slow
def test_cyclegan_learns_to_invert_and_back(tmp_path):
    r = load_recipe("cyclegan-mnist", CG_FAST + ["schedule.steps=150", "eval.every=0", "log.sample_every=150"])
    t = Trainer(r, tmp_path / "probe")
    before, proto = t.family.scores(t.G)
    assert before["classifier_accuracy_a"] > 0.85 and before["classifier_accuracy_b"] > 0.85
    res = start_run(r, out=tmp_path / "run")
    after = res["eval"]
    assert after["cycle_a"] < 0.5 * before["cycle_a"] and after["cycle_b"] < 0.5 * before["cycle_b"], (before, after)
    # The translation moves images into the other domain: inverted digits are bright on average.
    t.load_checkpoint(ck.find_checkpoint(tmp_path / "run"))
    r2 = t.family._both_ways(t.G, t.family.heldout.a.images, t.family.heldout.b.images)
    gap = (r2["a"].mean() - r2["b"].mean()).abs()
    assert (r2["ab"].mean() - r2["b"].mean()).abs() < 0.3 * gap and (r2["ba"].mean() - r2["a"].mean()).abs() < 0.3 * gap
    rows = [row for row in read_metrics(tmp_path / "run") if "g/cycle" in row]
    assert rows[-1]["g/cycle"] < rows[0]["g/cycle"]


def test_grids_without_held_out_images_leave_the_training_stream_alone(tmp_path):
    t = Trainer(load_recipe("cyclegan-mnist", CG_FAST + ["data.holdout=0"]), tmp_path / "run")
    t.train_step(want_log=False)
    state = t.stream.state_dict()
    first, _ = t.family.sample_grid(t.G, t.grid_images())
    again, _ = t.family.sample_grid(t.G, t.grid_images())
    assert t.stream.state_dict() == state and torch.equal(first, again)
