"""The README opens with the two commands a new user runs, and CI runs the second one verbatim."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_an_install_and_run_command_then_the_test_command():
    first, second = readme_commands()[:2]
    assert first.startswith("pip install ") and "lightning-stylegan " in first
    assert second.startswith("pip install ") and "pytest" in second
    text = (ROOT / "README.md").read_text()
    assert text.index(first) < text.index("## ")  # both come before any section


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci
