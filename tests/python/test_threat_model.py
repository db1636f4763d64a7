"""docs/threat-model.md names, for each threat, the test that shows its control. This keeps the
page true to the code: every test it names exists (a Python test function in its file, a
Hardhat test by its title), and every page it links is there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "threat-model.md"
PYTHON_REF = re.compile(r"`(test_\w+\.py)::(test_\w+)`")
HARDHAT_REF = re.compile(r'`(\w+\.test\.js): "([^"`]+)"`')
LINK = re.compile(r"\]\(([\w.-]+\.md)\)")


def _python_tests(file: Path) -> set[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_python_test_named_exists() -> None:
    refs = PYTHON_REF.findall(PAGE.read_text(encoding="utf-8"))
    assert len(refs) >= 60, "the page names the tests behind its controls"
    missing = []
    for file, name in refs:
        path = ROOT / "tests" / "python" / file
        if not path.is_file() or name not in _python_tests(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"docs/threat-model.md names tests that do not exist: {missing}"


def test_every_hardhat_test_named_exists() -> None:
    refs = HARDHAT_REF.findall(PAGE.read_text(encoding="utf-8"))
    assert len(refs) >= 5
    missing = []
    for file, title in refs:
        path = ROOT / "tests" / "contracts" / file
        if not path.is_file() or f'it("{title}"' not in path.read_text(encoding="utf-8"):
            missing.append(f'{file}: "{title}"')
    assert not missing, f"docs/threat-model.md names Hardhat tests that do not exist: {missing}"


def test_every_linked_page_exists_and_the_readme_lists_this_one() -> None:
    links = LINK.findall(PAGE.read_text(encoding="utf-8"))
    assert links and all((PAGE.parent / link).is_file() for link in links), links
    assert "threat-model.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_checks_catch_a_name_that_is_gone(tmp_path: Path) -> None:
    """The patterns see a reference to a test that does not exist (so the checks above can fail)."""
    text = '`test_node.py::test_no_such_test` and `RecordLedger.test.js: "no such title"`'
    [(file, name)] = PYTHON_REF.findall(text)
    assert name not in _python_tests(ROOT / "tests" / "python" / file)
    [(js, title)] = HARDHAT_REF.findall(text)
    assert f'it("{title}"' not in (ROOT / "tests" / "contracts" / js).read_text(encoding="utf-8")
