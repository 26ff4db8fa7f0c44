"""LoRA fine-tuning through HF PEFT on any ``nn.Linear`` / ``nn.Conv2d`` chosen by name glob.

Hu et al. (2021), "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685: a
frozen weight ``W`` is adapted as ``W + (alpha / r) * B A`` with rank-``r`` factors ``A``, ``B``;
only ``A``, ``B`` (and any ``modules_to_save``, e.g. a new head) train.

We wrap PEFT (STYLE.md #9) rather than re-implement it: :func:`apply_lora` resolves globs to
exact module names (so a pattern that matches nothing is a ``ConfigError`` listing the closest
names instead of PEFT's silent partial match), then calls ``peft.get_peft_model``, which works
on any custom ``nn.Module``. Adapters are saved alone (a few KB) in safetensors with the spec in
the file's metadata, and :func:`merge_lora` folds them into the base weights for export.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from interlearn.errors import CheckpointError, ConfigError, closest
from interlearn.surgery import select_modules

__all__ = [
    "LORA_LAYERS",
    "LoraSpec",
    "lora_targets",
    "apply_lora",
    "is_lora",
    "save_adapter",
    "load_adapter",
    "merge_lora",
]

LORA_LAYERS = (nn.Linear, nn.Conv2d)
"""The layer types LoRA adapters are added to here."""
_META_KEY = "interlearn_lora"


@dataclass(frozen=True)
class LoraSpec:
    """Which layers get LoRA adapters, and how big they are.

    Attributes:
        targets: globs over module names (``"fc1"``, ``"encoder.*.attn.*"``, ``"conv*"``); a
            container's name selects every Linear/Conv2d inside it.
        r: adapter rank.
        alpha: scaling numerator (the update is scaled by ``alpha / r``).
        dropout: dropout on the adapter's input.
        modules_to_save: globs of modules trained in full alongside the adapters (a new head).
        bias: ``"none"``, ``"all"`` or ``"lora_only"`` (which biases also train).
    """

    targets: tuple[str, ...] = ("*",)
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    modules_to_save: tuple[str, ...] = ()
    bias: Literal["none", "all", "lora_only"] = "none"

    def __post_init__(self) -> None:
        if isinstance(self.targets, str) or not self.targets:
            raise ConfigError(
                f"targets={self.targets!r}: give a non-empty list of module-name globs, e.g. ['fc1', 'fc2']"
            )
        if self.r < 1:
            raise ConfigError(f"r={self.r}: the LoRA rank must be >= 1")
        if not self.alpha > 0:
            raise ConfigError(f"alpha={self.alpha}: must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")
        if self.bias not in ("none", "all", "lora_only"):
            raise ConfigError(f"bias={self.bias!r}: choose one of ['none', 'all', 'lora_only']")


def lora_targets(model: nn.Module, patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Exact names of the ``nn.Linear``/``nn.Conv2d`` modules matched by ``patterns``.

    Raises:
        ConfigError: a pattern matches no module (closest names listed), or matches only
            modules LoRA cannot adapt here (the adaptable names are listed).
    """
    modules = dict(model.named_modules())
    supported = [n for n, m in modules.items() if n and isinstance(m, LORA_LAYERS)]
    out: list[str] = []
    for pat in patterns:
        hit = [n for n in select_modules(model, pat) if isinstance(modules[n], LORA_LAYERS)]
        if not hit:
            raise ConfigError(
                f"LoRA target {pat!r} matches no nn.Linear/nn.Conv2d (it matches {[type(modules[n]).__name__ for n in select_modules(model, pat)][:5]}); "
                f"adaptable layers: {closest(pat, supported)}"
            )
        out += [n for n in hit if n not in out]
    return out


def is_lora(model: nn.Module) -> bool:
    """Whether ``model`` is a PEFT model (returned by :func:`apply_lora`)."""
    try:
        from peft import PeftModel  # optional dependency (interlearn[peft])
    except ImportError:  # without PEFT no model has adapters
        return False
    return isinstance(model, PeftModel)


