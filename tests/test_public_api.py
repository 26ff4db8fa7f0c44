"""The curated public API: the paradigm entry points at the top, the federated protections in
``interlearn.federated.protections``, a short ``interlearn.federated``, and the module-name clash resolved as the package docstring says."""

import importlib
import types

import interlearn
import interlearn.federated as fl
import interlearn.federated.protections as protections
from interlearn.federated.strategies import AGGREGATORS


def test_every_exported_name_exists():
    assert all(hasattr(interlearn, n) for n in interlearn.__all__)
    assert all(hasattr(fl, n) for n in fl.__all__)


def test_paradigm_entry_points_are_functions_and_their_modules_stay_importable():
    for name in ("transfer", "finetune", "distill", "advise"):
        fn = getattr(interlearn, name)
        assert callable(fn) and not isinstance(fn, types.ModuleType) and fn.__name__ == name
        module = importlib.import_module(f"interlearn.{name}")
        assert isinstance(module, types.ModuleType) and getattr(module, name) is fn
    from interlearn.transfer import TransferResult, cut_points  # noqa: F401  (names of the module)

    assert interlearn.simulate is fl.simulate and callable(interlearn.train_multitask)


def test_federated_exports_what_a_user_needs_first_and_the_rest_from_subpackages():
    assert len(fl.__all__) <= 32
    assert {"simulate", "SimulationConfig", "Population", "partition", "LocalSGD", "get_strategy"} <= set(fl.__all__)
    for sub in ("server", "client", "engines", "strategies", "protections", "personalization"):
        module = importlib.import_module(f"interlearn.federated.{sub}")
        assert module.__all__ and all(hasattr(module, n) for n in module.__all__ if n != "SecureAggregation")


def test_federated_exports_the_protections():
    for name in (
        "ClipUpdates",
        "GaussianNoise",
        "PrivacyAccountant",
        "dp_fedavg_steps",
        "dp_noise",
        "DPSGDClientUpdate",
        "CanaryAudit",
        "ValidateUpdates",
        "CompressUpdates",
        "SecureAggregation",
        "Median",
        "TrimmedMean",
        "Krum",
        "NormBound",
        "Bulyan",
    ):
        assert name in protections.__all__, name
        assert isinstance(getattr(protections, name), type) or callable(getattr(protections, name))
    assert set(AGGREGATORS.names()) >= {
        "mean",
        "median",
        "trimmed_mean",
        "krum",
        "multi_krum",
        "norm_bound",
        "bulyan",
    }
