"""Pretrained bases for transfer learning: a given module, a local file, a shipped base, timm or
Hugging Face names.

:func:`load_pretrained` returns an ``nn.Sequential`` that :func:`interlearn.transfer.transfer`
can cut. Ecosystem models are wrapped, not re-implemented (STYLE.md #9): timm's
``create_model(name, pretrained=True, num_classes=0)`` gives a pooled feature extractor, and a
Hugging Face ``AutoModel`` encoder is mean-pooled over its non-padding tokens (as
sentence-transformers does). Neither can download on an offline machine: pass a local weights
file (timm: ``weights=``) or a local model folder (``"hf:/path/to/folder"``). The bases that ship
inside interlearn (``"interlearn:mnist-optdigits-cnn"``, :mod:`interlearn.shipped`) load offline.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from interlearn.errors import CheckpointError, ConfigError
from interlearn.shipped import SHIPPED, load_shipped

__all__ = ["load_pretrained", "HFEncoder"]

_FORMS = (
    f"an nn.Module, 'interlearn:<shipped base>' ({', '.join(sorted(SHIPPED))}), 'timm:<model name>', "
    "'hf:<model id or local folder>', or a local .pt/.pth/.safetensors file"
)


class HFEncoder(nn.Module):
    """A Hugging Face encoder as a feature extractor: token ids (N, T) -> mean-pooled (N, hidden)."""

    def __init__(self, model: nn.Module, pad_token_id: int = 0) -> None:
        super().__init__()
        self.model, self.pad_token_id = model, pad_token_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_token_id).long()
        hidden = self.model(input_ids=input_ids.long(), attention_mask=mask).last_hidden_state  # (N, T, H)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _timm(name: str, weights: str | Path | None) -> nn.Module:
    try:
        import timm
    except ImportError as exc:
        raise ConfigError(
            f"'timm:{name}' needs the timm package: pip install timm (it also installs torchvision)"
        ) from exc
    kwargs = {"pretrained_cfg_overlay": {"file": str(weights)}} if weights is not None else {}
    try:
        return timm.create_model(name, pretrained=True, num_classes=0, **kwargs)
    except Exception as exc:  # timm raises RuntimeError/OSError/HF hub errors when it cannot fetch weights
        raise ConfigError(
            f"timm could not create pretrained {name!r} ({type(exc).__name__}: {exc}); on a machine without internet pass "
            "weights='/path/to/model.safetensors' (a file downloaded elsewhere)"
        ) from exc


def _hf(name: str) -> nn.Module:
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
        raise ConfigError(
            f"'hf:{name}': no such local model folder; give a folder with config.json and the weights, or a hub id"
        )
    name = str(Path(name).expanduser()) if name.startswith("~") else name
    try:
        from transformers import AutoConfig, AutoModel
    except ImportError as exc:
        raise ConfigError(f"'hf:{name}' needs the transformers package: pip install transformers") from exc
    local = Path(name).is_dir()
    try:
        config = AutoConfig.from_pretrained(name, local_files_only=local)
        model = AutoModel.from_pretrained(name, local_files_only=local)
    except Exception as exc:  # OSError / hub errors when the files are neither local nor downloadable
        raise ConfigError(
            f"transformers could not load {name!r} ({type(exc).__name__}: {exc}); on a machine without internet pass "
            "'hf:/path/to/a/local/model/folder' (with config.json and the weights)"
        ) from exc
    return HFEncoder(model, pad_token_id=getattr(config, "pad_token_id", None) or 0)


def _file(path: Path, architecture: nn.Module | None) -> nn.Module:
    if not path.is_file():
        raise ConfigError(f"pretrained file not found: {path}; expected {_FORMS}")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    elif path.suffix in (".pt", ".pth"):
        # weights_only=False unpickles arbitrary objects: only load files you trust.
        obj = torch.load(path, map_location="cpu", weights_only=architecture is not None)
        if isinstance(obj, nn.Module):
            return obj
        state = obj
    else:
        raise ConfigError(
            f"{path}: unknown file type {path.suffix!r}; use .pt/.pth (a saved module or state dict) or .safetensors"
        )
    if architecture is None:
        raise ConfigError(
            f"{path} holds a state dict: pass architecture=<an nn.Module of the same shape> to load it into"
        )
    try:
        architecture.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the given architecture: {exc}") from exc
    return architecture


def load_pretrained(
    spec: str | Path | nn.Module, *, weights: str | Path | None = None, architecture: nn.Module | None = None
) -> nn.Sequential:
    """A pretrained base as an ``nn.Sequential`` ready for :func:`interlearn.transfer.transfer`.

    Args:
        spec: an ``nn.Module`` (returned as is when sequential, else wrapped as its only layer);
            ``"interlearn:<name>"`` (a base shipped in the package, :data:`interlearn.shipped.SHIPPED`,
            with its classifier; checksum verified);
            ``"timm:<name>"`` (a timm model without its classifier); ``"hf:<id or folder>"`` (a
            Hugging Face encoder, mean-pooled); or a local ``.pt``/``.pth``/``.safetensors`` file.
        weights: for timm, a local weights file instead of downloading.
        architecture: for a state-dict file, the module to load it into.

    Returns:
        ``nn.Sequential``; a wrapped feature extractor is its single layer named ``backbone``,
        so ``cut=1`` keeps it whole and trains a new linear head on its features.

    Raises:
        ConfigError: an unknown form or shipped name, a missing package or file, or weights that
            cannot be fetched.
        CheckpointError: a state dict that does not fit ``architecture``, or a shipped file
            whose checksum is wrong.
    """
    if isinstance(spec, nn.Module):
        module = spec
    elif isinstance(spec, str) and spec.startswith("interlearn:"):
        module = load_shipped(spec[len("interlearn:") :])
    elif isinstance(spec, str) and spec.startswith("timm:"):
        module = _timm(spec[5:], weights)
    elif isinstance(spec, str) and spec.startswith("hf:"):
        module = _hf(spec[3:])
    elif isinstance(spec, (str, Path)):
        module = _file(Path(spec), architecture)
    else:
        raise ConfigError(f"pretrained={spec!r}: expected {_FORMS}")
    return module if isinstance(module, nn.Sequential) else nn.Sequential(OrderedDict(backbone=module))
