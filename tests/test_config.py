import pytest
import yaml

from gankit.config import ConfigError, apply_overrides, diff_keys
from gankit.recipes import DEFAULT, RECIPES
from gankit.recipes.load import load_recipe, validate_recipe

ISSUE_RECIPES = {
    "dcgan-digits",
    "gan-grid",
    "gan-ring",
    "wgan-grid",
    "wgan-gp-grid",
    "lsgan-grid",
    "hinge-grid",
    "dcgan-mnist",
}


def test_shipped_recipes_are_registered_and_valid():
    assert ISSUE_RECIPES <= set(RECIPES.names())
    assert DEFAULT == "dcgan-digits"
    for name in RECIPES.names():
        raw = RECIPES.build(name)
        assert raw["description"], f"recipe {name} must say what it is and cite its paper"
        if "path" not in raw["data"] and raw["data"]["name"] in ("mnist", "npz", "cifar10", "image-folder"):
            # recipes for a user's own files refuse to start without a path, and say how to give one
            with pytest.raises(ConfigError, match=r"data: .*option 'path' is required.*data\.OPTION=VALUE"):
                load_recipe(name)
            load_recipe(name, ["data.path=/somewhere"])
        else:
            assert load_recipe(name).name == name


def test_overrides_are_type_checked():
    r = load_recipe("gan-grid", ["schedule.steps=123", "optim.d.lr=1e-3", "generator.z_dim=4", "ema.enabled=true"])
    assert r.schedule.steps == 123 and r.optim.d.lr == 1e-3 and r.generator.options["z_dim"] == 4 and r.ema.enabled
    with pytest.raises(ConfigError, match=r"schedule\.steps"):
        load_recipe("gan-grid", ["schedule.steps=many"])
    with pytest.raises(ConfigError, match=r"z_dim"):
        load_recipe("gan-grid", ["generator.z_dim=big"])


def test_unknown_key_lists_valid_keys():
    with pytest.raises(
        ConfigError, match=r"unknown key 'schedule.stpes'; valid keys here: batch_size, decay_start, n_critic, steps"
    ):
        load_recipe("gan-grid", ["schedule.stpes=5"])
    with pytest.raises(ConfigError, match=r"unknown key 'trainer'"):
        load_recipe("gan-grid", ["trainer.x=1"])
    with pytest.raises(ConfigError, match=r"must look like key.sub=value"):
        apply_overrides({}, ["schedule"])


def test_unknown_component_option_lists_valid_options():
    with pytest.raises(ConfigError, match=r"generator: generator 'mlp' has no option 'zdim'; valid options: .*z_dim"):
        load_recipe("gan-grid", ["generator.zdim=3"])


def test_bad_registry_name_lists_choices():
    with pytest.raises(
        ConfigError, match=r"objective: unknown objective 'hindge'; valid choices: .*hinge.*wasserstein"
    ):
        load_recipe("gan-grid", ["objective.name=hindge"])
    with pytest.raises(ConfigError, match=r"penalties.0: unknown penalty"):
        load_recipe("gan-grid", ["penalties=[{name: r3}]"])
    with pytest.raises(ConfigError, match=r"unknown recipe 'gan-gird'; valid choices: .*gan-grid"):
        load_recipe("gan-gird")


def test_list_overrides_and_indices():
    r = load_recipe("wgan-gp-grid", ["penalties.0.lam=5"])
    assert r.penalties[0].options["lam"] == 5.0
    with pytest.raises(ConfigError, match="index out of range"):
        load_recipe("wgan-gp-grid", ["penalties.3.lam=5"])


