import pytest

from aigbench.registry import Registry


def make():
    reg = Registry("TEST")

    @reg.register_module()
    class resnet:  # noqa: N801
        """A ResNet."""

    @reg.register_module("cnnspot")
    class Spot:
        pass

    @reg.register_module()
    class univfd:  # noqa: N801
        pass

    return reg, resnet, Spot


def test_register_and_get_by_class_name_or_alias():
    reg, resnet, spot = make()
    assert reg.get("resnet") is resnet
    assert reg.get("cnnspot") is spot
    assert "Spot" not in reg
    assert reg.get("CNNSpot") is spot  # case-insensitive fallback


def test_unknown_name_suggests_closest():
    reg, *_ = make()
    with pytest.raises(KeyError, match="Did you mean 'resnet'"):
        reg.get("resnt")


def test_unknown_name_without_close_match_lists_all():
    reg, *_ = make()
    with pytest.raises(KeyError, match="Registered: cnnspot, resnet, univfd"):
        reg.get("zzzzzz")


def test_list_wildcards_include_exclude():
    reg, *_ = make()
    assert reg.list() == ["cnnspot", "resnet", "univfd"]
    assert reg.list("*spot*") == ["cnnspot"]
    assert reg.list(["*spot*", "res*"]) == ["cnnspot", "resnet"]
    assert reg.list("*", exclude="*n*") == []
    assert reg.list("*", exclude="c*") == ["resnet", "univfd"]


def test_duplicate_name_raises_unless_forced():
    reg, *_ = make()

    class Other:
        pass

    with pytest.raises(KeyError, match="already registered"):
        reg.register_module("resnet")(Other)
    reg.register_module("resnet", force=True)(Other)
    assert reg.get("resnet") is Other


def test_register_module_without_parentheses_is_a_clear_error():
    reg = Registry("TEST")
    with pytest.raises(TypeError, match="with parentheses"):

        @reg.register_module
        class Foo:
            pass


def test_global_registries_find_builtin_entries():
    from aigbench.registry import DATASETS, PERTURBATIONS

    assert set(PERTURBATIONS.list()) >= {"blur", "noise", "jpeg"}
    assert set(DATASETS.list()) >= {"CIFAKE", "ForenSynths", "GenImage", "JsonList"}
