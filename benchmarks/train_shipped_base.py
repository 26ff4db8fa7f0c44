"""Train the base that ships inside interlearn: ``mnist-optdigits-cnn`` (see interlearn.shipped).

MNIST's 60,000 training images are turned into the 8x8 format of scikit-learn's digits
(:func:`interlearn.data.optdigits.to_optdigits`: bounding-box crop, scale into 32x32 keeping the
aspect ratio, binarize, count 4x4 blocks), and the small CNN learns the ten digits from them.
The script writes the weights (safetensors) and the model card beside them, with the measured
accuracies and the file's SHA-256; put that SHA-256 into ``interlearn.shipped.SHIPPED``.

Usage:
    python benchmarks/train_shipped_base.py --data-dir ../shared/data --out src/interlearn/weights
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from safetensors.torch import save_file

from interlearn.config import FitConfig
from interlearn.data import TensorData, load_digits, load_mnist
from interlearn.data.optdigits import to_optdigits
from interlearn.models.small_cnn import small_cnn
from interlearn.shipped import file_sha256
from interlearn.tasks import classification
from interlearn.training import evaluate, fit

NAME = "mnist-optdigits-cnn"
# The recipe; the model card repeats it and tests/test_shipped.py checks that the two agree.
RECIPE: dict[str, Any] = {
    "data": "MNIST train (60,000 images), to_optdigits(threshold=0.3)",
    "train_images": 60000,
    "ink_threshold": 0.3,
    "architecture": "small_cnn(10, image_size=8, channels=(32, 64), hidden=256)",
    "channels": [32, 64],
    "hidden": 256,
    "epochs": 3,
    "batch_size": 64,
    "optimizer": "adamw",
    "lr": 0.002,
    "schedule": "cosine",
    "weight_decay": 0.0,
    "seed": 0,
}

CARD = """# Model card: `{name}`

A small CNN pretrained on MNIST turned into the 8x8 format of scikit-learn's digits, shipped
inside interlearn so that transfer learning and fine-tuning can start from a real pretrained
base on the embedded data, offline.

```python
from interlearn.pretrained import load_pretrained

base = load_pretrained("interlearn:{name}")  # nn.Sequential conv1 ... fc2, checksum verified
```

## Data
- **Source:** MNIST training set, 60,000 images (LeCun, Cortes & Burges), read with
  `interlearn.data.load_mnist`. License: **CC BY-SA 3.0** (as distributed by Keras/TensorFlow);
  these weights are derived from it and are shared under the same terms.
- **Format:** each digit is cropped to the bounding box of its ink (pixels > {threshold}), scaled
  into 32x32 keeping its aspect ratio, binarized at {threshold} and counted in 4x4 blocks
  (`interlearn.data.optdigits.to_optdigits`): the format of the UCI optdigits set that
  scikit-learn's `load_digits` embeds (values 0-16, divided by 16).
- The embedded digits (a different set of writers, preprocessed by NIST's own programs) are
  **not** used for training: every accuracy on them below is zero-shot.

## Recipe
Trained by `benchmarks/train_shipped_base.py` (interlearn `fit`):

```json
{recipe}
```

## Accuracy
| data | images | accuracy |
|---|---:|---:|
| MNIST test set in the 8x8 format | 10,000 | {mnist:.4f} |
| scikit-learn digits, all (zero-shot) | 1,797 | {digits_all:.4f} |
| scikit-learn digits, the tour's test split (`load_digits(seed=0)`, zero-shot) | {n_test} | {digits_test:.4f} |

Training took {seconds:.0f} s (wall) on one CPU thread of a shared machine ({machine}, torch {torch}).

## File
- `{filename}`: safetensors, {bytes:,} bytes, {params:,} parameters (float32).
- **SHA-256:** `{sha256}`

## Intended use and limits
A base for the tour and the examples: transfer (a new head on the frozen layers) and
fine-tuning on 8x8 digit-like images. It knows digits only, in this one format; it is not a
general image model.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("INTERLEARN_DATA"))
    ap.add_argument("--out", default="src/interlearn/weights", help="folder for the weights and the model card")
    ap.add_argument("--json", default=None, help="also write the accuracies, time and SHA-256 here")
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="600 images, one epoch, 1,000 test images: checks the script runs (not the shipped recipe)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    r = {**RECIPE, "train_images": 600, "epochs": 1} if args.smoke else RECIPE
    train, test = load_mnist("train", args.data_dir), load_mnist("test", args.data_dir)
    if args.smoke:
        test = TensorData(test.x[:1000], test.y[:1000])
    x = to_optdigits(train.x[: r["train_images"]], r["ink_threshold"])
    train8 = TensorData(x, train.y[: r["train_images"]])
    test8 = TensorData(to_optdigits(test.x, r["ink_threshold"]), test.y)
    torch.manual_seed(r["seed"])  # the initial weights
    model = small_cnn(10, image_size=8, channels=tuple(r["channels"]), hidden=r["hidden"])
    task = classification(10)
    cfg = FitConfig(
        epochs=r["epochs"],
        batch_size=r["batch_size"],
        optimizer=r["optimizer"],
        lr=r["lr"],
        schedule=r["schedule"],
        weight_decay=r["weight_decay"],
        seed=r["seed"],
        device="cpu",
        amp=False,
    )
    t0 = time.perf_counter()
    fit(model, train8, task, cfg)
    seconds = time.perf_counter() - t0
    model.eval()
    d_train, d_test = load_digits(seed=0, image=True)
    digits_all = TensorData(torch.cat([d_train.x, d_test.x]), torch.cat([d_train.y, d_test.y]))
    acc = {
        "mnist": evaluate(model, test8, task)["accuracy"],
        "digits_all": evaluate(model, digits_all, task)["accuracy"],
        "digits_test": evaluate(model, d_test, task)["accuracy"],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{NAME}.safetensors"
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights))
    sha = file_sha256(weights)
    card = CARD.format(
        name=NAME,
        threshold=r["ink_threshold"],
        recipe=json.dumps(r, indent=2),
        n_test=len(d_test),
        seconds=seconds,
        machine=platform.machine(),
        torch=torch.__version__,
        filename=weights.name,
        bytes=weights.stat().st_size,
        params=sum(p.numel() for p in model.parameters()),
        sha256=sha,
        **acc,
    )
    (out / f"{NAME}.md").write_text(card)
    result = {**acc, "seconds": round(seconds, 1), "sha256": sha, "bytes": weights.stat().st_size, "recipe": r}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