def test_user_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data": {"name": "ring"},
                "generator": {"name": "mlp"},
                "discriminator": {"name": "mlp"},
                "objective": {"name": "hinge"},
                "schedule": {"steps": 7},
            }
        )
    )
    r = load_recipe(str(path), ["schedule.batch_size=8"])
    assert r.name == "mine" and r.schedule.steps == 7 and r.schedule.batch_size == 8
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {name: ring}\ngenerator: {name: mlp}\ndiscriminator: {name: mlp}\nschedul: {steps: 3}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'schedul'"):
        load_recipe(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(str(tmp_path / "missing.yaml"))


def test_device_is_validated():
    with pytest.raises(ConfigError, match="device"):
        load_recipe("gan-grid", ["device=gpu"])


def test_diff_keys_names_changed_leaves():
    a = validate_recipe(load_recipe("gan-grid").model_dump(mode="json")).model_dump(mode="json")
    b = apply_overrides(a, ["optim.g.lr=0.1", "generator.hidden=[8]"])
    assert diff_keys(a, b) == ["generator.hidden.0", "generator.hidden.1", "generator.hidden.2", "optim.g.lr"]


def test_optional_encoder_component_is_created_by_dotted_overrides():
    from gankit.config import ConfigError
    from gankit.recipes.load import load_recipe

    r = load_recipe("gan-grid", ["family=bigan", "encoder.name=mlp-encoder", "encoder.hidden=[8]"])
    assert r.encoder.name == "mlp-encoder" and r.encoder.options["hidden"] == [8]
    assert load_recipe("gan-grid").encoder is None
    with pytest.raises(ConfigError, match="encoder"):
        load_recipe("gan-grid", ["encoder.name=mlp-encodr"])
    with pytest.raises(ConfigError, match="hiden"):
        load_recipe("gan-grid", ["encoder.name=mlp-encoder", "encoder.hiden=[8]"])


# -- base: a recipe built on another -------------------------------------------------------------
def test_merge_recipe_merges_mappings_and_replaces_renamed_components_lists_and_values():
    from gankit.config import merge_recipe

    parent = {
        "generator": {"name": "dcgan", "width": 32, "z_dim": 64},
        "optim": {"g": {"lr": 2e-4, "betas": [0.5, 0.99]}, "d": {"lr": 2e-4}},
        "penalties": [{"name": "r1", "gamma": 1.0}, {"name": "r2", "gamma": 1.0}],
        "eval": {"best": "fid", "every": 1000},
        "encoder": None,
    }
    child = {
        "generator": {"name": "resnet", "width": 16},  # a new component: dcgan's z_dim must not follow
        "optim": {"g": {"lr": 1e-3}},
        "penalties": [{"name": "r1", "gamma": 0.1}],
        "eval": {"best": None},
        "encoder": {"name": "mlp-encoder"},
    }
    merged = merge_recipe(parent, child)
    assert merged == {
        "generator": {"name": "resnet", "width": 16},
        "optim": {"g": {"lr": 1e-3, "betas": [0.5, 0.99]}, "d": {"lr": 2e-4}},
        "penalties": [{"name": "r1", "gamma": 0.1}],
        "eval": {"best": None, "every": 1000},
        "encoder": {"name": "mlp-encoder"},
    }
    # the same component's options merge; neither input is changed
    assert merge_recipe(parent, {"generator": {"name": "dcgan", "width": 8}})["generator"] == {
        "name": "dcgan",
        "width": 8,
        "z_dim": 64,
    }
    assert parent["generator"]["width"] == 32 and parent["optim"]["g"]["lr"] == 2e-4
    merged["optim"]["d"]["lr"] = 9.0
    assert parent["optim"]["d"]["lr"] == 2e-4


def test_a_file_with_a_base_equals_the_base_with_the_same_overrides(tmp_path):
    path = tmp_path / "faster.yaml"
    path.write_text(
        "base: dcgan-mnist\n"
        "data: {path: /somewhere}\n"
        "optim: {g: {lr: 0.001}}\n"
        "schedule: {steps: 100}\n"
        "penalties: [{name: r1, gamma: 0.5}]\n"
    )
    mine = load_recipe(str(path))
    same = load_recipe(
        "dcgan-mnist",
        ["data.path=/somewhere", "optim.g.lr=0.001", "schedule.steps=100", "penalties=[{name: r1, gamma: 0.5}]"],
    )
    a, b = mine.model_dump(mode="json"), same.model_dump(mode="json")
    assert diff_keys(a, b) == ["description", "name"]
    assert mine.name == "faster" and mine.description.startswith("Based on dcgan-mnist: ")
    assert mine.optim.d.lr == same.optim.d.lr != 0.001  # a sibling the file did not name is the base's
    # command-line overrides still apply on top, and the base's own recipe is untouched
    assert load_recipe(str(path), ["schedule.steps=7"]).schedule.steps == 7
    assert load_recipe("dcgan-mnist", ["data.path=/x"]).optim.g.lr != 0.001


def test_bases_chain_through_paths_relative_to_each_file_and_a_loop_is_named(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.yaml").write_text("base: gan-ring\nseed: 5\nobjective: {name: hinge}\n")
    (tmp_path / "lib" / "b.yaml").write_text("base: a.yaml\nname: bee\nschedule: {steps: 9}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # `a.yaml` is found beside b.yaml, not in the working folder
    r = load_recipe(str(tmp_path / "lib" / "b.yaml"))
    ring = load_recipe("gan-ring")
    assert (r.name, r.seed, r.objective.name, r.schedule.steps) == ("bee", 5, "hinge", 9)
    assert r.generator == ring.generator and r.schedule.batch_size == ring.schedule.batch_size
    assert r.description.startswith("Based on a.yaml: Based on gan-ring: ")

    (tmp_path / "lib" / "a.yaml").write_text("base: b.yaml\n")
    with pytest.raises(ConfigError, match=r"loop: .*b\.yaml -> .*a\.yaml -> .*b\.yaml; remove one `base:`"):
        load_recipe(str(tmp_path / "lib" / "b.yaml"))
    (tmp_path / "self.yaml").write_text("base: self.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        load_recipe(str(tmp_path / "self.yaml"))


def test_a_bad_base_is_named_with_the_fix(tmp_path):
    cases = {
        "base: [gan-ring]\n": r"r0\.yaml: base: \['gan-ring'\] must be a recipe name or the path of a \.yaml file",
        "base: gan-rnig\n": r"r1\.yaml: base: unknown recipe 'gan-rnig'; valid choices: .*gan-ring",
        "base: missing.yaml\n": r"recipe file .*missing\.yaml does not exist",
        "base: gan-ring\nschedul: {steps: 3}\n": r"unknown key 'schedul'",
        "base: gan-ring\ngenerator: {name: mlp, widht: 3}\n": r"generator: .*widht",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"r{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_recipe(str(path))


def test_the_python_api_takes_a_mapping_with_a_base():
    import gankit

    r = gankit.resolve_recipe({"base": "gan-ring", "seed": 3, "optim": {"g": {"lr": 1e-3}}}, ["schedule.steps=4"])
    ring = load_recipe("gan-ring")
    assert (r.seed, r.optim.g.lr, r.schedule.steps) == (3, 1e-3, 4)
    assert r.optim.g.betas == ring.optim.g.betas and r.name == "custom"


def test_the_readme_base_example_is_dcgan_mnist_with_its_changes(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("```yaml\n# my.yaml", 1)[1].split("```", 1)[0]
    path = tmp_path / "my.yaml"
    path.write_text("# my.yaml" + block)
    mine = load_recipe(str(path)).model_dump(mode="json")
    same = load_recipe("dcgan-mnist", ["data.path=/data/mnist", "optim.g.lr=2e-4", "schedule.steps=3000"])
    assert diff_keys(mine, same.model_dump(mode="json")) == ["description", "name"]
