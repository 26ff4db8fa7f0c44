"""The pretrained base that ships inside the package: checksum, model card, recipe, offline load."""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from interlearn import shipped
from interlearn.data import load_digits
from interlearn.errors import CheckpointError, ConfigError
from interlearn.pretrained import load_pretrained
from interlearn.shipped import SHIPPED, file_sha256, load_shipped, shipped_path

ROOT = Path(__file__).resolve().parents[1]
NAME = "mnist-optdigits-cnn"


def _training_script():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import train_shipped_base
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return train_shipped_base


def _card() -> str:
    return shipped_path(NAME, card=True).read_text()


def test_the_weights_match_the_registered_and_the_card_checksum():
    path = shipped_path(NAME)
    digest = file_sha256(path)
    assert digest == SHIPPED[NAME].sha256
    assert f"`{digest}`" in _card()
    assert path.stat().st_size <= 1_000_000


def test_the_training_script_recipe_is_the_one_on_the_card():
    script = _training_script()
    block = re.search(r"## Recipe.*?```json\n(.*?)```", _card(), re.S)
    assert block is not None, "the model card has no JSON recipe block"
    assert json.loads(block.group(1)) == script.RECIPE
    assert script.NAME == NAME
    # the registry builds the architecture the recipe trained
    assert list(SHIPPED[NAME].channels) == script.RECIPE["channels"]
    assert SHIPPED[NAME].hidden == script.RECIPE["hidden"]


def test_the_card_names_data_license_accuracy_and_checksum():
    card = _card()
    for part in ("## Data", "## Recipe", "## Accuracy", "CC BY-SA 3.0", "SHA-256", "zero-shot"):
        assert part in card, part


def test_the_weights_are_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    line = next(
        s for s in text.split("[tool.setuptools.package-data]", 1)[1].splitlines() if s.startswith("interlearn")
    )
    assert '"weights/*.safetensors"' in line and '"weights/*.md"' in line


def test_the_base_loads_by_name_offline_and_reads_the_embedded_digits():
    base = load_pretrained(f"interlearn:{NAME}")
    assert [n for n, _ in base.named_children()][-1] == "fc2"
    _, test = load_digits(image=True)
    with torch.no_grad():
        pred = base.eval()(test.x).argmax(1)
    assert pred.shape == test.y.shape
    assert (pred == test.y).float().mean() > 0.5  # trained (chance is 0.1), with no digit label from this set


def test_a_corrupted_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "weights.safetensors"
    shutil.copy(shipped_path(NAME), bad)
    raw = bytearray(bad.read_bytes())
    raw[-1] ^= 0xFF
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr(shipped, "shipped_path", lambda name, card=False: bad)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_shipped(NAME)


def test_unknown_names_list_the_shipped_ones():
    with pytest.raises(ConfigError, match=NAME):
        load_pretrained("interlearn:resnet-imagenet")
