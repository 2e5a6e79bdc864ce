"""Bad input gets a message that names the problem and the fix, and never touches a run directory:
unreadable images, labels out of range, image sizes a model cannot take, checkpoints of another
recipe, and tampered checkpoints (a broken safetensors header, a pickle that would run code). Byte-level
alterations that still parse are tests/test_checkpoint_integrity.py's."""

import json
import os
import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from gankit.cli import main
from gankit.config import ConfigError
from gankit.data import DATASETS
from gankit.data.base import DataPathError, InMemoryImages
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.training.run import resume_run, start_run
from gankit.training.trainer import Trainer

GRID_FAST = [
    "generator.hidden=[16]",
    "discriminator.hidden=[16]",
    "schedule.batch_size=16",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.every=0",
    "eval.best=null",
    "log.sample_every=0",
]


def _folder(root, good=30, truncated=0, junk=0):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(good):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    for i in range(truncated):
        whole = (root / "000.png").read_bytes()
        (root / f"t{i}.png").write_bytes(whole[: len(whole) // 2])  # an interrupted download
    for i in range(junk):
        (root / f"j{i}.jpg").write_text("<html>404 not found</html>")  # a web page saved as .jpg
    return root


def test_a_few_unreadable_images_are_skipped_and_counted(tmp_path):
    root = _folder(tmp_path / "imgs", good=198, truncated=1, junk=1)
    with pytest.warns(UserWarning, match=r"2 of 200 files .* cannot be read.*skipped them"):
        src = DATASETS.build("image-folder", path=str(root), resolution=8, channels=1)
    assert len(src) == 198 and len(src.files) == 198
    assert not any(f.name.startswith(("t", "j")) for f in src.files)
    assert src.images.shape == (198, 1, 8, 8) and int(src.images.float().std()) > 0  # real pixels, no blanks


def test_too_many_unreadable_images_is_an_error_that_names_the_option(tmp_path):
    root = _folder(tmp_path / "imgs", good=20, truncated=2)
    with pytest.raises(DataPathError, match=r"2 of 22 files .*image file is truncated.*data\.max_unreadable"):
        DATASETS.build("image-folder", path=str(root), resolution=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(DATASETS.build("image-folder", path=str(root), resolution=8, max_unreadable=0.1)) == 20
    junk_only = _folder(tmp_path / "junk", good=0, junk=3)
    with pytest.raises(DataPathError, match="3 of 3 files"):  # even when the threshold would allow it
        DATASETS.build("image-folder", path=str(junk_only), resolution=8, max_unreadable=1.0)


def test_labels_out_of_range_are_refused():
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"1 label\(s\) outside 0\.\.2 \(the first: 3 at index 2\)"):
        InMemoryImages("mine", images, torch.tensor([0, 1, 3, 2]), num_classes=3)
    with pytest.raises(ValueError, match="outside 0..9"):
        InMemoryImages("mine", images, torch.tensor([0, -1, 0, 0]), num_classes=10)


def test_npz_with_negative_labels_is_refused(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1, -1, 1]))
    with pytest.raises(ValueError, match=r"negative labels \(the first at index 2\)"):
        DATASETS.build("npz", path=str(tmp_path / "x.npz"))


