import json

import pytest

from interlearn.errors import DataError
from interlearn.report import markdown_table, render, write_summary


def test_write_and_render(tmp_path):
    rows = {"scratch": {"accuracy": 0.8, "trainable_params": 1000, "train_seconds": 1.5}, "transfer": {"accuracy": 0.9, "trainable_params": 100, "train_seconds": 0.5}}
    md = write_summary(tmp_path, rows, title="t")
    assert json.loads((tmp_path / "summary.json").read_text()) == rows
    text = md.read_text()
    assert "| transfer | 0.9000 | 100 | 0.5000 |" in text
    assert (tmp_path / "summary_accuracy.png").stat().st_size > 1000
    (tmp_path / "summary.md").unlink()
    render(tmp_path)
    assert (tmp_path / "summary.md").is_file()


def test_render_needs_summary(tmp_path):
    with pytest.raises(DataError, match="not a run folder"):
        render(tmp_path)


def test_table_columns():
    assert markdown_table({"a": {"accuracy": 1.0, "note": "x"}}).splitlines()[0] == "| variant | accuracy | note |"
