import pytest

from interlearn.config import FitConfig
from interlearn.errors import ConfigError
from interlearn.multitask.compare import compare_methods, comparison_table, delta_m, plot_comparison
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask
from interlearn.multitask.tour import digits_model, multitask_tour


def test_delta_m_formula():
    # +10% on an accuracy, -10% (worse) on an error: mean 0
    assert delta_m({"a": 0.55, "b": 1.1}, {"a": 0.5, "b": 1.0}, {"a": True, "b": False}) == pytest.approx(0.0)
    assert delta_m({"a": 0.6}, {"a": 0.5}, {"a": True}) == pytest.approx(20.0)
    with pytest.raises(ConfigError, match="same tasks"):
        delta_m({"a": 1.0}, {"b": 1.0}, {"a": True})


def test_tour_rows():
    rows = multitask_tour(epochs=3, device="cpu")
    assert set(rows) == {"multitask", "independent"}
    for row in rows.values():
        assert {"accuracy", "trainable_params", "train_seconds"} <= set(row)
        assert 0 <= row["accuracy"] <= 1 and row["train_seconds"] > 0
    # one shared trunk vs three: fewer parameters and smaller weights
    assert rows["multitask"]["trainable_params"] < rows["independent"]["trainable_params"]
    assert rows["multitask"]["weight_bytes"] < rows["independent"]["weight_bytes"]
    assert "delta_m_pct" in rows["multitask"] and "est_memory_bytes" in rows["multitask"]


def test_compare_rejects_unknown_methods_before_training():
    train, test = load_digits_multitask()
    with pytest.raises(ConfigError, match="known methods"):
        compare_methods(digits_model, train, test, DIGITS_TASKS, ["equal", "nope"], FitConfig(epochs=1, device="cpu"))


def test_table_and_plot(tmp_path):
    rows = {
        "independent": {
            "digit_accuracy": 0.9,
            "parity_accuracy": 0.95,
            "ge5_accuracy": 0.93,
            "trainable_params": 300,
            "train_seconds": 2.0,
        },
        "equal": {
            "digit_accuracy": 0.91,
            "parity_accuracy": 0.94,
            "ge5_accuracy": 0.92,
            "trainable_params": 100,
            "train_seconds": 1.0,
        },
    }
    table = comparison_table(rows)
    assert "| equal |" in table and "trainable_params" in table
    png = plot_comparison(rows, DIGITS_TASKS, tmp_path / "cmp.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
