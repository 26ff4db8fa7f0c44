"""Assemble BENCHMARKS.md from benchmarks/header.md and one section per benchmark.

    python benchmarks/assemble.py

Each section (benchmarks/sections/<name>.md) is written next to the run that produced its
numbers; this script only concatenates them in a fixed order.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["transfer", "feature_cache", "distill", "multitask", "mtl_overhead", "fl_speed", "fl_scale", "fl_mnist", "fl_privacy",
         "fl_robust", "fl_secagg", "fl_compress", "shakespeare", "keyboard_words", "femnist", "fl_engines", "fl_lora"]


def main() -> None:
    parts = [(HERE / "header.md").read_text().rstrip() + "\n"]
    parts += [(HERE / "sections" / f"{name}.md").read_text().strip() + "\n" for name in ORDER]
    (HERE.parent / "BENCHMARKS.md").write_text("\n\n".join(parts))
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
