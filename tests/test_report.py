"""Reports: sections per paradigm, narrow tables, rendering any run folder."""

import json

import pytest

from interlearn.errors import DataError
from interlearn.report import (
    MAX_COLUMNS,
    Section,
    markdown_table,
    render,
    section_markdown,
    sections_from_rows,
    verdict,
    write_summary,
)


def _section(**kw):
    base = dict(
        paradigm="Transfer learning",
        question="Does it help?",
        baseline="scratch",
        baseline_value=0.80,
        result="transfer",
        result_value=0.85,
        verdict="transfer helps",
        plot="curve.png",
        table=[{"labels/class": 1, "scratch": 0.8, "transfer": 0.85}],
    )
    base.update(kw)
    return Section(**base)


def test_section_markdown_has_question_baseline_result_difference_verdict_plot():
    md = section_markdown(_section(why="because"))
    assert md.startswith("## Transfer learning")
    for part in (
        "**Question.** Does it help?",
        "**Baseline.** scratch: 80.0% accuracy",
        "**Result.** transfer: 85.0% accuracy (+5.0 pts",
        "**Verdict.** transfer helps",
        "*Why.* because",
        "![Transfer learning](curve.png)",
        "| labels/class | scratch | transfer |",
    ):
        assert part in md, part
    assert _section().difference == pytest.approx(0.05)


def test_verdicts_follow_the_difference():
    assert verdict(0.03, 0.01, what="x") == "x helps"
    assert verdict(-0.03, 0.01, what="x").startswith("x does not help here: worse")
    assert verdict(0.001, 0.01, what="x").endswith("no clear difference")
    assert verdict(-0.03, 0.01, higher_is_better=False, what="x") == "x helps"
    assert verdict(None) == "no baseline in this run"


def test_write_and_render_sections(tmp_path):
    rows = {"scratch": {"accuracy": 0.8}, "transfer": {"accuracy": 0.85}}
    md = write_summary(
        tmp_path,
        rows,
        title="t",
        sections=[_section(), _section(paradigm="Fine-tuning", verdict="no clear difference")],
    )
    assert json.loads((tmp_path / "summary.json").read_text()) == rows
    text = md.read_text()
    assert text.count("\n## ") == 2 and "| paradigm | baseline | result | difference | verdict |" in text
    (tmp_path / "summary.md").unlink()
    assert render(tmp_path).read_text() == text  # re-rendered from sections.json alone


def test_tables_are_never_wider_than_the_limit():
    wide = {"a": {f"c{i}": i for i in range(20)}}
    assert markdown_table(wide).splitlines()[0].count("|") - 1 == MAX_COLUMNS
    md = section_markdown(_section(table=[{f"c{i}": i for i in range(20)}]))
    header = next(line for line in md.splitlines() if line.startswith("| c0"))
    assert header.count("|") - 1 == MAX_COLUMNS


def test_run_folders_without_sections_get_them_from_rows(tmp_path):
    rows = {
        "teacher": {"accuracy": 0.97, "trainable_params": 80000},
        "student_alone": {"accuracy": 0.90, "trainable_params": 1200},
        "distilled": {"accuracy": 0.92, "trainable_params": 1200},
    }
    (tmp_path / "summary.json").write_text(json.dumps(rows))
    (tmp_path / "recipe.json").write_text(json.dumps({"kind": "distill"}))
    text = render(tmp_path).read_text()
    assert "## Knowledge distillation" in text and "**Baseline.** student_alone: 90.0%" in text and "+2.0 pts" in text
    assert (tmp_path / "summary_accuracy.png").stat().st_size > 1000
    (sec,) = sections_from_rows({"x": {"accuracy": 0.5}}, None)
    assert sec.result == "x" and sec.verdict == "no baseline in this run"


def test_render_needs_a_run_folder(tmp_path):
    with pytest.raises(DataError, match="not a run folder"):
        render(tmp_path)


def test_keyboard_run_folders_compare_like_with_like(tmp_path):
    rows = {
        "global": {"top1_recall": 0.08},
        "personalized": {"top1_recall": 0.09, "global_median": 0.085},
        "ondevice": {"top1_recall": 0.05, "bytes": 100},
    }
    pers, dev = sections_from_rows(rows, "keyboard_words", tmp_path)
    assert pers.baseline_value == 0.085 and pers.verdict == "personalization does not help here: no clear difference"
    assert dev.baseline_value == 0.08 and "loses 3.0 points at 100 bytes" in dev.verdict
