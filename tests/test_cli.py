import json

from interlearn.cli import main


def test_tour_part_writes_run_folder(tmp_path, capsys):
    assert main(["tour", "--out", str(tmp_path), "--only", "multitask", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"multitask", "independent"} <= set(summary) and {"accuracy", "trainable_params", "train_seconds"} <= set(summary["multitask"])
    assert (tmp_path / "summary.md").is_file() and list(tmp_path.glob("*.png"))
    assert "interlearn tour" in capsys.readouterr().out


def test_unknown_part_is_a_clean_error(tmp_path, capsys):
    assert main(["tour", "--out", str(tmp_path), "--only", "centralized"]) == 2
    assert "unknown tour part(s) ['centralized']" in capsys.readouterr().err


def test_report_and_compare(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "summary.json").write_text(json.dumps({"x": {"accuracy": 0.5, "trainable_params": 3}}))
    assert main(["report", str(tmp_path / "a")]) == 0
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 0
    assert "a/x" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_run_bad_recipe_is_a_clean_error(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_text("kind: federatd\n")
    assert main(["run", str(p)]) == 2
    assert "'federatd' is not a recipe kind" in capsys.readouterr().err
