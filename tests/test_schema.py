from dataclasses import dataclass, field

import pytest

from interlearn.config import FitConfig
from interlearn.errors import ConfigError
from interlearn.recipes import load_recipe
from interlearn.schema import build, to_dict


@dataclass(frozen=True)
class Inner:
    mode: str = "a"
    fit: FitConfig = field(default_factory=FitConfig)
    sizes: tuple[int, ...] = (1, 2)


def test_build_nested_and_defaults():
    cfg = build(Inner, {"fit": {"epochs": 2, "lr": 1}, "sizes": [3]})
    assert cfg.fit.epochs == 2 and cfg.fit.lr == 1.0 and cfg.sizes == (3,)
    assert to_dict(cfg)["fit"]["epochs"] == 2


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"fit": {"epoch": 2}}, r"recipe.fit.epoch: unknown field of FitConfig; known fields: 'epochs'"),
        (
            {"fit": {"optimizer": "lion"}},
            r"recipe.fit.optimizer: 'lion' is not allowed; choose one of \['sgd', 'adamw', 'adam'\]",
        ),
        ({"fit": {"epochs": "ten"}}, r"recipe.fit.epochs: expected an integer, got 'ten'"),
        ({"fit": {"epochs": 0}}, r"recipe.fit: epochs=0: must be >= 1"),
        ({"sizes": 3}, r"recipe.sizes: expected a list"),
        ({"fit": 5}, r"recipe.fit: expected a mapping of FitConfig fields"),
    ],
)
def test_errors_name_the_field_path(mapping, message):
    with pytest.raises(ConfigError, match=message):
        build(Inner, mapping, "recipe")


def test_load_recipe_kind_errors(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("epochs: 3\n")
    with pytest.raises(ConfigError, match="missing field 'kind'"):
        load_recipe(p)
    p.write_text("kind: transfr\n")
    with pytest.raises(ConfigError, match="'transfr' is not a recipe kind"):
        load_recipe(p)
    p.write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_recipe(p)
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "none.yaml")


def _recipe(tmp_path, text: str, name: str = "r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, message",
    [
        ("kind: federated\nclient: {lr: 1.0e+12}\n", r"lr=1e\+12: a local learning rate above 10"),
        (
            "kind: federated\nclient: {lr: 1e12}\n",
            r"got '1e12'; YAML reads '1e12' as text, not a number: write 1000000000000 or 1.0e\+12",
        ),
        (
            "kind: federated\nclient: {lr: 3e-3}\n",
            r"got '3e-3'; YAML reads '3e-3' as text, not a number: write 0.003 or 3.0e-03",
        ),
        ("kind: federated\neval_every: 0\n", r"eval_every=0: must be >= 1"),
        ("kind: federated\nseed: -5\n", r"federated.seed: seed=-5 must be a non-negative integer"),
        (
            "kind: transfer\ndata: {source_classes: [0, 1, 1], target_classes: [5, 6]}\n",
            r"source_classes=\[0, 1, 1\] lists \[1\] more than once",
        ),
        (
            "kind: multitask\nfit: {device: 'cuda:4096'}\n",
            r"device='cuda:4096' is not available: this machine has .*use device: auto or cpu",
        ),
        ("kind: multitask\nfit: {device: 'gpu7'}\n", r"device='gpu7' is not a device name"),
        ("kind: keyboard\nclient_lr: 1000000000000\n", r"keyboard.client_lr=1e\+12: must be in \(0, 10\]"),
        ("kind: federated\nclient: {lr: .nan}\n", r"client.lr: nan is not a finite number"),
    ],
)
def test_out_of_range_recipe_values_get_one_clear_error(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(_recipe(tmp_path, text))


def test_binary_and_empty_recipe_files(tmp_path):
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02}q\x00")
    with pytest.raises(ConfigError, match=r"model.pt: not a text file \(byte 0x80 at position 0"):
        load_recipe(binary)
    with pytest.raises(ConfigError, match="the recipe is empty"):
        load_recipe(_recipe(tmp_path, "  \n\n"))


def test_labels_per_class_larger_than_any_class_names_the_fix():
    from interlearn.errors import DataError
    from interlearn.recipes.splits import DataConfig, split_classes

    with pytest.raises(DataError, match=r"fewer than labels_per_class=100000; lower labels_per_class to at most \d+"):
        split_classes(DataConfig(labels_per_class=100000))


def test_every_shipped_recipe_validates():
    from interlearn.recipes import KINDS, example_recipes, load_recipe

    kinds = {load_recipe(p)[0] for p in example_recipes()}
    assert kinds == set(KINDS)
