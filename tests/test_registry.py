import pytest

from inpaintbench._registry import InpaintbenchError, Registry


def test_register_get_and_list():
    reg = Registry("thing")
    reg.register("alpha", 1)
    reg.register("beta")(2)
    assert reg.get("alpha") == 1 and reg.get("beta") == 2
    assert reg.names("a*") == ["alpha"]
    assert list(reg) == ["alpha", "beta"] and len(reg) == 2 and "beta" in reg


def test_duplicate_and_bad_names_raise():
    reg = Registry("thing")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    with pytest.raises(ValueError, match="invalid"):
        reg.register("has space", 3)


def test_unknown_name_suggests_close_match():
    reg = Registry("model")
    reg.register("biharmonic", 1)
    with pytest.raises(InpaintbenchError, match="did you mean biharmonic"):
        reg.get("biharmonc")
