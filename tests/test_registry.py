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


def test_an_unknown_name_without_a_close_match_points_at_the_listing_when_there_are_many():
    reg = Registry("model", listing="inpaintbench models list")
    for i in range(30):
        reg.register(f"net{i:02d}", i)
    with pytest.raises(InpaintbenchError) as err:
        reg.get("zzz")
    assert str(err.value) == "unknown model 'zzz'; `inpaintbench models list` lists all 30"
    few = Registry("colour")
    few.register("red", 1)
    with pytest.raises(InpaintbenchError, match="known: red$"):
        few.get("zzz")


def test_unknown_options_suggest_the_close_one():
    import inpaintbench as ib

    with pytest.raises(InpaintbenchError, match="has no option widht; did you mean width"):
        ib.create_model("cnn", widht=3)
    with pytest.raises(InpaintbenchError, match="unknown train option stpes; did you mean steps"):
        ib.train_model("cnn", "no-data", stpes=3)


def test_options_of_the_wrong_type_are_refused_with_the_field_type():
    import inpaintbench as ib

    # before, width="abc" reached nn.Conv2d and failed inside torch with "not all arguments converted"
    for value, shown in [("abc", "'abc'"), (True, "True"), (8.5, "8.5")]:
        with pytest.raises(InpaintbenchError, match=rf"option width must be an integer, got {shown}$"):
            ib.create_model("cnn-tiny", width=value)
    with pytest.raises(InpaintbenchError, match="option hole_weight must be a number, got 'six'"):
        ib.create_model("cnn-tiny", hole_weight="six")
    assert ib.create_model("cnn-tiny", width=8).config.width == 8  # a right type still passes
    assert ib.create_model("pconv-tiny", layers=5).config.layers == 5


def test_a_librarys_error_is_summed_up_by_its_first_sentence_cut_at_a_word():
    from inpaintbench._registry import error_summary

    torch_like = RuntimeError("\nPytorchStreamReader failed reading zip archive: failed finding central directory. "
                              "This is an internal miniz error. If you are seeing this error, ...\nmore")
    first = "PytorchStreamReader failed reading zip archive: failed finding central directory"
    assert error_summary(torch_like) == first
    long = error_summary(ValueError("word " * 100), limit=20)
    assert long == "word word word word ..." and len(long) <= 20 + 4
    assert error_summary(KeyError()) == "KeyError"  # no message: the type names it
