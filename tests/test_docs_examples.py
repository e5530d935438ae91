"""The code in README.md, docs/*.md and examples/ runs.

Every ```python block of a Markdown file is executed; the blocks of one file
run in order in one shared namespace, so a later block may use names an
earlier one defined. A block fenced as ```python no-run is a fragment and is
skipped. Each script in examples/ runs in a fresh interpreter and must exit
0 and print something.

The docs also restate two tables that live in the code (the warning codes and
the errors); the last tests keep them from drifting apart.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import loomcore

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def markdown_files() -> list[Path]:
    """README.md and every page in docs/, whichever exist now."""
    found = [ROOT / "README.md"] if (ROOT / "README.md").is_file() else []
    return found + sorted(DOCS.glob("*.md"))


def example_scripts() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.py"))


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of every runnable ```python block.

    Fences are tracked whatever their language, so a ```python example shown
    inside a longer ````markdown fence is not run. Line numbers are 1-based
    and point at the first line of code.
    """
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening["fence"]
        words = opening["info"].split()
        body_start = i + 1
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"]
            ):
                break
            i += 1
        body = lines[body_start:i]
        i += 1  # past the closing fence (or the end of an unclosed block)
        if words[:1] == ["python"] and "no-run" not in words[1:]:
            indent = len(opening["indent"])
            code = "\n".join(line[indent:] if line[:indent].isspace() else line for line in body)
            blocks.append((body_start + 1, code))
    return blocks


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", markdown_files(), ids=_rel)
def test_markdown_python_blocks_run(path: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    for line, code in python_blocks(path.read_text(encoding="utf-8")):
        # Padding with blank lines makes tracebacks point at the Markdown line.
        compiled = compile("\n" * (line - 1) + code, str(path), "exec")
        try:
            exec(compiled, namespace)
        except Exception as e:
            pytest.fail(f"{_rel(path)}:{line}: block failed: {type(e).__name__}: {e}")


@pytest.mark.parametrize("script", example_scripts(), ids=_rel)
def test_example_runs(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{_rel(script)} exited {done.returncode}:\n{done.stderr}"
    assert done.stdout.strip(), f"{_rel(script)} printed nothing"


# --------------------------------------------------------------------------- the parser itself


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nx = 1\n```\n", [(2, "x = 1")]),
        ("```python no-run\nx = 1\n```\n", []),
        ("```py\nx = 1\n```\n", []),
        ("```text\n```python\nx = 1\n```\n", []),
        ("````markdown\n```python\nx = 1\n```\n````\n```python\ny = 2\n```\n", [(7, "y = 2")]),
        ("intro\n\n```python\na = 1\n\nb = a\n```\n", [(4, "a = 1\n\nb = a")]),
        ("- item\n\n  ```python\n  z = 3\n  ```\n", [(4, "z = 3")]),
        ("~~~python\nw = 4\n~~~\n", [(2, "w = 4")]),
    ],
)
def test_python_blocks(text: str, expected: list[tuple[int, str]]) -> None:
    assert python_blocks(text) == expected


# --------------------------------------------------------------------------- tables kept in sync


def _page(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


def test_warning_table_matches_warning_codes() -> None:
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| ([^|]+?) \|$", _page("concepts.md"), re.M))
    assert rows == loomcore.WARNING_CODES


def test_error_table_matches_the_error_classes() -> None:
    row = re.compile(r"^\| `(\w+Error)` \| `?(\w+)`? \|", re.M)
    rows = dict(row.findall(_page("reference.md")))
    errors = {
        name: obj
        for name in loomcore.__all__
        if isinstance(obj := getattr(loomcore, name), type) and issubclass(obj, loomcore.LoomError)
    }
    assert set(rows) == set(errors)
    for name, cls in errors.items():
        builtins = [
            b.__name__
            for b in cls.__mro__
            if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
        ]
        assert rows[name] == (builtins[0] if builtins else "Exception"), name


def test_reference_names_every_public_name() -> None:
    page = _page("reference.md")
    if (DOCS / "documents.md").is_file():  # the document API may be detailed there
        page += (DOCS / "documents.md").read_text(encoding="utf-8")
    missing = [name for name in loomcore.__all__ if not re.search(rf"`{name}\b", page)]
    assert not missing


def _plain_signature(function: Callable[..., object]) -> str:
    """``name(a, *, b='') -> R``: parameters and defaults, return annotation as written."""
    signature = inspect.signature(function)
    parts: list[str] = []
    star = False
    for p in signature.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        default = "" if p.default is p.empty else f"={p.default!r}"
        parts.append(p.name + default)
    returns = signature.return_annotation
    arrow = "" if returns is signature.empty else f" -> {returns}"
    return f"{function.__name__}({', '.join(parts)}){arrow}"


def test_reference_gives_every_loom_method_signature() -> None:
    page = _page("reference.md")
    methods = [
        member
        for name, member in vars(loomcore.Loom).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]
    assert methods
    missing = [s for s in map(_plain_signature, methods) if f"`{s}`" not in page]
    assert not missing


def test_adapter_page_gives_every_store_method_signature() -> None:
    page = _page("storage-adapters.md").replace("\\|", "|")  # pipes escaped in tables
    methods = [
        member
        for name, member in vars(loomcore.Store).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]
    assert methods
    missing = [s for s in map(_plain_signature, methods) if f"`{s}`" not in page]
    assert not missing
