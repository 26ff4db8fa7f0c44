"""interlearn: models that learn from other models, tasks and devices.

Transfer learning, fine-tuning (incl. LoRA through PEFT), multi-task learning, federated
learning and knowledge distillation for any PyTorch model, on one training loop.

The curated public API is re-exported here; subpackages (``interlearn.federated``,
``interlearn.multitask``, ``interlearn.data``) expose their own.
"""

from interlearn import surgery
from interlearn.checkpoint import load_checkpoint, save_checkpoint
from interlearn.config import FitConfig
from interlearn.data import TensorData, from_arrays, load_csv, load_digits, load_mnist, load_npz
from interlearn.distill import kd_loss
from interlearn.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InterlearnError,
    RoundSkipped,
    ShapeError,
    TrainingDivergedError,
    UpdateRejected,
)
from interlearn.finetune import FinetuneSpec
from interlearn.lora import LoraSpec
from interlearn.pretrained import load_pretrained
from interlearn.surgery import count_params, freeze, param_groups, replace_last, replace_module, trainable_table, unfreeze
from interlearn.tasks import Task, classification, multilabel, regression
from interlearn.tracking import TrackingConfig
from interlearn.training import FitResult, evaluate, fit
from interlearn.transfer import TransferResult
from interlearn.types import Params

# The paradigm entry points live in their modules (``interlearn.transfer.transfer``,
# ``interlearn.finetune.finetune``, ``interlearn.distill.distill``,
# ``interlearn.multitask``, ``interlearn.federated``): re-exporting same-named functions here
# would shadow the modules themselves.

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # training
    "fit",
    "evaluate",
    "FitConfig",
    "FitResult",
    "TrackingConfig",
    # tasks and data
    "Task",
    "classification",
    "regression",
    "multilabel",
    "TensorData",
    "from_arrays",
    "load_npz",
    "load_csv",
    "load_digits",
    "load_mnist",
    # surgery
    "surgery",
    "freeze",
    "unfreeze",
    "replace_module",
    "replace_last",
    "param_groups",
    "count_params",
    "trainable_table",
    # paradigms (configs and results; entry points are in their modules)
    "TransferResult",
    "FinetuneSpec",
    "LoraSpec",
    "kd_loss",
    "load_pretrained",
    # checkpoints
    "save_checkpoint",
    "load_checkpoint",
    "Params",
    # errors
    "InterlearnError",
    "ConfigError",
    "ShapeError",
    "DataError",
    "CheckpointError",
    "TrainingDivergedError",
    "UpdateRejected",
    "RoundSkipped",
]
