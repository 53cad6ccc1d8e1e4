"""The book's root, its chapters, and the plan of a request: one task per (chapter, seed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .base import ParameterError, shown
from .cache import cache_key
from .params import declared_parameters, declared_seeds, parse_value


def find_root(start: Path) -> Path | None:
    """The nearest directory from ``start`` upwards holding a ``_toc.yml`` (None if there is none)."""
    for path in [start, *start.parents]:
        if (path / "_toc.yml").is_file():
            return path
    return None


def project_root(given: Path | None) -> Path:
    """The book's root: ``--root`` if given (it must hold a ``_toc.yml``), else :func:`find_root` from the
    current folder; raises ParameterError naming what is missing and how to pass ``--root``."""
    if given is not None:
        root = given.resolve()
        if not root.is_dir():
            raise ParameterError(f"--root {shown(str(given), literal=False)}: no such folder")
        if not (root / "_toc.yml").is_file():
            raise ParameterError(
                f"--root {root}: no _toc.yml there; pass the folder that holds the book's _toc.yml"
            )
        return root
    try:
        here = Path.cwd()
    except OSError:
        raise ParameterError(
            "the current folder no longer exists; cd into the book or pass --root PATH"
        ) from None
    found = find_root(here)
    if found is None:
        raise ParameterError(
            f"no _toc.yml in {here} or any folder above it: run optdyn inside the book, or pass --root PATH"
        )
    return found


def chapters(root: Path) -> dict[str, Path]:
    """Chapter id → source notebook: ``book/<id>.ipynb`` or ``book/<id>/<id>.ipynb``."""
    book = root / "book"
    found = {p.stem: p for p in sorted(book.glob("*.ipynb")) if not p.name.startswith(".")}
    found.update({p.stem: p for p in sorted(book.glob("*/*.ipynb")) if p.parent.name == p.stem})
    return dict(sorted(found.items()))


def resolve(root: Path, names: list[str], overrides: dict[str, str]) -> dict[str, dict]:
    """Chapter → its resolved parameters (defaults plus checked overrides); raises ParameterError."""
    known = chapters(root)
    for name in names:
        if name not in known:
            listed = shown(", ".join(known), 200, literal=False) if known else f"none in {root / 'book'}"
            raise ParameterError(f"unknown chapter {shown(name)}; known chapters: {listed}")
    plans = {}
    for name in dict.fromkeys(names):
        declared = declared_parameters(known[name])
        params = {k: d.default for k, d in declared.items()}
        for key, text in overrides.items():
            if key not in declared:
                raise ParameterError(
                    f"unknown parameter {shown(key)} for chapter {name}; known: {', '.join(declared)}"
                )
            params[key] = declared[key].check(parse_value(key, text, declared[key]))
        plans[name] = params
    return plans


@dataclass(frozen=True)
class Task:
    """One execution: a chapter at one seed, with its resolved parameters, cache key and device (the one
    actually used: ``cpu`` where a GPU was asked for and none is present, said in ``notice``)."""

    chapter: str
    seed: int
    params: dict
    key: str
    device: str = "cpu"
    notice: str | None = field(default=None, compare=False)

    @property
    def run_name(self) -> str:
        return f"{self.chapter}.seed{self.seed}"


def plan(
    root: Path, names: list[str], overrides: dict[str, str], seeds: list[int] | None = None
) -> dict[str, list[Task]]:
    """Chapter → its tasks, one per seed; raises ParameterError before anything runs.

    The seeds are ``seeds`` if given, else the one of ``-p seed=``/``--seed`` if given, else those the
    chapter declares for its profile.
    """
    if seeds is not None and "seed" in overrides:
        raise ParameterError("give either --seeds or --seed (or -p seed=), not both")
    plans = resolve(root, names, overrides)
    known = chapters(root)
    tasks = {}
    for name, params in plans.items():
        if seeds is not None:
            chosen = seeds
        elif "seed" in overrides:
            chosen = [params["seed"]]
        else:
            chosen = declared_seeds(known[name], params.get("profile"))
        declared = declared_parameters(known[name])
        runs = []
        for seed in chosen:
            p = params | {"seed": declared["seed"].check(seed) if "seed" in declared else seed}
            runs.append(make_task(known[name], name, seed, p, root))
        tasks[name] = runs
    return tasks


def device_for(profile: object) -> tuple[str, str | None]:
    """(the device a run at ``profile`` will use, a notice of a CPU fallback or None), from
    ``OPTDYN_DEVICE`` and the profile (:func:`optdyn.device.resolve`); raises ParameterError for a bad
    value of the variable, before anything runs."""
    from .. import device

    try:
        return device.resolve(profile)
    except ValueError as error:
        raise ParameterError(str(error)) from None


def make_task(source: Path, name: str, seed: int, params: dict, root: Path) -> Task:
    """The task of one seed of a chapter, keyed on its source, parameters and the device it will use."""
    device, notice = device_for(params.get("profile"))
    return Task(name, seed, params, cache_key(source, params, root, device=device), device, notice)
