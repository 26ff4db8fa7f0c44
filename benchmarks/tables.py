"""Markdown tables rendered from benchmarks/results/*.json (used by assemble.py).

Each function takes ``load(name) -> dict`` (the parsed ``results/<name>.json``) and returns a
Markdown table; nothing here is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Load = Callable[[str], Any]

_TOOLS = ["auto", "sequential", "vectorized", "multicore", "ray", "plain", "flower", "pfl"]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def fl_matrix(load: Load) -> str:
    """Per tool and workload: microseconds per training example (median and range of the
    interleaved repeats), against ``auto``, the first round, seconds per round, end to end, accuracy."""
    d = load("fl_matrix")
    out = [
        _row(
            [
                "workload",
                "tool",
                "us / example (median)",
                "range",
                "vs auto",
                "first round / steady",
                "s / round",
                "end to end s",
                "final acc",
            ]
        ),
        _row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for w, res in d["results"].items():
        auto = res.get("auto", {}).get("us_per_example", {}).get("median")
        for tool in [t for t in _TOOLS if t in res]:
            r = res[tool]
            if "us_per_example" not in r:
                out.append(_row([w, tool, "failed", "", "", "", "", "", r.get("error", "")]))
                continue
            rate, first = r["us_per_example"], r["first_round_us_per_example"]["median"]
            name = f"{tool} ({r['engine'].split(' (')[0]})" if tool == "auto" and r.get("engine") else tool
            out.append(
                _row(
                    [
                        w,
                        name,
                        f"{rate['median']:.1f}",
                        f"{rate['min']:.1f}–{rate['max']:.1f}",
                        f"{rate['median'] / auto:.2f}x" if auto else "",
                        f"{first / rate['median']:.2f}",
                        f"{r['s_per_round']:.3f}",
                        f"{r['end_to_end_s']['median']:.1f}",
                        f"{r['final_acc']:.4f}",
                    ]
                )
            )
        f = d.get("floor", {}).get(w)
        if f:
            out.append(
                _row([w, f"roofline floor ({f['bound']}-bound, 2 cores)", f"{f['us_per_example']:.1f}"] + [""] * 6)
            )
    return "\n".join(out)


def fl_matrix_targets(load: Load) -> str:
    """The issue's targets: median and min-max over the interleaved repeats; met only when the
    whole range clears the bound."""
    d = load("fl_matrix")
    out = [_row(["target", "median", "range", "met?"]), _row(["---", "---:", "---:", "---"])]
    for name, t in d["targets"].items():
        out.append(
            _row([name, f"{t['value']:.2f}", f"{t['min']:.2f}–{t['max']:.2f}", "**yes**" if t["met"] else "**no**"])
        )
    return "\n".join(out)


def _curve(curve: list, label: str) -> str:
    step = max(1, len(curve) // 12)
    pts = curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else [])
    return "\n".join(
        [_row(["round", label]), _row(["---:", "---:"])] + [_row([str(r), f"{100 * a:.1f}"]) for r, a in pts]
    )


def shakespeare_curve(load: Load) -> str:
    """FedAvg's test accuracy on the curve sample against rounds (at most 13 rows)."""
    return _curve(load("shakespeare")["acc_vs_rounds"]["fedavg"], "test accuracy % (curve sample)")


def femnist_curve(load: Load) -> str:
    """FedAvg's FEMNIST test accuracy against rounds (at most 13 rows)."""
    return _curve(load("femnist")["acc_vs_rounds"], "test accuracy %")


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}"


def transfer_curve(load: Load) -> str:
    """Test accuracy (mean ± std over seeds) per label budget, and the cut each seed's auto cut chose."""
    d = load("transfer")
    cuts: dict[int, list[tuple[int, str, str]]] = {}
    for a in d["autocuts"]:
        cuts.setdefault(a["labels_per_class"], []).append((a["seed"], a["chosen_name"], a["method"]))
    out = [
        _row(["labels/class", "scratch", "transfer (auto cut)", "fine-tune", "cuts chosen (by seed)"]),
        _row(["---:", "---:", "---:", "---:", "---"]),
    ]
    for c in d["curve"]:
        b = c["labels_per_class"]
        chosen = sorted(cuts.get(b, []))
        rule = " (rule)" if chosen and all(m == "rule" for _, _, m in chosen) else ""
        cells = [f"{_pct(c[f'{m}_mean'])} ± {_pct(c[f'{m}_std'])}" for m in ("scratch", "transfer", "finetune")]
        if b == d["labels_per_class_of_headline"]:
            cells = [f"**{x}**" for x in cells]
        out.append(_row([str(b), *cells, ", ".join(n for _, n, _ in chosen) + rule]))
    return "\n".join(out)


