"""Next-character keyboard: validation split, validated personalization, on-device frontier."""

import pytest
import torch

from interlearn.data.shakespeare import load_shakespeare
from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError
from interlearn.federated.params import model_params
from interlearn.federated.personalization.select import SelectConfig
from interlearn.models.char_lstm import char_lstm, ondevice_char_lstm
from interlearn.recipes.keyboard_eval import ondevice_chars, personalize_chars, split_validation


def test_split_validation_keeps_the_latest_chunks():
    d = TensorData(torch.arange(10).reshape(10, 1), torch.arange(10).reshape(10, 1))
    fit, val = split_validation(d, 0.2)
    assert fit.x.flatten().tolist() == list(range(8)) and val.x.flatten().tolist() == [8, 9]
    assert len(split_validation(TensorData(d.x[:2], d.y[:2]), 0.2)[1]) == 1
    with pytest.raises(ConfigError):
        split_validation(TensorData(d.x[:1], d.y[:1]))


def test_personalize_and_frontier_on_tiny_text(tiny_shakespeare_dir, tmp_path):
    data = load_shakespeare(tiny_shakespeare_dir, source="tiny", mode="sequence", seq_len=10)
    torch.manual_seed(0)
    model = char_lstm(len(data.vocab), hidden=32, output="all")
    params = model_params(model)
    report = personalize_chars(
        model, params, data.users, SelectConfig(steps=(0, 3), alphas=(0.0, 1.0), lams=(1.0,), lr=0.5, batch_size=4)
    )
    assert len(report.users) == 3 and set(report.methods()) == {"finetune", "interpolate", "ditto", "best"}
    test = (torch.cat([u.test.x for u in data.users]), torch.cat([u.test.y for u in data.users]))
    student = ondevice_char_lstm(len(data.vocab), hidden=8, output="all")
    variants, ref, chosen = ondevice_chars(
        {"global": (model, params), "distilled": (student, model_params(student))},
        test,
        encodings=("int8", "int4-g32"),
        plot=tmp_path / "f.png",
    )
    assert ref.encoding == "float32" and {v.model for v in variants} == {"global", "distilled"} and len(variants) == 6
    assert chosen is not None and chosen.bytes <= ref.bytes // 4 and (tmp_path / "f.png").is_file()
    with pytest.raises(ConfigError, match="global"):
        ondevice_chars({"distilled": (student, model_params(student))}, test)