def apply_lora(model: nn.Module, spec: LoraSpec) -> nn.Module:
    """Add LoRA adapters to the layers ``spec.targets`` selects; freeze everything else.

    The model is changed in place (PEFT swaps the targeted layers); keep a ``copy.deepcopy`` if
    you need the original. Train the returned model with :func:`interlearn.fit` as usual.

    Args:
        model: any ``nn.Module`` (not already a PEFT model).
        spec: targets, rank, scaling, dropout, fully trained modules.

    Returns:
        A ``peft.PeftModel`` whose forward is the model's forward; only adapters (and
        ``modules_to_save``) are trainable.

    Raises:
        ConfigError: a pattern that matches nothing, or a model that already has adapters.

    Example:
        >>> m = apply_lora(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), LoraSpec(targets=("0",), r=2))
        >>> sorted(n.split(".")[-3] for n, p in m.named_parameters() if p.requires_grad)
        ['lora_A', 'lora_B']
    """
    from peft import LoraConfig, get_peft_model

    if is_lora(model):
        raise ConfigError("the model already has LoRA adapters; merge_lora() it first or train the existing adapters")
    names = lora_targets(model, spec.targets)
    saved = select_modules(model, list(spec.modules_to_save)) if spec.modules_to_save else []
    saved = [n for n in saved if not any(n.startswith(s + ".") for s in saved)]  # outermost only
    overlap = sorted(set(names) & set(saved))
    if overlap:
        raise ConfigError(
            f"modules {overlap} are both LoRA targets and modules_to_save; a module is either adapted or trained in full"
        )
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,  # type: ignore[arg-type]  # PEFT annotates it int, but scales by lora_alpha / r in float
        lora_dropout=spec.dropout,
        bias=spec.bias,
        # An anchored regex of exact names: PEFT's list form also matches name *suffixes*
        # ("0" would catch "block.0"), which is not what the glob selected.
        target_modules="^(?:" + "|".join(re.escape(n) for n in names) + ")$",
        modules_to_save=saved or None,
    )
    peft_model = get_peft_model(model, config)
    inner = peft_model.get_base_model()
    injected = [n for n, m in inner.named_modules() if hasattr(m, "lora_A") and n in names]
    if len(injected) != len(names):
        raise ConfigError(
            f"PEFT adapted {len(injected)} of the {len(names)} selected layers ({sorted(set(names) - set(injected))} missing)"
        )
    # PEFT matches modules_to_save by name *suffix* ("2" also wraps "12"): refuse surprises.
    wrapped = [n for n, m in inner.named_modules() if type(m).__name__ == "ModulesToSaveWrapper"]
    if sorted(wrapped) != sorted(saved):
        raise ConfigError(
            f"modules_to_save {list(spec.modules_to_save)} made PEFT train {sorted(wrapped)} in full, not just {sorted(saved)}; use names that are not suffixes of other module names"
        )
    peft_model.__dict__["_interlearn_spec"] = spec  # kept for save_adapter (a plain attribute, copied with the model)
    return peft_model


def save_adapter(model: nn.Module, path: str | Path) -> Path:
    """Save only the adapter (and ``modules_to_save``) weights as safetensors; the spec goes in
    the file's metadata so :func:`load_adapter` can rebuild the adapters on a fresh base model.

    Raises:
        ConfigError: ``model`` has no LoRA adapters.
    """
    from peft import get_peft_model_state_dict

    if not is_lora(model):
        raise ConfigError("save_adapter needs a model returned by apply_lora(); this one has no adapters")
    spec = getattr(model, "_interlearn_spec", None)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in get_peft_model_state_dict(model).items()}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {_META_KEY: json.dumps(asdict(spec) if spec is not None else {})}
    save_file(tensors, str(p), metadata=meta)
    return p


def load_adapter(model: nn.Module, path: str | Path) -> nn.Module:
    """Load adapter weights saved by :func:`save_adapter`.

    Args:
        model: a model from :func:`apply_lora` with the same spec, or the plain base model
            (the adapters are then added from the spec stored in the file).
        path: the adapter file.

    Returns:
        The PEFT model holding the loaded adapters.

    Raises:
        CheckpointError: missing file, or adapter keys that do not fit the model.
    """
    from peft import set_peft_model_state_dict

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"adapter file not found: {p}")
    with safe_open(str(p), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118  (safetensors handles iterate keys())
    if not is_lora(model):
        raw: dict[str, Any] = json.loads(meta.get(_META_KEY, "{}"))
        if not raw:
            raise CheckpointError(
                f"{p} carries no LoRA spec; call apply_lora(model, spec) with the training spec first"
            )
        raw["targets"] = tuple(raw["targets"])
        raw["modules_to_save"] = tuple(raw.get("modules_to_save", ()))
        try:
            model = apply_lora(model, LoraSpec(**raw))
        except ConfigError as exc:
            raise CheckpointError(f"{p}: the adapter does not fit this model: {exc}") from exc
    expected = set(_adapter_keys(model))
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{p}: adapter keys do not match the model (missing {missing[:4]}, unexpected {unexpected[:4]}); was it saved from the same spec?"
        )
    for k, v in tensors.items():
        have = _adapter_keys(model)[k]
        if tuple(v.shape) != tuple(have.shape):
            raise CheckpointError(
                f"{p}: {k} has shape {tuple(v.shape)} but the model expects {tuple(have.shape)} (different rank or layer size)"
            )
    set_peft_model_state_dict(model, tensors)
    return model


def _adapter_keys(model: nn.Module) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights and return the plain model (for export).

    The result has the original architecture and module names, no PEFT dependency at inference
    and the same outputs (up to float rounding).

    Raises:
        ConfigError: ``model`` has no LoRA adapters.
    """
    from peft import PeftModel  # optional dependency (interlearn[peft])

    if not isinstance(model, PeftModel):
        raise ConfigError("merge_lora needs a model returned by apply_lora(); this one has no adapters")
    merged: nn.Module = model.merge_and_unload()
    return merged
