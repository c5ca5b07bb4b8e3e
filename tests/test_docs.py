"""Citations in the code point at sections that exist in the project's own notes (docs/*.md)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUM = r"\d+(?:\.\d+)?"
CITATION = re.compile(rf"docs/(\w+)\.md((?:\s*(?:,|and|-|–)?\s*§{NUM})+)")
# citations of the private spec notes (by section number, by file name, or by their shared/ path): not in the repo
SPEC = re.compile(r"(?i)\bspec\s+(?:\d|§|stylegan2\.md|slideflow)|shared/" + "spec")


def sources() -> list[Path]:
    """Files whose comments and docstrings may cite the notes (the notes too: they cite each other)."""
    files = [p for d in ("synthhist", "tests", "bench") for p in (ROOT / d).rglob("*.py")]
    files += list(ROOT.glob("*.py")) + list((ROOT / "docs").glob("*.md"))
    files += [ROOT / "README.md", ROOT / "experiment" / "README.md"]
    return [p for p in files if p.is_file() and p.resolve() != Path(__file__).resolve()]


def sections(note: Path) -> set[str]:
    """Numbers of the numbered headings ('2', '2.4') of a note."""
    return set(re.findall(rf"^#{{2,4}}\s+({NUM})\.?\s", note.read_text(encoding="utf-8"), re.M))


def test_every_docs_citation_names_an_existing_section():
    bad, n = [], 0
    for path in sources():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in CITATION.finditer(line):
                note = ROOT / "docs" / f"{m.group(1)}.md"
                known = sections(note) if note.is_file() else set()
                for sec in re.findall(NUM, m.group(2)):
                    n += 1
                    if sec not in known:
                        bad.append(f"{path.relative_to(ROOT)}:{lineno}: docs/{m.group(1)}.md §{sec}")
    assert not bad, "citations of missing sections:\n" + "\n".join(bad)
    assert n > 20  # the package does cite the notes


def test_nothing_cites_the_private_spec():
    bad = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sources()
           for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if SPEC.search(line)]
    assert not bad, "cite docs/stylegan2.md or docs/slideflow.md instead:\n" + "\n".join(bad)


def test_docs_index_lists_every_note():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for note in sorted((ROOT / "docs").glob("*.md")):
        if note.name != "README.md":
            assert f"({note.name})" in index, note.name
    for note in ("stylegan2.md", "slideflow.md"):
        assert sections(ROOT / "docs" / note) >= {"0", "1", "1.1", "2", "2.1"}, note
