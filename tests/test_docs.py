"""The README and every page of docs/ stay true: their Python blocks run as written (one namespace
per page, in order), the blocks shown from examples/ are the example files' own code, every
``nas-ray`` command line parses with the CLI, and every relative link points at a file and heading
that exist."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
IDS = [os.fspath(p.relative_to(ROOT)) for p in PAGES]


def blocks(page: Path, lang: str) -> list[tuple[str, str]]:
    """``(block, the 200 characters before it)`` for each fenced block of ``lang``."""
    text = page.read_text()
    return [(m.group(1), text[max(0, m.start() - 200) : m.start()])
            for m in re.finditer(rf"```{lang}\n(.*?)```", text, flags=re.S)]


def shown_from_examples(context: str) -> bool:
    return "examples/" in context


def test_there_are_pages() -> None:
    assert len(RUNNABLE) >= 6  # the pages with code of their own
    names = {p.name for p in PAGES}
    for page in ("search.md", "spaces.md", "evaluators.md", "searchers.md", "baselines.md", "graphpnas.md",
                 "graph-vaes.md", "nasgem.md", "cluster.md", "benchmarks.md"):
        assert page in names


def own_python_blocks(page: Path) -> list[str]:
    """The page's Python blocks that are its own (not shown from examples/)."""
    return [b for b, context in blocks(page, "python") if not shown_from_examples(context)]


RUNNABLE = [p for p in PAGES if own_python_blocks(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[os.fspath(p.relative_to(ROOT)) for p in RUNNABLE])
def test_python_blocks_run(page: Path, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = own_python_blocks(page)
    monkeypatch.chdir(tmp_path)  # blocks write results/ where they run
    monkeypatch.setenv("NAS_RAY_DATA", os.fspath(data_dir))
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for block in code:
        exec(compile(block.replace('"../shared/data"', repr(os.fspath(data_dir))), str(page), "exec"), namespace)


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_blocks_from_examples_are_the_example_files(page: Path) -> None:
    sources = [p.read_text() for p in (ROOT / "examples").rglob("*.py")]
    for block, context in blocks(page, "python"):
        if shown_from_examples(context):
            assert any(block.strip() in src for src in sources), f"{page.name}: {block[:80]!r} is not in examples/"


def command_lines(page: Path) -> list[str]:
    """Every ``nas-ray ...`` command of the page's bash blocks (continuations joined, comments cut)."""
    out = []
    for block, _ in blocks(page, "bash"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            for part in line.split(";"):
                part = part.strip()
                if part.startswith("nas-ray "):
                    out.append(part)
    return out


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_command_lines_parse(page: Path) -> None:
    from nas_ray.cli import UsageError, build_parser

    parser = build_parser()
    for line in command_lines(page):
        argv = shlex.split(line)[1:]
        try:
            parser.parse_args(argv)
        except (SystemExit, UsageError) as exc:
            pytest.fail(f"{page.name}: `{line}` does not parse ({exc})")


def test_a_bad_command_line_is_caught() -> None:
    from nas_ray.cli import UsageError, build_parser

    with pytest.raises((SystemExit, UsageError)):
        build_parser().parse_args(["search", "--no-such-flag"])
    assert command_lines(ROOT / "README.md"), 'the README quick start has nas-ray commands'


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_links_resolve(page: Path) -> None:
    text = page.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: link to missing {target}"
        if anchor and file.suffix == ".md":
            headings = {slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)}
            assert anchor in headings, f"{page.name}: no heading #{anchor} in {file.name}"


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")
