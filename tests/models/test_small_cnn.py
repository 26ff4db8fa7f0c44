import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.models.small_cnn import small_cnn


@pytest.mark.parametrize("size, flat", [(28, 32 * 7 * 7), (8, 32 * 2 * 2)])
def test_shapes_and_layer_names(size, flat):
    model = small_cnn(5, image_size=size, seed=0)
    assert [n for n, _ in model.named_children()] == [
        "conv1",
        "act1",
        "pool1",
        "conv2",
        "act2",
        "pool2",
        "flatten",
        "fc1",
        "act3",
        "fc2",
    ]
    assert model.fc1.in_features == flat
    assert model(torch.zeros(3, 1, size, size)).shape == (3, 5)


def test_seed_reproducible_and_dropout_layer():
    a, b = small_cnn(4, image_size=8, seed=1), small_cnn(4, image_size=8, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert "drop" in dict(small_cnn(4, image_size=8, dropout=0.5).named_children())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 30}, "image_size=30"),
        ({"num_classes": 0}, "num_classes=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"channels": (8,)}, "channels"),
    ],
)
def test_bad_sizes_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        small_cnn(**kwargs)
