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
