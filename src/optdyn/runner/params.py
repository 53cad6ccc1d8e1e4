"""A chapter's declared parameters (its cell tagged ``parameters``), command-line values and seeds."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from .base import ParameterError, _number, nbformat, one_line, shown


@dataclass(frozen=True)
class Declared:
    """A parameter of a chapter: its default and the values it accepts."""

    name: str
    default: object
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def check(self, value: object) -> object:
        """``value`` typed like the default and checked against the declaration; raises ParameterError."""
        value = _coerce(self.name, self.default, value)
        for item in value if isinstance(value, list | tuple) else [value]:
            self._check_item(item)
        return value

    def _check_item(self, item: object) -> None:
        if self.choices is not None and item not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ParameterError(f"{self.name}={shown(item)} is not one of: {shown(allowed, literal=False)}")
        if self.lo is None or self.hi is None or not isinstance(item, int | float):
            return
        below = item <= self.lo if self.lo_open else item < self.lo
        above = item >= self.hi if self.hi_open else item > self.hi
        if below or above:
            raise ParameterError(f"{self.name}={shown(item)} is out of range {self.interval()}")

    def interval(self) -> str:
        """The declared range as written, e.g. ``(0, inf)``."""
        lo, hi = _number(self.lo), _number(self.hi)
        return f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"


def _coerce(name: str, default: object, value: object) -> object:
    """``value`` as the type of ``default``: int is accepted for float, bool never counts as a number."""
    kind = type(default)
    wrong = ParameterError(f"{name}={shown(value)} has the wrong type: expected {kind.__name__}")
    if isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            raise wrong
        return type(default)(_coerce(name, default[0], v) for v in value) if default else value
    if isinstance(value, bool) != isinstance(default, bool):
        raise wrong
    if kind is float and isinstance(value, int):
        return float(value)
    if default is not None and not isinstance(value, kind):
        raise wrong
    return value


_RANGE = re.compile(r"^#\s*in\s*([\[(])\s*([^,]+?)\s*,\s*([^\])]+?)\s*([\])])\s*$")
_CHOICES = re.compile(r"^#\s*one of:\s*(.+?)\s*$")


def declared_parameters(notebook: Path) -> dict[str, Declared]:
    """The parameters declared in a chapter's cell tagged ``parameters``; raises ParameterError."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as error:
        raise ParameterError(f"cannot read {notebook}: {one_line(error)}") from None
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ParameterError(f"{notebook.name} has no code cell tagged 'parameters'")
    source = cells[0].source
    try:
        statements = ast.parse(source).body
    except SyntaxError as error:
        raise ParameterError(f"{notebook.name}: parameters cell does not parse: {error.msg}") from None
    comments = _comments(source)
    return dict(_declaration(notebook.name, s, comments) for s in statements)


def _comments(source: str) -> dict[int, str]:
    """Line number → the comment on that line."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}


def _declaration(where: str, stmt: ast.stmt, comments: dict[int, str]) -> tuple[str, Declared]:
    if not (
        isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
    ):
        raise ParameterError(f"{where}: parameters cell line {stmt.lineno} is not 'name = literal'")
    name = stmt.targets[0].id
    try:
        default = ast.literal_eval(stmt.value)
    except ValueError:
        raise ParameterError(f"{where}: default of {name!r} is not a literal") from None
    comment = comments.get(stmt.end_lineno or stmt.lineno, "")
    try:
        return name, _declared(name, default, comment)
    except ValueError:
        raise ParameterError(f"{where}: cannot read the declaration of {name!r}: {comment!r}") from None


def _declared(name: str, default: object, comment: str) -> Declared:
    if m := _CHOICES.match(comment):
        return Declared(name, default, choices=tuple(_choice(c.strip()) for c in m.group(1).split(",")))
    if m := _RANGE.match(comment):
        lo, hi = float(m.group(2)), float(m.group(3))
        return Declared(name, default, lo=lo, hi=hi, lo_open=m.group(1) == "(", hi_open=m.group(4) == ")")
    return Declared(name, default)


def _choice(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_value(name: str, text: str, declared: Declared) -> object:
    """A command-line value as a Python literal; a bare word is accepted where a string is declared."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if isinstance(declared.default, str) and re.fullmatch(r"[\w.\-]+", text):
            return text
    raise ParameterError(f"{name}={shown(text)} is not a literal value (a number, string, bool or list)")


#: At most this many seeds in one request.
MAX_SEEDS = 100
_SEED_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str) -> list[int]:
    """``0-2`` → [0, 1, 2]; ``0,3,7`` → [0, 3, 7]; ranges and lists mix (``0-2,5``); raises ParameterError."""
    seeds: list[int] = []
    for item in text.split(","):
        m = _SEED_ITEM.match(item.strip())
        if not m:
            raise ParameterError(f"--seeds {shown(text)}: expected seeds like 0-2 or 0,3,7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ParameterError(f"--seeds {shown(text)}: range {lo}-{hi} is empty")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ParameterError(f"--seeds {shown(text)}: more than {MAX_SEEDS} seeds")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def seeds_text(seeds: list[int]) -> str:
    """The shortest ``--seeds`` form: ``0-2`` for consecutive seeds, else ``0,3,7``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def declared_seeds(notebook: Path, profile: object) -> list[int]:
    """The seeds a chapter declares for ``profile`` (notebook metadata ``optdyn.seeds``), else [0]."""
    nb = nbformat.read(notebook, as_version=4)
    declared = nb.metadata.get("optdyn", {}).get("seeds", {}).get(str(profile))
    if not (isinstance(declared, list) and declared and all(isinstance(x, int) for x in declared)):
        return [0]
    return list(dict.fromkeys(declared))
