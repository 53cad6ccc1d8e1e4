"""Student and instructor editions: no solution survives in the first, the second is whole and runs."""

import re
from pathlib import Path

import nbformat
import pytest

from optdyn import editions, runner

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = runner.chapters(REPO)

MARKDOWN = """## Exercises

:::{exercise}
:label: ex-a
Prove it.
:::

:::{solution} ex-a
:class: dropdown
Secret derivation.
:::

::::{solution} ex-b
:::{note}
nested
:::
Secret two.
::::

```{solution} ex-c
Secret three.
```
After."""


def test_markdown_solutions_are_removed_in_every_fence_form():
    text = editions.strip_markdown_solutions(MARKDOWN)
    assert "Secret" not in text and "nested" not in text
    assert ":label: ex-a" in text and "Prove it." in text and text.endswith("After.")


def test_exercise_boxes_and_roles_become_plain_markdown():
    text = (
        ":::{exercise}\n:label: ex-a\n\n(a) Show {eq}`eq-x` with {py:func}`~optdyn.theory.f` as in "
        "{cite:t}`smith2020`; see {numref}`fig-a` and {doc}`the scorecard <scorecard>`.\n:::\n\nBetween.\n\n"
        "::::{exercise} Tricky\n:label: ex-b\nBody two.\n::::\n"
    )
    plain, next_number = editions.plain_markdown(text, first=3)
    assert plain == (
        "**Exercise 3**.\n\n(a) Show Eq. (eq-x) with `optdyn.theory.f` as in [smith2020]; see fig-a and "
        "the scorecard.\n\n\nBetween.\n\n**Exercise 4** (Tricky).\n\nBody two.\n\n"
    )
    assert next_number == 5


def test_marked_code_becomes_a_stub_with_its_indentation():
    source = "x = 1\nif x:\n    # BEGIN SOLUTION\n    y = secret(x)\n    # END SOLUTION\nprint(y)"
    stubbed = editions.stub_marked_code(source)
    assert "secret" not in stubbed
    assert stubbed == "x = 1\nif x:\n    # YOUR CODE HERE\n    raise NotImplementedError\nprint(y)"


def test_student_edition_drops_tagged_cells_and_outputs():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(MARKDOWN),
        nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution", "hide-cell"]}),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1")]),
    ]
    assert editions.has_solution(nb)
    student = editions.student_edition(nb)
    assert not editions.has_solution(student)
    assert [c.source for c in student.cells if c.cell_type == "code"] == [editions.STUB, "print(1)"]
    assert student.cells[-1].outputs == []
    assert len(nb.cells) == 3, "the original is left alone"


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_chapter_editions(name, tmp_path):
    written = editions.write_editions({name: CHAPTERS[name]}, tmp_path)
    source = nbformat.read(CHAPTERS[name], as_version=4)
    student = nbformat.read(written["student"][0], as_version=4)
    instructor = nbformat.read(written["instructor"][0], as_version=4)
    assert editions.has_solution(source), "every chapter has exercises with solutions"
    assert not editions.has_solution(student)
    text = "\n".join(c.source for c in student.cells)
    assert "{exercise}" not in text and "{solution}" not in text and "**Exercise 1**" in text
    assert re.search(r"\{[\w:-]+\}`", text) is None, "a MyST role survived into the student edition"
    assert "hidden cell below" not in text, "the student edition points at a solution it does not have"
    assert [c.source for c in instructor.cells] == [c.source for c in source.cells]


def test_runner_writes_both_editions(tmp_path):
    assert runner.main(["--root", str(REPO), "student", "--out", str(tmp_path)]) == 0
    assert sorted(p.stem for p in (tmp_path / "student").glob("*.ipynb")) == sorted(CHAPTERS)
    assert sorted(p.stem for p in (tmp_path / "instructor").glob("*.ipynb")) == sorted(CHAPTERS)


@pytest.mark.slow
def test_instructor_edition_runs_with_its_solutions(quick_book):
    """The quick book is built from the instructor edition: every chapter ran, solution cells included."""
    root, status = quick_book
    assert status == 0
    for name in CHAPTERS:
        nb = nbformat.read(root / "book" / "_executed" / f"{name}.ipynb", as_version=4)
        solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
        assert solutions and all(c.outputs for c in solutions), f"{name}: a solution cell did not run"
        assert not any(o.get("output_type") == "error" for c in solutions for o in c.outputs)
