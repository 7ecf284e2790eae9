"""The product carries its own documentation: docs/ covers every domain, and no file points
at notes outside the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from genda.data.domain import domain_names
from genda.data.embedded import BUILDERS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THIS = Path(__file__).resolve()
FORBIDDEN = (b"../shared", b"PROTOCOLS.md", b"SOURCES.md", b"DESIGN.md", b"STYLE.md")
NEW_DOMAINS = ("faces_synthetic", "usps_mfeat")  # checked by name even before they are registered


def repo_files() -> list[Path]:
    """Tracked files plus untracked ones git does not ignore (new files count before a commit)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"not a git checkout ({e})")
    paths = [ROOT / p.decode() for p in out.split(b"\0") if p]
    return [p for p in paths if p.is_file() and not p.is_symlink() and p.resolve() != THIS]


def test_no_file_points_outside_the_repository():
    hits = []
    for path in repo_files():
        data = path.read_bytes()
        hits += [f"{path.relative_to(ROOT)}: {s.decode()}" for s in FORBIDDEN if s in data]
    assert not hits, "point at docs/protocols.md or docs/data.md instead:\n" + "\n".join(hits)


def test_the_scan_sees_the_docs_and_the_code():
    names = {p.relative_to(ROOT).as_posix() for p in repo_files()}
    assert {"docs/protocols.md", "docs/data.md", "README.md", "src/genda/report/build.py"} <= names


@pytest.mark.parametrize("name", ["protocols.md", "data.md"])
def test_docs_exist_and_are_linked_from_the_readme(name):
    assert (DOCS / name).is_file(), f"docs/{name} is missing"
    assert f"docs/{name}" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_data_doc_names_every_domain():
    text = (DOCS / "data.md").read_text(encoding="utf-8")
    names = set(domain_names()) | set(BUILDERS) | set(NEW_DOMAINS)
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"docs/data.md does not describe the domain(s) {missing}"


def test_protocols_doc_covers_every_report_item():
    text = (DOCS / "protocols.md").read_text(encoding="utf-8")
    for item in (
        "FID",
        "KID",
        "face score",
        "HOG",
        "MTCNN",
        "DDPM",
        "DDIM",
        "DANN",
        "ADDA",
        "0–255",
        "1,000 generated images",
    ):
        assert item in text, f"docs/protocols.md does not cover {item!r}"
