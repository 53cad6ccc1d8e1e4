"""A Sphinx extension for the book's build: two fixes.

Type annotations of dataclass fields and properties name ``torch.Tensor`` and ``collections.abc.Callable``,
which no inventory resolves offline (the book has no intersphinx); under ``-n`` those are the only missing
references to ignore, and ``_ignore_offline_types`` adds them to ``nitpick_ignore``.

sphinx-thebe adds its configuration script (``const THEBE_JS_URL = …``) once per ``env-before-read-docs``
event, and Jupyter Book's build emits that event twice, so every page declared the constant twice and the
browser reported "Identifier 'THEBE_JS_URL' has already been declared". Here each page keeps the first
of any identical scripts.
"""

from __future__ import annotations


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", None) or "", attributes)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    if "script_files" in context:
        context["script_files"][:] = kept


#: External classes that annotations name and no offline inventory can resolve.
OFFLINE_TYPES = {("py:class", "torch.Tensor"), ("py:class", "collections.abc.Callable")}


def _ignore_offline_types(app, config) -> None:
    config.nitpick_ignore = set(config.nitpick_ignore) | OFFLINE_TYPES


def setup(app) -> dict:
    app.connect("config-inited", _ignore_offline_types)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
