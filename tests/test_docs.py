"""The documents a user reads stand on their own and say what the code does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def test_license_matches_pyproject() -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"] == "Apache-2.0"
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text and "APPENDIX: How to apply" in license_text


def test_design_notes_stand_on_their_own() -> None:
    notes = (ROOT / "docs/design-notes.md").read_text()
    assert not re.search(r"\bissues? \d", notes, re.IGNORECASE), "refers to issue numbers"
    assert "shared/" not in notes and "DESIGN.md" not in notes
    for target in re.findall(r"\]\(([^)#]+)\)", notes):  # relative links resolve
        if "://" not in target:
            assert (ROOT / "docs" / target).resolve().exists(), target


def test_samples_and_benchmarks_do_not_assume_a_venv_path() -> None:
    for path in [*ROOT.glob("samples/*.py"), *ROOT.glob("benchmarks/*.py")]:
        text = path.read_text()
        assert ".venv/bin/python samples" not in text and ".venv/bin/python benchmarks" not in text, path
        assert "the project's Python" in text, path


def test_readme_security_section() -> None:
    readme = (ROOT / "README.md").read_text()
    security = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    for phrase in ("forge frames as any sender", "Rotating the secret", "holds no key", "replay"):
        assert phrase in security, phrase
