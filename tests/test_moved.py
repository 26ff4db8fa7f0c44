"""Moved modules: every old path still imports for one release, warns, and is the same module."""

import importlib
import sys
import warnings

import pytest

import interlearn.federated as fl
import interlearn.federated.personalization as personalization
import interlearn.federated.personalization.local as local


@pytest.mark.parametrize("old", sorted(fl.MOVED))
def test_an_old_path_imports_warns_and_is_the_identical_module(old):
    new = importlib.import_module(fl.MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=fl.MOVED[old].replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is new
    assert module.__name__ == fl.MOVED[old] and module.__spec__.name == fl.MOVED[old]


def test_a_submodule_under_an_old_package_is_the_identical_module():
    import interlearn.federated.protections.privacy.noise as new

    for name in ("interlearn.federated.privacy.noise", "interlearn.federated.privacy"):
        sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from interlearn.federated.privacy.noise import GaussianNoise
    assert GaussianNoise is new.GaussianNoise
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_the_personalization_module_became_a_package_with_the_same_names():
    # ``interlearn.federated.personalization`` is now the package; its names are the module's
    assert all(getattr(personalization, n) is getattr(local, n) for n in local.__all__)


def test_names_no_longer_at_the_top_are_found_in_their_subpackage():
    from interlearn.federated.protections import GaussianNoise

    assert not hasattr(fl, "GaussianNoise") and GaussianNoise.__name__ == "GaussianNoise"