def transfer_cv(load: Load) -> str:
    """Cross-validated accuracy of every candidate cut and of scratch at the headline budget (mean over seeds)."""
    d = load("transfer")
    b = d["labels_per_class_of_headline"]
    runs = [a for a in d["autocuts"] if a["labels_per_class"] == b and a["method"] == "cv"]
    by: dict[str, list[float]] = {}
    for a in runs:
        for s in a["scores"]:
            by.setdefault(f"cut before {s['name']}", []).append(s["mean"])
        if a["scratch"] is not None:
            by.setdefault("scratch", []).append(a["scratch"]["mean"])
    out = [_row(["candidate", f"CV accuracy at {b} labels/class (mean over {len(runs)} seeds)"]), _row(["---", "---:"])]
    out += [_row([k, f"{sum(v) / len(v):.2f}"]) for k, v in by.items()]
    return "\n".join(out)


def transfer_flags(load: Load) -> str:
    """The cross-validated runs whose report flagged negative transfer, with their test accuracies."""
    d = load("transfer")
    acc = {(r["seed"], r["labels_per_class"], r["method"]): r["accuracy"] for r in d["runs"]}
    cv = [a for a in d["autocuts"] if a["method"] == "cv"]
    out = [
        _row(["seed", "labels/class", "flagged by CV", "test: transfer", "test: scratch"]),
        _row(["---:", "---:", "---", "---:", "---:"]),
    ]
    for a in cv:
        if a["negative_transfer"]:
            key = (a["seed"], a["labels_per_class"])
            out.append(
                _row(
                    [
                        str(a["seed"]),
                        str(a["labels_per_class"]),
                        "negative transfer",
                        _pct(acc[(*key, "transfer")]),
                        _pct(acc[(*key, "scratch")]),
                    ]
                )
            )
    out.append(_row(["", "", f"{sum(a['negative_transfer'] for a in cv)} of {len(cv)} cross-validated runs", "", ""]))
    return "\n".join(out)


