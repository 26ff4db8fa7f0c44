"""The tour: every paradigm's scenario, one report section each, verdicts from the numbers."""

import json

import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.multitask.data import DIGITS_TASKS, load_digits_multitask
from interlearn.report import MAX_COLUMNS
from interlearn.scenarios.multitask import disjoint_labels
from interlearn.tour import run_tour

PARADIGMS = (
    "Transfer learning",
    "Fine-tuning",
    "Knowledge distillation",
    "Multi-task learning",
    "Federated learning",
    "Federated personalization",
)


@pytest.mark.slow
def test_the_tour_report_has_one_readable_section_per_paradigm(tmp_path):
    rows = run_tour(tmp_path, progress=False)
    md = (tmp_path / "summary.md").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    sections = json.loads((tmp_path / "sections.json").read_text())["sections"]
    assert [s["paradigm"] for s in sections] == list(PARADIGMS)
    for s in sections:
        block = md.split(f"## {s['paradigm']}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("**Question.**", "**Baseline.**", "**Result.**", "**Verdict.**", "**Boundary.**"):
            assert part in block, (s["paradigm"], part)
        assert (tmp_path / s["plot"]).stat().st_size > 1000
        # every verdict rests on three seeds and says "helps" exactly when the gain exceeds twice its SE
        assert len(s["seeds"]) >= 3 and s["difference_se"] is not None
        diff, se = s["result_value"] - s["baseline_value"], s["difference_se"]
        assert ("helps" in s["verdict"] and "does not help" not in s["verdict"]) == (diff > 2 * se and diff > 0)
        assert s["boundary"] and s["stops"]
        assert len(s["table"]) >= 3  # the learning curve, one row per point
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.count("|") - 1 <= MAX_COLUMNS
    # the gains behind the verdicts, with seeds and standard errors, in summary.json
    for key in (
        "transfer/transfer_vs_scratch",
        "transfer/finetune_vs_transfer_mirrored",
        "distill/distilled_vs_alone",
        "multitask/multitask_vs_independent",
        "federated/federated_vs_local",
        "federated/memory_alpha0.3",
    ):
        g = summary[key]
        assert {"gain", "gain_se", "seeds", "gain_per_seed", "significant", "per_budget"} - {"per_budget"} <= set(g)
        assert len(g["seeds"]) == len(g["gain_per_seed"]) >= 3
    assert rows["federated/federated"]["accuracy"] > rows["federated/local_only"]["accuracy"]
    assert {
        "transfer/scratch@1",
        "transfer/zero_shot",
        "distill/teacher",
        "multitask/multitask@20",
        "federated/dp_z2",
    } <= set(rows)
    assert rows["federated/dp_z0.5"]["epsilon"] > rows["federated/dp_z2"]["epsilon"]
    assert set(summary["tour/timing"]) >= {"workers", "total_seconds", "transfer_cpu_seconds"}


def test_unknown_parts_are_named():
    with pytest.raises(ConfigError, match="unknown tour part"):
        run_tour("unused", only=["lora"], progress=False)


def test_disjoint_labels_give_each_image_one_task():
    train, _ = load_digits_multitask()
    data = disjoint_labels(train, 10, seed=0)
    labelled = torch.stack([~torch.isnan(data.y[:, DIGITS_TASKS.columns[t]]).any(1) for t in DIGITS_TASKS.columns], 1)
    assert len(data) == 30 and labelled.sum(1).eq(1).all() and labelled.sum(0).eq(10).all()