def test_an_image_size_the_model_cannot_take_says_how_to_resize(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((8, 28, 28, 3), np.uint8))
    r = load_recipe(
        "dcgan-digits",
        [
            "data={name: npz, path: " + str(tmp_path / "x.npz") + "}",
            "log.tensorboard=false",
            "eval.metrics=[]",
            "eval.best=null",
        ],
    )
    with pytest.raises(ConfigError, match=r"3x28x28 images; resize them with data\.resolution="):
        Trainer(r, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.fixture
def grid_run(tmp_path):
    run = tmp_path / "grid"
    start_run(load_recipe("gan-grid", GRID_FAST + ["schedule.steps=4", "log.checkpoint_every=2"]), out=run)
    return run


def _snapshot(run):
    # .lock is the run lock's owner record, rewritten by every process that takes the lock (train/lock.py).
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_a_checkpoint_of_another_recipe_is_named_as_such(grid_run, tmp_path):
    other = tmp_path / "digits"
    start_run(
        load_recipe(
            "dcgan-digits",
            [
                "generator.width=8",
                "discriminator.width=8",
                "schedule.steps=2",
                "schedule.batch_size=8",
                "log.tensorboard=false",
                "eval.metrics=[]",
                "eval.best=null",
                "log.sample_every=0",
            ],
        ),
        out=other,
    )
    shutil.copytree(ck.find_checkpoint(other), grid_run / "checkpoints" / "step-0000009")
    before = _snapshot(grid_run)
    with pytest.raises(
        ck.CheckpointError,
        match=r"step-0000009 was written by recipe 'dcgan-digits' .*this run is "
        r"recipe 'gan-grid'.*--force",
    ):
        resume_run(grid_run, ["schedule.steps=12"])
    # --force accepts another recipe's identity, never networks that do not fit.
    with pytest.raises(ck.CheckpointError, match=r"G weights in .*step-0000009 do not fit .*another recipe"):
        resume_run(grid_run, ["schedule.steps=12"], force=True)
    assert _snapshot(grid_run) == before, "a refused resume must leave the run directory untouched"


def test_a_tampered_safetensors_header_is_a_clear_error(grid_run, capsys):
    weights = ck.find_checkpoint(grid_run) / ck.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[8:20] = b"#not json!!!"  # inside the JSON header that follows the 8-byte length
    weights.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match=r"cannot read .*weights\.safetensors"):
        resume_run(grid_run, ["schedule.steps=8"])
    assert main(["sample", str(grid_run), "--num", "4", "--out", str(grid_run / "x.npz")]) == 1
    assert "cannot read" in capsys.readouterr().out and not (grid_run / "x.npz").exists()


def test_changed_tensor_shapes_and_a_damaged_recipe_are_named(grid_run):
    ckpt = ck.find_checkpoint(grid_run)
    tensors, meta = ck.load_weights(ckpt)
    key = next(k for k in tensors if k.startswith("G.") and k.endswith("weight"))
    save_file({**tensors, key: torch.zeros(3, 3)}, str(ckpt / ck.WEIGHTS), metadata=meta)
    with pytest.raises(ck.CheckpointError, match=r"weights\.safetensors was altered after it was written"):
        resume_run(grid_run, ["schedule.steps=8"])  # the tensors' sha256 catches it before the shapes are read
    # A checkpoint from before the digests (format -1) is unverified: the shape and recipe checks still name it.
    meta = {**{k: v for k, v in meta.items() if not k.startswith("sha256_")}, "format": "gankit-checkpoint-1"}
    save_file({**tensors, key: torch.zeros(3, 3)}, str(ckpt / ck.WEIGHTS), metadata=meta)
    with pytest.raises(ck.CheckpointError, match=r"1 of another shape \(e\.g\. "):
        resume_run(grid_run, ["schedule.steps=8"])
    save_file(load_file(str(ckpt / ck.WEIGHTS)), str(ckpt / ck.WEIGHTS), metadata={**meta, "recipe": '{"name": '})
    with pytest.raises(ck.CheckpointError, match="recipe in this checkpoint's metadata is damaged"):
        from gankit.sampling import load_generator

        load_generator(grid_run)


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {_RunsCode.marker}",))


def test_a_state_file_that_would_run_code_is_refused_not_run(grid_run, tmp_path):
    _RunsCode.marker = tmp_path / "pwned"
    ckpt = ck.find_checkpoint(grid_run)
    with open(ckpt / ck.STATE, "wb") as fh:
        pickle.dump({"step": 4, "evil": _RunsCode()}, fh)
    with pytest.raises(ck.CheckpointError, match=r"state\.pt was altered after it was written"):
        resume_run(grid_run, ["schedule.steps=8"])  # its sha256 no longer matches: never parsed at all
    assert not _RunsCode.marker.exists(), "loading a checkpoint executed code"
    tensors, meta = ck.load_weights(ckpt)
    assert json.loads(meta["recipe"])["name"] == "gan-grid"  # the weights are still fine
    # A checkpoint from before the digests is parsed, with weights_only: refused all the same.
    meta = {**{k: v for k, v in meta.items() if not k.startswith("sha256_")}, "format": "gankit-checkpoint-1"}
    save_file(tensors, str(ckpt / ck.WEIGHTS), metadata=meta)
    with pytest.raises(ck.CheckpointError, match=r"cannot read .*state\.pt"):
        resume_run(grid_run, ["schedule.steps=8"])
    assert not _RunsCode.marker.exists(), "loading a checkpoint executed code"
