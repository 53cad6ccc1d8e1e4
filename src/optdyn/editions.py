"""Course editions of the chapters: a student edition without solutions, an instructor edition with all.

What counts as a solution, in a source notebook:

- a ``{solution}`` directive in a markdown cell (``:::{solution} label`` … ``:::`` or the backtick form),
  which the book renders as a hidden dropdown under its exercise;
- a code cell tagged ``solution``;
- the lines of a code cell between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, which become a stub that
  raises ``NotImplementedError`` for the student to replace.

The student edition removes all three and keeps everything else; the instructor edition is the chapter
as published, with its solutions. Both carry no outputs (the sources carry none).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

INSTALL_TAGS = ["remove-cell"]
SOLUTION_TAG = "solution"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError"
_COLON_SOLUTION = re.compile(r"^(?P<fence>:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.M | re.S)
_TICK_SOLUTION = re.compile(r"^(?P<fence>`{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.M | re.S)
_MARKED = re.compile(rf"^(?P<indent>[ \t]*){re.escape(BEGIN)}.*?^[ \t]*{re.escape(END)}[ \t]*$", re.M | re.S)


def install_source(repository: str) -> str:
    """A chapter's first code cell: install ``optdyn`` from ``repository`` where it is missing (Colab,
    Binder); a no-op where ``make`` installed it. Hidden in the book (tag ``remove-cell``)."""
    return (
        "# Colab, Binder: install the book's package from its repository (a no-op where it is installed).\n"
        "import importlib.util\nimport subprocess\nimport sys\n\n"
        'if importlib.util.find_spec("optdyn") is None:\n'
        f'    url = "git+{repository}"\n'
        '    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", f"optdyn @ {url}"])'
    )


def strip_markdown_solutions(text: str) -> str:
    """``text`` without its ``{solution}`` directives (colon or backtick fences, any fence length)."""
    return _TICK_SOLUTION.sub("", _COLON_SOLUTION.sub("", text))


def stub_marked_code(source: str) -> str:
    """``source`` with every ``# BEGIN SOLUTION`` … ``# END SOLUTION`` block replaced by a stub."""

    def stub(match: re.Match) -> str:
        indent = match.group("indent")
        return "\n".join(indent + line for line in STUB.splitlines())

    return _MARKED.sub(stub, source)


def has_solution(nb: nbformat.NotebookNode) -> bool:
    """Whether any cell of ``nb`` still holds a solution in one of the three forms."""
    for cell in nb.cells:
        if cell.cell_type == "code" and (
            SOLUTION_TAG in cell.metadata.get("tags", []) or BEGIN in cell.source
        ):
            return True
        if cell.cell_type == "markdown" and strip_markdown_solutions(cell.source) != cell.source:
            return True
    return False


def student_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solutions and without outputs."""
    student = nbformat.from_dict(nb)
    cells = []
    for cell in student.cells:
        if cell.cell_type == "code":
            if SOLUTION_TAG in cell.metadata.get("tags", []):
                continue
            cell.source = stub_marked_code(cell.source)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            cell.source = strip_markdown_solutions(cell.source)
        cells.append(cell)
    student.cells = cells
    return student


def instructor_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with everything, outputs cleared."""
    instructor = nbformat.from_dict(nb)
    for cell in instructor.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return instructor


def write_editions(chapters: dict[str, Path], out: Path) -> dict[str, list[Path]]:
    """Write ``out/student/<id>.ipynb`` and ``out/instructor/<id>.ipynb`` for every chapter.

    Raises RuntimeError if a solution survived into a student notebook (it is checked, not assumed).
    """
    written: dict[str, list[Path]] = {"student": [], "instructor": []}
    for edition, make in (("student", student_edition), ("instructor", instructor_edition)):
        folder = out / edition
        folder.mkdir(parents=True, exist_ok=True)
        for name, source in chapters.items():
            nb = make(nbformat.read(source, as_version=4))
            if edition == "student" and has_solution(nb):
                raise RuntimeError(f"{name}: a solution survived into the student edition")
            path = folder / f"{name}.ipynb"
            nbformat.write(nb, path)
            written[edition].append(path)
    return written
