from dataclasses import dataclass, field

import pytest

from interlearn.config import FitConfig
from interlearn.errors import ConfigError
from interlearn.recipes import load_recipe
from interlearn.recipes.base import build, to_dict


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
        ({"fit": {"optimizer": "lion"}}, r"recipe.fit.optimizer: 'lion' is not allowed; choose one of \['sgd', 'adamw', 'adam'\]"),
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


def test_every_shipped_recipe_validates():
    from interlearn.recipes import KINDS, example_recipes, load_recipe

    kinds = {load_recipe(p)[0] for p in example_recipes()}
    assert kinds == set(KINDS)
