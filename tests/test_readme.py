from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("\n", 1)[1].strip() for b in quick_start.split("```bash")[1:]]
    blocks = [b.split("```")[0].strip() for b in blocks]
    assert len(blocks) == 2
    assert blocks[1] == ci_command
    assert blocks[0].endswith("inpaintbench demo")


def test_the_demo_writes_under_50_mb_of_checkpoints():
    """The first README command trains the demo's networks; their stored weights (float32) stay under 50 MB."""
    from inpaintbench.benchmarks.suite import load_suite
    from inpaintbench.models import create_model

    suite = load_suite(ROOT / "benchmarks" / "demo.toml")
    size = suite.dataset.build["size"]
    stored = 0
    for run in suite.models:
        if run.train is None:
            continue
        fields = create_model(run.name).config.__dataclass_fields__
        model = create_model(run.name, **run.options, **({"size": size} if "size" in fields else {}))
        stored += 4 * sum(t.numel() for t in model.state_dict().values())  # float32: an upper bound of the store's
    assert 0 < stored < 50e6, f"{stored / 1e6:.0f} MB"


def test_the_readme_model_table_lists_every_registered_model():
    import re

    import inpaintbench as ib

    models = (ROOT / "README.md").read_text().split("\n## Models\n", 1)[1].split("\n#", 1)[0]
    first_cells = [line.split("|")[1] for line in models.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}
    registered = {name for name in ib.list_models() if not name.endswith("-tiny")}
    assert registered - listed == set(), "add these to README's Models table"
    assert listed - registered == set(), "README's Models table names models that are not registered"


def test_every_dotted_python_name_of_the_readme_resolves_after_a_plain_import():
    import re
    import subprocess
    import sys

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    names = sorted(set(re.findall(r"\bib\.([a-z_]+(?:\.[A-Za-z_0-9]+)+)", readme)))
    assert "datasets.read_info" in names and "models.checkpoints.LAYOUTS" in names
    # a fresh interpreter: in this one, other tests may already have imported the subpackages
    check = "import inpaintbench as ib\n" + "".join(f"ib.{name}\n" for name in names)
    subprocess.run([sys.executable, "-c", check], check=True, capture_output=True, timeout=120)
