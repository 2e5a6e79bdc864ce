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
