"""Fine-tune a pretrained model on a new task with a few labels, and see what it forgets.

Pretrain an MLP on digits 0-4 of the embedded 8x8 digits, swap its head for digits 5-9, then
compare fine-tuning strategies (full, last layer only, ULMFiT-style discriminative learning
rates, LoRA through PEFT) on 5 labels per class; save the LoRA adapter alone and merge it for
export.

    python examples/finetune.py [--pretrain-epochs 20] [--epochs 60] [--out runs/example-finetune]
"""

import argparse
import copy
from pathlib import Path

import torch
from torch import nn

from interlearn import FitConfig, classification, evaluate, fit, replace_module
from interlearn.finetune import FinetuneSpec, finetune
from interlearn.forgetting import forgetting_table, measure_forgetting
from interlearn.lora import LoraSpec, load_adapter, merge_lora, save_adapter
from interlearn.recipes.finetune import DataConfig, split_classes

ap = argparse.ArgumentParser(description="fine-tuning strategies on digits 5-9 from a 0-4 base")
ap.add_argument("--pretrain-epochs", type=int, default=20)
ap.add_argument("--epochs", type=int, default=60)
ap.add_argument("--out", default="runs/example-finetune")
args = ap.parse_args()
torch.set_num_threads(1)
data = split_classes(DataConfig(labels_per_class=5))  # source: 0-4 (all labels), target: 5-9 (5 each)
task = classification(5)

torch.manual_seed(0)
base = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 5))
fit(base, data["source"], task, FitConfig(epochs=args.pretrain_epochs, batch_size=64, lr=3e-3, progress=False))
print(f"pretrained on 0-4: {evaluate(base, data['source_test'], task)['accuracy']:.3f}")

strategies = {
    "full": FinetuneSpec("full"),
    "head only": FinetuneSpec("last_n", last_n=1),
    "discriminative": FinetuneSpec("discriminative", decay=1 / 2.6),
    "lora r=8": FinetuneSpec("lora", lora=LoraSpec(targets=("0", "2"), r=8, modules_to_save=("4",))),
}
reports, models = [], {}
for name, spec in strategies.items():
    model = copy.deepcopy(base)  # fine-tuning changes the model in place
    torch.manual_seed(1)
    replace_module(model, "4", nn.Linear(64, 5))  # a new head for digits 5-9
    result = finetune(
        model, data["target"], task, FitConfig(epochs=args.epochs, batch_size=16, lr=3e-3, progress=False), spec
    )
    models[name] = result.model
    reports.append(
        measure_forgetting(
            name, result.model, base, "4", data["target_test"], task, data["source_test"], task, result.trainable_params
        )
    )
print(forgetting_table(reports))

# LoRA: ship only the adapter (a few KB), reload it on a fresh copy of the base, merge for export.
path = save_adapter(models["lora r=8"], Path(args.out) / "lora.adapter.safetensors")
restored = load_adapter(copy.deepcopy(base), path)
exported = merge_lora(restored)
print(
    f"adapter file: {path} ({path.stat().st_size:,} bytes); merged model: {type(exported).__name__}, "
    f"accuracy {evaluate(exported, data['target_test'], task)['accuracy']:.3f}"
)
