"""The curated public API: the paradigm entry points at the top, the federated protections in
``interlearn.federated``, and the module-name clash resolved as the package docstring says."""

import importlib
import types

import interlearn
import interlearn.federated as fl


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
        assert name in fl.__all__, name
        assert isinstance(getattr(fl, name), type) or callable(getattr(fl, name))
    assert set(fl.AGGREGATORS.names()) >= {
        "mean",
        "median",
        "trimmed_mean",
        "krum",
        "multi_krum",
        "norm_bound",
        "bulyan",
    }
