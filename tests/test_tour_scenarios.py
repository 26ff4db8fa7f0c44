"""The tour: every paradigm's scenario, one report section each, verdicts from the numbers."""

import json

import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask
from interlearn.report import MAX_COLUMNS
from interlearn.scenarios.multitask import disjoint_labels
from interlearn.tour import run_tour

PARADIGMS = ("Transfer learning", "Fine-tuning", "Knowledge distillation", "Multi-task learning", "Federated learning")


@pytest.mark.slow
def test_the_tour_report_has_one_readable_section_per_paradigm(tmp_path):
    rows = run_tour(tmp_path, progress=False)
    md = (tmp_path / "summary.md").read_text()
    sections = json.loads((tmp_path / "sections.json").read_text())["sections"]
    assert [s["paradigm"] for s in sections] == list(PARADIGMS)
    for s in sections:
        block = md.split(f"## {s['paradigm']}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("**Question.**", "**Baseline.**", "**Result.**", "**Verdict.**"):
            assert part in block, (s["paradigm"], part)
        assert (tmp_path / s["plot"]).stat().st_size > 1000
        diff = s["result_value"] - s["baseline_value"]
        # the verdict follows the numbers, and a paradigm that does not help says why
        assert ("helps" in s["verdict"] and "does not help" not in s["verdict"]) == (diff >= 0.01)
        if "does not help" in s["verdict"]:
            assert len(s["why"]) > 40
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.count("|") - 1 <= MAX_COLUMNS
    assert rows["federated/federated"]["accuracy"] > rows["federated/local_only"]["accuracy"]
    assert {"transfer/scratch@1", "distill/teacher", "multitask/multitask@20", "federated/dp_z1.2"} <= set(rows)
    assert rows["federated/dp_z0.3"]["epsilon"] > rows["federated/dp_z1.2"]["epsilon"]


def test_unknown_parts_are_named():
    with pytest.raises(ConfigError, match="unknown tour part"):
        run_tour("unused", only=["lora"], progress=False)


def test_disjoint_labels_give_each_image_one_task():
    train, _ = load_digits_multitask()
    data = disjoint_labels(train, 10, seed=0)
    labelled = torch.stack([~torch.isnan(data.y[:, DIGITS_TASKS.columns[t]]).any(1) for t in DIGITS_TASKS.columns], 1)
    assert len(data) == 30 and labelled.sum(1).eq(1).all() and labelled.sum(0).eq(10).all()
