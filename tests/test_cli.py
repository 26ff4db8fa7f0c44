import json

from interlearn.cli import main


def test_tour_part_writes_run_folder(tmp_path, capsys):
    assert main(["tour", "--out", str(tmp_path), "--only", "federated", "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"federated/federated", "federated/local_only", "federated/centralized"} <= set(summary)
    assert {"accuracy", "trainable_params", "train_seconds"} <= set(summary["federated/federated"])
    md = (tmp_path / "summary.md").read_text()
    assert (
        "## Federated learning" in md and "**Verdict.**" in md and (tmp_path / "federated" / "federated.png").is_file()
    )
    out = capsys.readouterr().out
    assert "interlearn tour" in out and "verdict" in out


def test_unknown_part_is_a_clean_error(tmp_path, capsys):
    assert main(["tour", "--out", str(tmp_path), "--only", "centralized"]) == 2
    assert "unknown tour part(s) ['centralized']" in capsys.readouterr().err


def test_report_and_compare(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "summary.json").write_text(json.dumps({"x": {"accuracy": 0.5, "trainable_params": 3}}))
    assert main(["report", str(tmp_path / "a")]) == 0
    assert "**Question.**" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 0
    assert "a/x" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_run_bad_recipe_is_a_clean_error(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_text("kind: federatd\n")
    assert main(["run", str(p)]) == 2
    assert "'federatd' is not a recipe kind" in capsys.readouterr().err