def feature_cache(load: Load) -> str:
    """Uncached vs cached head training per configuration (the first is the headline)."""
    d = load("feature_cache")
    out = [
        _row(
            [
                "configuration",
                "uncached (s)",
                "cached (s)",
                "of which feature extraction (s)",
                "speedup",
                "max \\|ΔW\\|",
                "accuracy uncached / cached",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---"]),
    ]
    for i, (name, c) in enumerate(d["configs"].items()):
        speed = f"{c['speedup']:.1f}×"
        out.append(
            _row(
                [
                    name + (" (headline)" if i == 0 else ""),
                    f"{c['uncached']['seconds']:.2f}",
                    f"{c['cached']['seconds']:.2f}",
                    f"{c['cached']['cache_seconds']:.2f}",
                    f"**{speed}**" if i == 0 else speed,
                    f"{c['max_weight_diff']:g}",
                    f"{c['uncached']['accuracy']:.4f} / {c['cached']['accuracy']:.4f}",
                ]
            )
        )
    return "\n".join(out)


def distill(load: Load) -> str:
    """Errors (mean ± SE over seeds, and per seed), accuracy, size and latency of teacher, student
    alone and distilled student, and the paper's errors."""
    d = load("distill")
    m = d["models"]
    width = "×".join(str(h) for h in d["student_hidden"])
    names = {
        "teacher": ("teacher (CNN)", "teacher"),
        "student_alone": (f"student alone ({width} MLP)", "student"),
        "distilled_student": (f"distilled student ({width} MLP, jittered transfer set)", "distilled"),
    }
    out = [
        _row(
            [
                "model",
                "test errors (mean ± SE)",
                "per seed",
                "parameters",
                "safetensors bytes",
                "CPU latency batch 1 (ms)",
                "batch 256 (ms)",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for key, (label, short) in names.items():
        r = m[key]
        out.append(
            _row(
                [
                    label,
                    f"**{d[f'{short}_errors']:.1f}** ± {d[f'{short}_errors_se']:.1f}",
                    " / ".join(str(e) for e in d["errors_per_seed"][key]),
                    f"{r['params']:,}",
                    f"{r['bytes']:,}",
                    f"{r['latency_ms_b1']:.3f}",
                    f"{r['latency_ms_b256']:.3g}",
                ]
            )
        )
    p = d["paper_hinton2015"]
    out.append(
        _row(
            [
                "*Hinton et al. 2015 (MLP teacher → MLP student)*",
                f"*{p['teacher_errors']} / {p['student_errors']} / {p['distilled_errors']}*",
                "",
                "",
                "",
                "",
                "",
            ]
        )
    )
    return "\n".join(out)


def fl_scale(load: Load) -> str:
    """Peak RSS and rounds per second of every engine, with the import-only baseline."""
    d = load("fl_scale")
    out = [
        _row(["engine", "peak RSS MB", "rounds/s", f"test acc after {d['rounds']} rounds"]),
        _row(["---", "---:", "---:", "---:"]),
        _row(["baseline (imports + data only)", f"{d['baseline_rss_mb']:.0f}", "-", "-"]),
    ]
    for name, e in d["engines"].items():
        out.append(_row([name, f"{e['peak_rss_mb']:.0f}", f"{e['rounds_per_second']:.1f}", f"{e['final_acc']:.4f}"]))
    return "\n".join(out)


def fl_scale_synthetic(load: Load) -> str:
    """Part 2 of fl_scale: a lazily generated population, one row per population and cohort."""
    d = load("fl_scale")["synthetic"]
    out = [
        _row(
            [
                "clients",
                "cohort",
                "peak RSS MB",
                "s / round (median)",
                "min–max over rounds",
                "each pass",
                "generating a cohort s",
                "drawing a cohort ms",
            ]
        ),
        _row(["---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    out += [
        _row(
            [
                f"{r['clients']:,}",
                f"{r['cohort']:,}",
                f"{r['peak_rss_mb']:.0f}",
                f"{r['s_per_round']:.3f}",
                f"{r['s_per_round_min']:.3f}–{r['s_per_round_max']:.3f}",
                " / ".join(f"{v:.3f}" for v in r["s_per_round_of_each_pass"]),
                f"{r['generate_s_per_cohort']:.3f}",
                f"{r['sample_ms']:.2f}",
            ]
        )
        for r in d["rows"]
    ]
    return "\n".join(out)


def gpu_check(load: Load) -> str:
    """The GPU check: skipped (and why), or each engine's CUDA-vs-CPU difference and the rates."""
    d = load("gpu_check")
    if d["skipped"]:
        return "\n".join([_row(["GPU run", "why"]), _row(["---", "---"]), _row(["none (skipped)", d["reason"]])])
    out = [_row(["model", "engine", "CUDA vs CPU", "max abs diff"]), _row(["---", "---", "---", "---:"])]
    for model, row in d["equality"].items():
        for engine, e in row.items():
            diff = f"{e['max_abs_diff']:.1e}" if "max_abs_diff" in e else e.get("reason", "")
            out.append(_row([model, engine, e["status"], diff]))
    out += ["", _row(["model", "path", "µs / example"]), _row(["---", "---", "---:"])]
    for model, r in d["rates"].items():
        for kind in ("federated", "fit"):
            for name, v in r[kind].items():
                value = f"{v['us_per_example']:.1f}" if "us_per_example" in v else v.get("status", v.get("error", ""))
                out.append(_row([model, f"{kind} {name}", value]))
    return "\n".join(out)


def fl_mnist(load: Load) -> str:
    """The run's settings and outcome in one row."""
    d = load("fl_mnist")
    r99 = str(d["rounds_to_99"]) if d["rounds_to_99"] is not None else "not reached"
    r97 = f"**{d['rounds_to_97']}**" if d["rounds_to_97"] is not None else "not reached"
    out = [
        _row(
            [
                "E",
                "B",
                "lr",
                "model",
                "rounds run",
                "stopped by",
                "rounds to 97%",
                "rounds to 99%",
                "final acc",
                "best acc",
            ]
        ),
        _row(["---:", "---:", "---:", "---", "---:", "---", "---:", "---", "---:", "---:"]),
        _row(
            [
                str(d["E"]),
                str(d["B"]),
                f"{d['lr']:g}",
                d["model"],
                str(d["rounds_run"]),
                f"{d['stopped_by']} ({d['budget_s']:.0f} s, {d['seconds_per_round']:.1f} s/round)",
                r97,
                r99,
                f"{d['final_acc']:.4f}",
                f"{d['best_acc']:.4f}",
            ]
        ),
    ]
    return "\n".join(out)


def fl_mnist_curve(load: Load) -> str:
    """Test accuracy against rounds (at most 13 rows)."""
    return _curve(load("fl_mnist")["history"], "test accuracy %")


def _secagg(d: dict[str, Any], cpu: bool, ranges: bool = False) -> str:
    head = ["clients", "variant", "k", "plain s/round", "secure s/round", "time ratio"]
    head += ["range"] if ranges else []
    head += ["CPU ratio", "bytes-up ratio", "bytes-down ratio"] if cpu else ["bytes-up ratio"]
    out = [_row(head), _row(["---:", "---", *["---:"] * (len(head) - 2)])]
    for variant, per_n in d["variants"].items():
        for n, v in per_n.items():
            cells = [
                f"{int(n):,}",
                variant,
                str(v["degree"]),
                f"{v['plain_seconds']:.4f}",
                f"{v['seconds']:.4f}",
                f"{v['time_ratio']:.2f}",
            ]
            if ranges:
                r = v["time_ratio_range"]
                cells.append(f"{r['min']:.2f}–{r['max']:.2f}")
            cells += (
                [f"{v['cpu_time_ratio']:.2f}", f"{v['bytes_ratio']:.2f}", f"{v['bytes_down_ratio']:.2f}"]
                if cpu
                else [f"{v['bytes_ratio']:.2f}"]
            )
            out.append(_row(cells))
    return "\n".join(out)


def fl_secagg(load: Load) -> str:
    """Plain vs secure round time (median and range of the repeats), CPU and bytes for both
    variants at every client count."""
    return _secagg(load("fl_secagg"), cpu=True, ranges=True)


def fl_secagg_previous(load: Load) -> str:
    """The previous run (one repeat), full SecAgg at a thousand clients included."""
    return _secagg(load("fl_secagg_previous"), cpu=True)


def fl_secagg_sequential(load: Load) -> str:
    """The same on the sequential engine (per-client PyTorch loop)."""
    return _secagg(load("fl_secagg_sequential"), cpu=False)


def fl_compress(load: Load) -> str:
    """Bytes up, savings and accuracy of every compressor."""
    d = load("fl_compress")
    rounds = d["config"]["rounds"]
    out = [
        _row(["compressor", f"MB up ({rounds} rounds)", "saved", "factor", "test accuracy", "drop (points)"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for r in d["rows"]:
        drop = r["accuracy_drop_points"]
        out.append(
            _row(
                [
                    r["compressor"],
                    f"{r['bytes_up'] / 1e6:.2f}",
                    f"{100 * r['bytes_saved_ratio']:.1f}%",
                    f"{r['compression_factor']:.1f}",
                    f"{r['accuracy']:.4f}",
                    f"{drop:.2f}".replace("-", "−"),
                ]
            )
        )
    return "\n".join(out)


def fl_engines(load: Load) -> str:
    """Per-round, steady-state, start-up and total seconds, accuracy and fidelity of every engine."""
    d = load("fl_engines")
    e = d["engines"]
    seq = e["sequential"]["steady_seconds_per_round"]
    out = [
        _row(
            [
                "engine",
                "s/round",
                "steady s/round",
                "vs sequential (steady)",
                "start-up s",
                "total s",
                "test accuracy",
                "max_param_diff vs sequential",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for name, r in e.items():
        label = name if r.get("engine", name) == name else f"{name}: {r['engine']}"
        out.append(
            _row(
                [
                    label,
                    f"{r['wall_seconds_per_round']:.3f}",
                    f"{r['steady_seconds_per_round']:.3f}",
                    f"{r['steady_seconds_per_round'] / seq:.1f}x",
                    f"{r['startup_seconds']:.1f}",
                    f"{r['total_seconds']:.1f}",
                    f"{r['final_accuracy']:.4f}",
                    f"{r['max_param_diff']:.3g}",
                ]
            )
        )
    return "\n".join(out)


def fl_lora(load: Load) -> str:
    """What each exchange variant sends per round and how accurate it ends."""
    d = load("fl_lora")
    t = d["task"]
    out = [
        _row(
            [
                "exchange",
                "tensors sent",
                "parameters sent",
                f"MB per round ({t['clients']} clients, down + up)",
                f"test accuracy (round {t['rounds']})",
                "best round",
                "client train accuracy (mean)",
                "s/round",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    labels = {"adapter": f"adapter (LoRA r={t['lora_rank']} + head)", "full": "full model"}
    for name, v in d["variants"].items():
        accs = v["accuracy_per_round"]
        best = max(range(len(accs)), key=lambda i: accs[i])
        out.append(
            _row(
                [
                    labels.get(name, name),
                    str(v["exchanged_tensors"]),
                    f"{v['exchanged_params']:,}",
                    f"{v['bytes_per_round'] / 1e6:.2f}",
                    f"{v['final_accuracy']:.3f}",
                    f"{accs[best]:.3f} (round {best + 1})",
                    f"{v['client_accuracy_mean']:.3f}",
                    f"{v['seconds_per_round']:.1f}",
                ]
            )
        )
    return "\n".join(out)


_EXACT = ("mgda", "pcgrad", "cagrad", "imtl_g", "aligned_mtl", "upgrad", "nash_mtl")


def _mtl_kind(name: str) -> str:
    if name.endswith("@rep") or name == "mgda_ub":
        return "gradient (representation)"
    return "gradient (parameters, exact)" if name in _EXACT else "weighting"


def mtl_overhead(load: Load) -> str:
    """Milliseconds per step and the ratio to equal weighting at both task counts, by kind."""
    d = {k: v for k, v in load("mtl_overhead").items() if k != "multitask_vs_independent"}
    kinds = ["weighting", "gradient (representation)", "gradient (parameters, exact)"]
    names = sorted(d, key=lambda n: (kinds.index(_mtl_kind(n)), n != "equal"))
    out = [
        _row(["method", "kind", "ms/step T=2", "×equal T=2", "ms/step T=10", "×equal T=10"]),
        _row(["---", "---", "---:", "---:", "---:", "---:"]),
    ]
    for n in names:
        r = d[n]
        out.append(
            _row(
                [
                    n,
                    _mtl_kind(n),
                    f"{r['ms_t2']:.1f}",
                    f"{r['ratio_t2']:.2f}",
                    f"{r['ms_t10']:.1f}",
                    f"{r['ratio_t10']:.2f}",
                ]
            )
        )
    return "\n".join(out)


def mtl_vs_independent(load: Load) -> str:
    """Parameters and step time of one multi-task model against T single-task models."""
    m = load("mtl_overhead")["multitask_vs_independent"]
    return "\n".join(
        [
            _row(["", "T=2", "T=10"]),
            _row(["---", "---:", "---:"]),
            _row(["parameters (MTL / T × single)", f"{m['params_ratio_t2']:.2f}", f"{m['params_ratio_t10']:.2f}"]),
            _row(
                ["step time (MTL equal / T × single step)", f"{m['time_ratio_t2']:.2f}", f"{m['time_ratio_t10']:.2f}"]
            ),
        ]
    )


# ---------------------------------------------------------------- multi-task (MultiMNIST)
Spec = list[tuple[str, str, str]]  # (row label, results file, key in it)

_HEADLINE_REF = ("multitask_100epochs", "independent")
_HARD_100: Spec = [
    ("independent (2 LeNets)", "multitask_100epochs", "independent"),
    ("uncertainty (Kendall)", "multitask_100epochs", "uncertainty"),
    ("UPGrad", "multitask_100epochs_more", "upgrad"),
    ("PCGrad", "multitask_100epochs_pcgrad_gradnorm", "pcgrad"),
    ("MGDA-UB", "multitask_100epochs", "mgda_ub"),
    ("equal", "multitask_100epochs_more", "equal"),
    ("GradNorm", "multitask_100epochs_pcgrad_gradnorm", "gradnorm"),
    ("CAGrad (c = 0.5)", "multitask_100epochs_cagrad", "cagrad"),
    ("FAMO", "multitask_100epochs_famo", "famo"),
]
_SOFT_100: Spec = [
    ("independent (2 LeNets, headline run)", "multitask_100epochs", "independent"),
    ("cross-stitch, equal", "multitask_100epochs_cross_stitch", "equal"),
    ("cross-stitch, uncertainty", "multitask_100epochs_cross_stitch_uncertainty", "uncertainty"),
    ("cross-stitch, MGDA-UB", "multitask_100epochs_cross_stitch_mgda_ub", "mgda_ub"),
    ("MMoE (2 experts), equal", "multitask_100epochs_mmoe", "equal"),
]
_LABELS = {
    "independent": "independent (2 LeNets)",
    "equal": "equal",
    "uncertainty": "uncertainty (Kendall)",
    "gradnorm": "GradNorm",
    "mgda_ub": "MGDA-UB",
    "pcgrad": "PCGrad",
    "upgrad": "UPGrad",
    "famo": "FAMO",
}


def _run(load: Load, file: str, key: str) -> dict[str, Any]:
    return load(file)[key]


def _delta_m(row: dict[str, Any], ref: dict[str, Any]) -> float:
    """Δm% of ``row`` against ``ref`` on both tasks' accuracy (interlearn's own formula)."""
    from interlearn.multitask.compare import delta_m  # the package's definition, not a copy

    return delta_m(
        {"left": row["left_acc"], "right": row["right_acc"]},
        {"left": ref["left_acc"], "right": ref["right_acc"]},
        {"left": True, "right": True},
    )


def _best(values: list[float | None]) -> set[int]:
    """Indices of the largest value, overall and among all but the first (the reference) row."""
    known = [(v, i) for i, v in enumerate(values) if v is not None]
    rest = [(v, i) for v, i in known if i > 0]
    return {max(known)[1]} | ({max(rest)[1]} if rest else set())


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def multitask_rows(
    load: Load,
    spec: Spec,
    ref: tuple[str, str] = _HEADLINE_REF,
    extra: Callable[[dict[str, Any], dict[str, Any]], list[str]] | None = None,
    extra_heads: tuple[str, ...] = (),
) -> str:
    """Left / right accuracy (%) and Δm% against ``ref`` for every row of ``spec``; the best
    values overall and among the multi-task rows in bold."""
    reference = _run(load, *ref)
    rows = [_run(load, f, k) for _, f, k in spec]
    is_ref = [(f, k) == ref for _, f, k in spec]
    dm = [None if r_ else _delta_m(r, reference) for r, r_ in zip(rows, is_ref)]
    best_l, best_r = _best([r["left_acc"] for r in rows]), _best([r["right_acc"] for r in rows])
    top_dm = max((d for d in dm if d is not None), default=None)
    out = [
        _row(["row", "left", "right", "Δm% vs independent", *extra_heads]),
        _row(["---", "---:", "---:", "---:", *["---:"] * len(extra_heads)]),
    ]
    for i, ((label, _, _), r) in enumerate(zip(spec, rows)):
        d = "—" if dm[i] is None else _bold(f"{dm[i]:+.2f}".replace("-", "−"), dm[i] == top_dm)
        out.append(
            _row(
                [
                    label,
                    _bold(f"{100 * r['left_acc']:.2f}", i in best_l),
                    _bold(f"{100 * r['right_acc']:.2f}", i in best_r),
                    d,
                    *(extra(r, reference) if extra else []),
                ]
            )
        )
    return "\n".join(out)


def _params_seconds(r: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    return [f"{r['trainable_params']:,}", f"{r['train_seconds']:,.0f}"]


def _with_ratios(r: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    return [
        f"{r['trainable_params']:,} ({r['trainable_params'] / ref['trainable_params']:.2f})",
        f"{r['train_seconds']:,.0f} ({r['train_seconds'] / ref['train_seconds']:.2f})",
    ]


def multitask_hard_100(load: Load) -> str:
    """The 100-epoch hard-sharing rows against the two independent LeNets."""
    return multitask_rows(load, _HARD_100, extra=_params_seconds, extra_heads=("params", "train seconds"))


def multitask_soft_100(load: Load) -> str:
    """The 100-epoch soft-sharing rows (cross-stitch, MMoE) against the same independent LeNets."""
    return multitask_rows(
        load, _SOFT_100, extra=_with_ratios, extra_heads=("params (× independent)", "train seconds (× independent)")
    )


def multitask_seeds(load: Load) -> str:
    """Independent vs cross-stitch with two seeds, and the means."""
    runs = {
        ("independent", 0): _run(load, "multitask_100epochs", "independent"),
        ("cross", 0): _run(load, "multitask_100epochs_cross_stitch", "equal"),
        ("independent", 1): _run(load, "multitask_100epochs_seed1_independent", "independent"),
        ("cross", 1): _run(load, "multitask_100epochs_seed1_cross_stitch", "equal"),
    }

    def pair(r: dict[str, Any]) -> str:
        return f"{100 * r['left_acc']:.2f} / {100 * r['right_acc']:.2f}"

    def mean(kind: str) -> dict[str, float]:
        return {k: (runs[(kind, 0)][k] + runs[(kind, 1)][k]) / 2 for k in ("left_acc", "right_acc")}

    out = [
        _row(["row", "seed 0 left / right", "seed 1 left / right", "mean left / right"]),
        _row(["---", "---:", "---:", "---:"]),
    ]
    for kind, label in (("independent", "independent (2 LeNets)"), ("cross", "cross-stitch, equal")):
        out.append(_row([label, pair(runs[(kind, 0)]), pair(runs[(kind, 1)]), pair(mean(kind))]))
    dms = [f"{_delta_m(runs[('cross', s)], runs[('independent', s)]):+.2f}".replace("-", "−") for s in (0, 1)]
    out.append(
        _row(
            [
                "Δm% (cross-stitch vs independent, same seed)",
                dms[0],
                dms[1],
                f"{_delta_m(mean('cross'), mean('independent')):+.2f} (of the means)".replace("-", "−"),
            ]
        )
    )
    return "\n".join(out)


def _time_ratio(r: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    return [
        f"{r['trainable_params']:,}",
        f"{r['train_seconds']:,.0f}",
        f"{r['train_seconds'] / ref['train_seconds']:.2f}",
    ]


def multitask_60(load: Load) -> str:
    """The 60-epoch run (published layout, no dropout)."""
    spec = [(_LABELS[k], "multitask_60epochs", k) for k in load("multitask_60epochs")]
    return multitask_rows(
        load,
        spec,
        ref=("multitask_60epochs", "independent"),
        extra=_time_ratio,
        extra_heads=("params", "train seconds", "time vs independent"),
    )


def multitask_5(load: Load) -> str:
    """The first run (random layout, 5 epochs) with the estimated training memory."""

    def mem(r: dict[str, Any], ref: dict[str, Any]) -> list[str]:
        return [f"{r['trainable_params']:,}", f"{r['est_memory_bytes'] / 1e6:.1f}"]

    spec = [(_LABELS[k], "multitask", k) for k in load("multitask")]
    return multitask_rows(
        load,
        spec,
        ref=("multitask", "independent"),
        extra=mem,
        extra_heads=("trainable params", "est. train memory (MB)"),
    )


def multitask_20(load: Load) -> str:
    """The 20-epoch run (random layout, four methods)."""
    spec = [(_LABELS[k], "multitask_20epochs", k) for k in load("multitask_20epochs")]
    return multitask_rows(
        load,
        spec,
        ref=("multitask_20epochs", "independent"),
        extra=lambda r, ref: [f"{r['trainable_params']:,}"],
        extra_heads=("params",),
    )


def keyboard_words_curve(load: Load) -> str:
    """The word model's top-1 recall against rounds."""
    return _curve(load("keyboard_words")["acc_vs_rounds"], "top-1 recall % (test users)")


def keyboard_words_personalization(load: Load) -> str:
    """Every personalization method: median and mean gain, users improved and worse."""
    d = load("keyboard_words")
    shipped = d["personalization"]["validated_method"]
    out = [
        _row(["method", "median gain (pts)", "mean gain (pts)", "users improved", "users worse"]),
        _row(["---", "---:", "---:", "---:", "---:"]),
    ]
    for name, s in d["personalization"]["summary"].items():
        label = f"{name} (**shipped**)" if name == shipped else name
        out.append(
            _row(
                [
                    label,
                    f"{100 * s['median_gain']:+.2f}",
                    f"{100 * s['mean_gain']:+.2f}",
                    f"{s['improved_fraction']:.0%}",
                    str(len(s["worse"])),
                ]
            )
        )
    return "\n".join(out)


def _ondevice(variants: list[dict], budget: int, extra_key: str | None) -> str:
    head = (
        ["encoding", "bytes", "fraction of float32", "accuracy"]
        + ([extra_key.replace("_", " ")] if extra_key else [])
        + ["within budget"]
    )
    out = [_row(head), _row(["---"] + ["---:"] * (len(head) - 1))]
    full = max(v["bytes"] for v in variants)
    for v in sorted(variants, key=lambda v: -v["bytes"]):
        cells = [v["name"], f"{v['bytes']:,}", f"{v['bytes'] / full:.1%}", f"{v['accuracy']:.4f}"]
        if extra_key:
            cells.append(f"{v.get('extra', {}).get(extra_key, float('nan')):.4f}")
        out.append(_row([*cells, "yes" if v["bytes"] <= budget else "no"]))
    return "\n".join(out)


def keyboard_words_ondevice(load: Load) -> str:
    """Every on-device encoding of the word model: bytes, top-1 and top-3 recall."""
    d = load("keyboard_words")
    return _ondevice(d["ondevice"], d["ondevice_budget_bytes"], "top3_recall")


def shakespeare_ondevice(load: Load) -> str:
    """Every on-device variant of the character model: bytes and accuracy (curve sample)."""
    d = load("shakespeare")
    return _ondevice(d["ondevice_variants"], d["ondevice_budget_bytes"], None)


def fl_privacy(load: Load) -> str:
    """Accuracy, the accountant's epsilon and both audits' estimates at every noise level."""
    d = load("fl_privacy")
    out = [
        _row(["setting", "z", "epsilon", "audit epsilon [interval]", "final-model audit [interval]", "test accuracy"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]
    out.extend(_row([r["setting"], "", "inf", "", "", f"{r['accuracy']:.4f}"]) for r in d["rows"][:2])
    for p in sorted([d["no_noise_audit"], *d["points"]], key=lambda p: p["noise_multiplier"]):
        audit = f"{p['empirical_epsilon']:.2f} [{p['empirical_epsilon_low']:.2f}, {p['empirical_epsilon_high']:.2f}]"
        final = f"{p['empirical_epsilon_final']:.2f} [{p['empirical_epsilon_final_low']:.2f}, {p['empirical_epsilon_final_high']:.2f}]"
        out.append(
            _row(
                ["DP-FedAvg", f"{p['noise_multiplier']:g}", f"{p['epsilon']:.3g}", audit, final, f"{p['accuracy']:.4f}"]
            )
        )
    return "\n".join(out)


_ATTACKS = {
    "none": "none",
    "sign_flip": "sign flip",
    "scaling": "scaling",
    "gaussian": "gaussian",
    "label_flip": "label flip",
}


def fl_robust(load: Load) -> str:
    """Test accuracy of every aggregator under every attack and attacker fraction."""
    d = load("fl_robust")
    aggs = list(dict.fromkeys(r["aggregator"] for r in d["rows"]))
    cells: dict[tuple[str, float], dict[str, float]] = {}
    for r in d["rows"]:
        cells.setdefault((r["attack"], r["fraction"]), {})[r["aggregator"]] = r["accuracy"]
    out = [_row(["attack", "attackers", *aggs]), _row(["---", "---:", *["---:"] * len(aggs)])]
    for (attack, frac), acc in cells.items():
        out.append(
            _row([_ATTACKS.get(attack, attack), f"{frac:.0%}", *[f"{acc.get(a, float('nan')):.4f}" for a in aggs]])
        )
    return "\n".join(out)


def fl_fairness(load: Load) -> str:
    """The spread of client accuracies under FedAvg and q-FedAvg."""
    d = load("fl_fairness")
    out = [
        _row(["strategy", "q", "local_lr (1/L)", "mean client acc", "std", "worst 10%", "best 10%", "global test acc"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for r in d["rows"]:
        q = f"{r['q']:g}" if r["strategy"] != "fedavg" else "-"
        lr = f"{r['local_lr']:g}" if r["local_lr"] is not None else "-"
        out.append(
            _row(
                [r["strategy"], q, lr, *[f"{r[k]:.4f}" for k in ("mean", "std", "worst10", "best10", "test_accuracy")]]
            )
        )
    return "\n".join(out)


def personalization(load: Load) -> str:
    """Every personalization method on every dataset: accuracy, gains, users helped and hurt,
    device bytes and time per prediction."""
    d = load("personalization")
    out = [
        _row(
            [
                "dataset",
                "method",
                "weighted acc",
                "gain (pts)",
                "median gain",
                "improved",
                "hurt >= 1 pt",
                "unchanged",
                "bottom decile",
                "bytes / user (median)",
                "ms / prediction",
            ]
        ),
        _row(["---"] * 2 + ["---:"] * 9),
    ]
    for dataset, methods in d["results"].items():
        for m, r in methods.items():
            out.append(
                _row(
                    [
                        dataset,
                        f"**{m}**" if m == "memory" else m,
                        f"{r['weighted_mean_acc']:.2%}",
                        f"{100 * r['weighted_gain']:+.2f}",
                        f"{100 * r['median_gain']:+.2f}",
                        f"{r['improved_fraction']:.0%}",
                        f"{r['hurt_fraction']:.0%}",
                        f"{r['unchanged_fraction']:.0%}",
                        f"{r['bottom_decile_acc']:.2%}",
                        f"{r['bytes_per_user'] / 1e6:.2f} MB",
                        f"{r['ms_per_prediction']:.2f}",
                    ]
                )
            )
    return "\n".join(out) + "\n"
