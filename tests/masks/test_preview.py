from PIL import Image

from inpaintbench.masks import preview_masks


def test_preview_writes_one_png_per_level(tmp_path):
    paths = preview_masks(["L1", "L3"], out=tmp_path, size=64, count=40)
    assert [p.name for p in paths] == ["L1.png", "L3.png"]
    with Image.open(paths[1]) as im:
        assert im.width > 400 and im.height > 300


def test_the_methods_table_travels_from_the_benchmark_into_the_masks_readme(tmp_path):
    from inpaintbench.masks.preview import METHODS_BEGIN, METHODS_END, methods_block, replace_methods_block

    assert "No measured table yet" in methods_block(tmp_path / "missing.md")[1]
    bench = tmp_path / "ladder.md"
    bench.write_text(f"# title\n{METHODS_BEGIN}\n| a | b |\n{METHODS_END}\ntail\n")
    block = methods_block(bench)
    assert block == [METHODS_BEGIN, "| a | b |", METHODS_END]
    readme = tmp_path / "README.md"
    readme.write_text("before\n" + "\n".join(methods_block(tmp_path / "missing.md")) + "\nafter\n")
    assert replace_methods_block(readme, block)
    assert readme.read_text() == f"before\n{METHODS_BEGIN}\n| a | b |\n{METHODS_END}\nafter\n"
    # benchmarks/ladder.py's block ends with a blank line: the README gets the same bytes as `masks readme` writes
    assert replace_methods_block(readme, [METHODS_BEGIN, "", "| a | b |", "", METHODS_END])
    assert readme.read_text() == f"before\n{METHODS_BEGIN}\n| a | b |\n{METHODS_END}\nafter\n"
    assert not replace_methods_block(tmp_path / "missing.md", block)
