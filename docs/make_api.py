"""Write docs/api.md, the API reference, from fastgd's docstrings.

Plain ``inspect``: signatures without annotations, numpy-style docstring
sections turned into Markdown (section titles in bold, parameters as list
items, ``>>>`` examples as code blocks).

    python docs/make_api.py           # rewrite docs/api.md
    python docs/make_api.py --check   # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any, Iterable, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import fastgd  # noqa: E402
import fastgd.datasets  # noqa: E402
import fastgd.reference  # noqa: E402
from fastgd import errors  # noqa: E402

OUTPUT = os.path.join(HERE, "api.md")

# Sections whose entries are "name : type" lines followed by indented text.
LIST_SECTIONS = {"Parameters", "Returns", "Yields", "Attributes", "Raises", "Warns", "See Also"}

# What the reference documents, in order: (title, qualified name, object, members).
PAGES: List[tuple] = [
    ("Training", [
        ("fastgd.fit", fastgd.fit), ("fastgd.gd", fastgd.gd), ("fastgd.sgd", fastgd.sgd),
        ("fastgd.minibatch_sgd", fastgd.minibatch_sgd),
    ]),
    ("The tutorial's functions", [
        ("fastgd.forward", fastgd.forward), ("fastgd.loss", fastgd.loss),
        ("fastgd.cost", fastgd.cost), ("fastgd.gradient", fastgd.gradient),
    ]),
    ("Results", [("fastgd.Fit", fastgd.Fit)]),
    ("scikit-learn estimators", [("fastgd.SGDRegressor", fastgd.SGDRegressor), ("fastgd.GDRegressor", fastgd.GDRegressor)]),
    ("Backends", [
        ("fastgd.use", fastgd.use), ("fastgd.backends", fastgd.backends),
        ("fastgd.BackendInfo", fastgd.BackendInfo),
    ]),
    ("Errors and warnings", [
        ("fastgd.DivergenceError", errors.DivergenceError),
        ("fastgd.FitInterrupted", errors.FitInterrupted),
        ("fastgd.BackendFallbackWarning", errors.BackendFallbackWarning),
    ]),
    ("Datasets", [
        ("fastgd.datasets.tutorial", fastgd.datasets.tutorial),
        ("fastgd.datasets.make_linear", fastgd.datasets.make_linear),
        ("fastgd.datasets.make_sparse_linear", fastgd.datasets.make_sparse_linear),
    ]),
]

# Public methods documented under a class (others are inherited or internal).
METHODS = {
    "fastgd.Fit": ["predict", "to_dict"],
    "fastgd.GDRegressor": ["fit", "partial_fit", "predict", "score"],
    "fastgd.SGDRegressor": ["fit", "partial_fit", "predict", "score"],
}


def signature(name: str, obj: Any) -> str:
    """``name(params)`` without annotations (they are in the docstrings)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return name
    parts: List[str] = []
    star_done = False
    for param in sig.parameters.values():
        if param.name == "self":
            continue
        if param.kind is param.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if param.kind is param.VAR_POSITIONAL:
            text, star_done = f"*{param.name}", True
        elif param.kind is param.VAR_KEYWORD:
            text = f"**{param.name}"
        else:
            text = param.name
        if param.default is not param.empty:
            text += f"={param.default!r}"
        parts.append(text)
    return f"{name}({', '.join(parts)})"


def markdown(doc: str) -> List[str]:
    """A numpy-style docstring as Markdown lines."""
    lines = doc.splitlines()
    out: List[str] = []
    section = None
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", nxt.strip()) and not line.startswith(" "):
            if in_code:
                out.append("```")
                in_code = False
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        stripped = line.strip()
        if stripped.startswith(">>>"):
            if not in_code:
                out.append("```pycon")
                in_code = True
            out.append(stripped)
        elif in_code:
            if not stripped:
                out.append("```")
                in_code = False
                out.append("")
            else:
                out.append(stripped)
        elif section in LIST_SECTIONS:
            if not stripped:
                out.append("")
            elif not line.startswith(" "):
                out.append(f"- `{stripped}`")
            else:
                out.append(f"  {stripped}")
        else:
            out.append(line)
        i += 1
    if in_code:
        out.append("```")
    return out


def entry(name: str, obj: Any, level: int = 3, owner: Any = None) -> List[str]:
    out = [f"{'#' * level} `{name}`", "", "```python", signature(name.rsplit(".", 1)[-1], obj),
           "```", ""]
    defined_by = getattr(obj, "__qualname__", "").split(".")[0]
    if owner is not None and defined_by != owner.__name__:
        # Inherited (e.g. score from scikit-learn): point to it, do not copy its text.
        base = next(c for c in owner.__mro__ if c.__name__ == defined_by)
        out += [f"Inherited from `{base.__module__.split('.')[0]}`'s `{base.__name__}`;"
                " see its documentation.", ""]
        return out
    out += markdown(inspect.getdoc(obj) or "(no docstring)")
    out.append("")
    for method in METHODS.get(name, []):
        out += entry(f"{name}.{method}", getattr(obj, method), level + 1, owner=obj)
    return out


def reference_note() -> List[str]:
    same = [n for n in fastgd.reference.__all__ if n != "Fit"]
    checks = [
        n for n in same
        if inspect.signature(getattr(fastgd.reference, n)) == inspect.signature(getattr(fastgd, n))
    ]
    assert checks == same, "fastgd.reference's signatures drifted from fastgd's"
    names = ", ".join(f"`{n}`" for n in same)
    return [
        "## `fastgd.reference`", "",
        f"The pure-Python definition of every result. It has {names} with the same",
        "signatures and meaning as `fastgd`'s (checked when this page is generated);",
        "`exact` is accepted and ignored, since the reference is always exact.", "",
    ]


def render() -> str:
    out = [
        "# API reference", "",
        "<!-- Generated by docs/make_api.py from the docstrings; do not edit by hand. -->", "",
        f"fastgd {fastgd.__version__}. The user guide is [guide.md](guide.md); parameters of",
        "torch and scikit-learn are mapped to fastgd's in [mapping.md](mapping.md).", "",
    ]
    out += ["## Contents", ""]
    for title, items in PAGES:
        out.append(f"- {title}: " + ", ".join(f"`{n}`" for n, _ in items))
    out += ["- `fastgd.reference`", ""]
    for title, items in PAGES:
        out += [f"## {title}", ""]
        for name, obj in items:
            out += entry(name, obj)
    out += reference_note()
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
    return text


def main(argv: Iterable[str]) -> int:
    text = render()
    if "--check" in argv:
        with open(OUTPUT, encoding="utf-8") as f:
            if f.read() != text:
                print("docs/api.md is out of date: run python docs/make_api.py", file=sys.stderr)
                return 1
        return 0
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
