"""Course editions of the chapters: a student edition without solutions, an instructor edition with all.

What counts as a solution, in a source notebook:

- a ``{solution}`` directive in a markdown cell (``:::{solution} label`` … ``:::`` or the backtick form),
  which the book renders as a hidden dropdown under its exercise;
- a code cell tagged ``solution``;
- the lines of a code cell between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, which become a stub that
  raises ``NotImplementedError`` for the student to replace.

The student edition removes all three (a removed solution cell leaves a stub cell in its place, and the
sentence pointing at the hidden solution points at the stub) and keeps everything else, in plain Markdown:
Colab and Jupyter do not know MyST, so each ``{exercise}`` box becomes a numbered bold "Exercise" heading
and each role (``{py:func}``, ``{cite:t}``, ``{eq}``, …) its bare target (:func:`plain_markdown`). The
instructor edition is the chapter as published, with its solutions. Both carry no outputs (the sources
carry none).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat

INSTALL_TAGS = ["remove-cell"]
SOLUTION_TAG = "solution"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError"
_COLON_SOLUTION = re.compile(r"^(?P<fence>:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.M | re.S)
_TICK_SOLUTION = re.compile(r"^(?P<fence>`{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.M | re.S)
#: The house sentence that points at a hidden solution cell; the student edition points at the stub instead.
_POINTER = re.compile(r"The solution is the hidden cell below.*?leaves it out\.", re.S)
STUDENT_POINTER = "Write your solution in the code cell below, in place of its stub."
_EXERCISE = re.compile(
    r"^(?P<fence>:{3,}|`{3,})\{exercise\}(?P<title>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)
_OPTION = re.compile(r"^:[\w-]+:[^\n]*\n", re.M)
_ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<target>[^`]+)`")
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


def plain_markdown(text: str, first: int = 1) -> tuple[str, int]:
    """``text`` as plain Markdown for Colab and Jupyter, and the number of the next exercise.

    ``{exercise}`` boxes become "**Exercise n** (title)." followed by their body (options such as ``:label:``
    dropped), numbered from ``first``; code roles (``{py:func}`` and the like) become inline code, citations
    ``[key]``, equation references "Eq. (label)", and every other role its bare target.
    """
    number = first

    def exercise(match: re.Match) -> str:
        nonlocal number
        title = match.group("title").strip()
        head = f"**Exercise {number}**" + (f" ({title})." if title else ".")
        number += 1
        body = _OPTION.sub("", match.group("body").lstrip("\n"), count=0).strip("\n")
        return f"{head}\n\n{body}\n"

    def role(match: re.Match) -> str:
        kind, target = match.group("role"), match.group("target")
        titled = re.fullmatch(r"(?P<title>.*?)\s*<(?P<target>[^<>]+)>", target, re.S)
        shown = titled.group("title") if titled else target.lstrip("~")
        if kind.startswith("py:"):
            return f"`{shown}`"
        if kind.startswith("cite"):
            return f"[{target}]"
        if kind == "eq":
            return f"Eq. ({target})"
        return shown

    text = _EXERCISE.sub(exercise, text)
    return _ROLE.sub(role, text), number


def student_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without solutions and without outputs."""
    student = nbformat.from_dict(nb)
    cells, exercise = [], 1
    for cell in student.cells:
        if cell.cell_type == "code":
            if SOLUTION_TAG in cell.metadata.get("tags", []):
                cells.append(nbformat.v4.new_code_cell(STUB))
                continue
            cell.source = stub_marked_code(cell.source)
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            text = _POINTER.sub(STUDENT_POINTER, strip_markdown_solutions(cell.source))
            cell.source, exercise = plain_markdown(text, exercise)
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


def make_editions(chapters: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Edition → chapter → the notebook's text, made in memory from every chapter (nothing is written).

    Raises ValueError naming a notebook that cannot be read, RuntimeError if a solution survived into a
    student notebook (it is checked, not assumed).
    """
    makers = {"student": student_edition, "instructor": instructor_edition}
    texts: dict[str, dict[str, str]] = {edition: {} for edition in makers}
    for name, source in chapters.items():
        try:
            nb = nbformat.read(source, as_version=4)
            made = {edition: make(nb) for edition, make in makers.items()}
        except Exception as error:
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
            raise ValueError(f"cannot read {source}: {reason}") from None
        if has_solution(made["student"]):
            raise RuntimeError(f"{name}: a solution survived into the student edition")
        for edition, edition_nb in made.items():
            texts[edition][name] = nbformat.writes(edition_nb)
    return texts


def save_editions(texts: dict[str, dict[str, str]], out: Path) -> dict[str, list[Path]]:
    """Write the editions of :func:`make_editions` as ``out/<edition>/<id>.ipynb``, all or nothing.

    Every file is first written into a temporary folder in ``out``; only when all are there are they moved
    into place, one rename each (other files in ``out/student`` and ``out/instructor`` are left alone). An
    error leaves the previous editions as they were. Raises ValueError for an edition folder that is a
    file, OSError where ``out`` cannot be written.
    """
    out.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    for edition in texts:
        if (out / edition).exists() and not (out / edition).is_dir():
            raise ValueError(f"{out / edition} is a file, not a folder")
    staged = out / f".editions.tmp{os.getpid()}"
    try:
        for edition, notebooks in texts.items():
            (staged / edition).mkdir(parents=True)
            for name, text in notebooks.items():
                (staged / edition / f"{name}.ipynb").write_text(text)
        for edition, notebooks in texts.items():
            (out / edition).mkdir(exist_ok=True)
            for name in notebooks:
                os.replace(staged / edition / f"{name}.ipynb", out / edition / f"{name}.ipynb")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return {edition: [out / edition / f"{name}.ipynb" for name in texts[edition]] for edition in texts}


def write_editions(chapters: dict[str, Path], out: Path) -> dict[str, list[Path]]:
    """Write ``out/student/<id>.ipynb`` and ``out/instructor/<id>.ipynb`` for every chapter, all or nothing:
    every notebook is read and both editions made (:func:`make_editions`) before anything is written
    (:func:`save_editions`)."""
    return save_editions(make_editions(chapters), out)


_STAGED = re.compile(r"^\.editions\.tmp(\d+)$")


def _clean_stale(out: Path) -> None:
    """Remove staging folders in ``out`` left by a process that is gone (killed mid-write)."""
    for path in out.iterdir():
        m = _STAGED.match(path.name)
        if not m or not path.is_dir():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass
