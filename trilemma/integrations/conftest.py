"""Doctest collection skips an integration whose extra is not installed (pytest imports every
module of the package for ``--doctest-modules``; these would raise their ImportError)."""

import importlib

collect_ignore: list[str] = []
for _module, _package in (("flower.py", "flwr"), ("opacus.py", "opacus")):
    try:
        importlib.import_module(_package)
    except ImportError:
        collect_ignore.append(_module)
