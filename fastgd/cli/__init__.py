"""The ``fastgd`` command line: ``demo``, ``info``, ``train``, ``bench``.

Each subcommand lives in its own module, imported only when it runs; a
module provides ``configure(parser)`` and ``run(args) -> int``, and may
provide ``check(args, parser)``, called right after parsing to reject
combinations of arguments with ``parser.error`` (a usage error, exit 2)
before anything runs.

Warnings raised while a subcommand runs (a backend falling back, say) are
printed as one line, ``fastgd: warning: ...``: the default format adds the
file, line and source line of the ``warnings.warn`` call, which tells a user
of the command nothing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Any, List, Optional, TextIO

from fastgd import __version__

# name -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("fastgd.cli.demo", "the tutorial's run (y = x*w on x=[1,2,3]), printed as it prints it"),
    "info": ("fastgd.cli.info", "backends, threads, versions and the numba cache folder"),
    "train": ("fastgd.cli.train", "train on synthetic or .npy data with a progress bar"),
    "bench": ("fastgd.bench", "kernel microbenchmarks against numpy, torch and scikit-learn"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``fastgd`` parser with every subcommand that this build has."""
    parser = argparse.ArgumentParser(
        prog="fastgd", description="Fast gradient descent for linear least squares."
    )
    parser.add_argument("--version", action="version", version=f"fastgd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name, _parser=sub)
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a subcommand whose module is not in this build
            sub.set_defaults(_missing=True)
            continue
        module.configure(sub)
    return parser


def missing_extra(module_name: str, extra: str, feature: str) -> Optional[str]:
    """None when ``module_name`` imports, else the one-line message that says how to get it.

    Parameters
    ----------
    module_name : str
        The optional dependency, e.g. ``"matplotlib"``.
    extra : str
        The fastgd extra that installs it, e.g. ``"plot"``.
    feature : str
        What needs it, e.g. ``"--plot"``.

    Examples
    --------
    >>> from fastgd.cli import missing_extra
    >>> missing_extra("math", "plot", "--plot") is None
    True
    """
    try:
        importlib.import_module(module_name)
    except ImportError:
        return f"{feature} needs {module_name}: pip install 'fastgd[{extra}]'"
    return None


def _show_warning(
    message: Any,
    category: type,
    filename: str,
    lineno: int,
    file: Optional[TextIO] = None,
    line: Optional[str] = None,
) -> None:
    """``warnings.showwarning`` for the command line: one line, no source."""
    text = str(message).strip()
    if text.startswith("fastgd: "):  # fastgd's own warnings already name it
        text = text[len("fastgd: ") :]
    if not category.__module__.startswith("fastgd"):
        text = f"{category.__name__}: {text}"  # someone else's: say whose
    print(f"fastgd: warning: {text}", file=file if file is not None else sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``fastgd`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", False):
        print(f"fastgd {args.command}: not available in this build", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    check = getattr(module, "check", None)
    if check is not None:
        check(args, args._parser)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return int(module.run(args) or 0)
