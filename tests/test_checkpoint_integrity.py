"""Checkpoints are what they claim (issue 19): a byte altered in the tensor data, the metadata or the
training state is named on resume and on `gankit sample` (sha256 digests written with the checkpoint),
checkpoints written before the digests still load, and another recipe's checkpoint of the same shapes
is refused unless --force."""

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from gankit.cli import main
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.training.run import resume_run, start_run

FAST = [
    "generator.hidden=[16]",
    "discriminator.hidden=[16]",
    "schedule.batch_size=16",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.every=0",
    "eval.best=null",
    "log.sample_every=0",
]
ALTERED = "was altered after it was written"


def _run(recipe: str, out, steps: int = 4):
    start_run(load_recipe(recipe, FAST + [f"schedule.steps={steps}", "log.checkpoint_every=2"]), out=out)
    return out


@pytest.fixture
def grid_run(tmp_path):
    return _run("gan-grid", tmp_path / "grid")  # checkpoints at steps 2 and 4


def _snapshot(run):
    # .lock is the run lock's owner record, rewritten by every process that takes the lock (train/lock.py).
    return {
        p.relative_to(run).as_posix(): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _flat(text: str) -> str:
    """The console wraps long lines (and paths): compare with every whitespace removed."""
    return "".join(text.split())


def _said(capsys, *parts: str) -> str:
    out = _flat(capsys.readouterr().out)
    for part in parts:
        assert _flat(part) in out, (part, out)
    return out


def _flip_tensor_byte(weights, prefix: str = "G.") -> str:
    """Flip one byte inside the data of a ``prefix`` weight tensor (not the header): the file still parses."""
    data = bytearray(weights.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    key = next(k for k in sorted(header) if k.startswith(prefix) and k.endswith("weight"))
    start, _ = header[key]["data_offsets"]
    data[8 + n + start + 3] ^= 0x7F  # the high byte of the first float32: exponent bits, a wild value
    weights.write_bytes(bytes(data))
    return key


def _old_format(ckpt) -> None:
    """Rewrite ``ckpt`` as gankit-checkpoint-1 wrote it: same tensors and state, no digests."""
    tensors, meta = ck.load_weights(ckpt)
    old = {k: v for k, v in meta.items() if not k.startswith("sha256_")}
    save_file(tensors, str(ckpt / ck.WEIGHTS), metadata={**old, "format": "gankit-checkpoint-1"})


def test_a_flipped_byte_in_tensor_data_is_named_on_resume_and_on_sample(grid_run, capsys):
    newest = ck.find_checkpoint(grid_run)
    assert newest.name == "step-0000004"
    _flip_tensor_byte(newest / ck.WEIGHTS)
    with pytest.raises(ck.CheckpointError, match=ALTERED):
        ck.load_weights(newest)
    before = _snapshot(grid_run)
    capsys.readouterr()
    assert main(["train", "--resume", str(grid_run), "schedule.steps=8"]) == 1
    _said(capsys, f"{newest / ck.WEIGHTS} {ALTERED}", "tampered with, or the disk corrupted it", "step-0000002")
    assert _snapshot(grid_run) == before, "a refused resume must leave the run directory untouched"

    out = grid_run / "x.npz"
    assert main(["sample", str(grid_run), "--num", "4", "--out", str(out)]) == 1
    _said(capsys, f"{newest / ck.WEIGHTS} {ALTERED}")
    assert not out.exists()

    # The advice works: the earlier checkpoint samples, and with the altered one moved aside the run resumes.
    assert main(["sample", str(grid_run / "checkpoints" / "step-0000002"), "--num", "4", "--out", str(out)]) == 0
    assert out.exists()
    newest.rename(grid_run / "step-0000004.altered")
    assert resume_run(grid_run, ["schedule.steps=6"])["step"] == 6


def test_an_altered_state_file_or_metadata_is_named(grid_run, capsys):
    ckpt = ck.find_checkpoint(grid_run)
    state = ck.load_state(ckpt)
    state["step"] = 3  # still a valid weights_only file: only the digest can tell
    torch.save(state, ckpt / ck.STATE)
    capsys.readouterr()
    assert main(["train", "--resume", str(grid_run), "schedule.steps=8"]) == 1
    _said(capsys, f"{ckpt / ck.STATE} {ALTERED}", "step-0000002")
    # The weights themselves are intact, so sampling (which reads no state) still works.
    assert main(["sample", str(grid_run), "--num", "4", "--out", str(grid_run / "x.npz")]) == 0

    # The recipe in the metadata rebuilds the networks: a changed value there is an alteration too.
    tensors, meta = ck.load_weights(ckpt)
    recipe = json.loads(meta["recipe"])
    recipe["generator"]["hidden"] = [17]
    save_file(tensors, str(ckpt / ck.WEIGHTS), metadata={**meta, "recipe": json.dumps(recipe)})
    with pytest.raises(ck.CheckpointError, match=rf"weights\.safetensors {ALTERED}: its metadata"):
        ck.load_weights(ckpt)
    with pytest.raises(ck.CheckpointError, match=rf"weights\.safetensors {ALTERED}: its metadata"):
        ck.load_state(ckpt)  # the state's digest lives in that metadata
    # Dropping the digests but keeping the format does not switch verification off.
    save_file(tensors, str(ckpt / ck.WEIGHTS), metadata={k: v for k, v in meta.items() if not k.startswith("sha256_")})
    with pytest.raises(ck.CheckpointError, match=ALTERED):
        ck.load_weights(ckpt)


def test_a_checkpoint_written_before_the_digests_still_loads(grid_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(grid_run, copy)
    ckpt = ck.find_checkpoint(grid_run)
    _old_format(ckpt)
    tensors, meta = ck.load_weights(ckpt)
    assert meta["format"] == "gankit-checkpoint-1" and not any(k.startswith("sha256_") for k in meta)
    assert ck.load_state(ckpt)["step"] == 4
    assert main(["sample", str(grid_run), "--num", "4", "--out", str(tmp_path / "x.npz")]) == 0
    # Resuming it continues exactly as resuming the hashed original does; its new checkpoints are hashed.
    a, b = resume_run(grid_run, ["schedule.steps=6"]), resume_run(copy, ["schedule.steps=6"])
    assert a["step"] == b["step"] == 6
    wa, meta_a = ck.load_weights(ck.find_checkpoint(grid_run))
    wb, _ = ck.load_weights(ck.find_checkpoint(copy))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert meta_a["format"] == ck.FORMAT and meta_a[ck.TENSORS_SHA] == ck.tensors_digest(wa)


def test_another_recipes_checkpoint_of_the_same_shapes_is_refused_unless_forced(grid_run, tmp_path, capsys):
    ring = _run("gan-ring", tmp_path / "ring", steps=2)
    shutil.copytree(ck.find_checkpoint(ring), grid_run / "checkpoints" / "step-0000009")
    before = _snapshot(grid_run)
    capsys.readouterr()
    assert main(["train", "--resume", str(grid_run), "schedule.steps=12"]) == 1
    _said(
        capsys,
        "step-0000009 was written by recipe 'gan-ring' (family 'unconditional', data 'ring')",
        "this run is recipe 'gan-grid' (family 'unconditional', data 'grid')",
        "--force",
    )
    assert _snapshot(grid_run) == before, "a refused resume must leave the run directory untouched"

    assert main(["train", "--resume", str(grid_run), "schedule.steps=12", "--force"]) == 0
    assert ck.list_checkpoints(grid_run / "checkpoints")[-1].name == "step-0000012"  # continued from step 9


def test_the_tensor_digest_sees_names_dtypes_and_shapes():
    w = torch.arange(6, dtype=torch.float32)
    base = ck.tensors_digest({"a": w, "b": torch.ones(2, dtype=torch.bfloat16)})
    assert base == ck.tensors_digest({"b": torch.ones(2, dtype=torch.bfloat16), "a": w.clone()})  # key order
    for other in (
        {"a": w.view(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)},
        {"a": w, "b": torch.ones(2, dtype=torch.float16)},
        {"c": w, "b": torch.ones(2, dtype=torch.bfloat16)},
    ):
        assert ck.tensors_digest(other) != base
