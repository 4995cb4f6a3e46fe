"""resumable's compiler: decorated async functions -> state machine modules.

Passes, one module each, each handing the next a frozen value (ir.py):

    parse.py     source -> ParsedModule (decorated functions, positions)
    analyze.py   -> Analysis (scopes via symtable, awaits, unsupported constructs)
    lower.py     -> Lowered (numbered states): dispatches each statement and
                 expression to the function lowering its kind --
                   statements.py  simple statements
                   branches.py    if, while, for
                   exceptions.py  try, and the try/finally helper
                   contexts.py    with
                   expressions.py expressions;  conditions.py  conditions
                 all working on builder.py's Lowering, which writes states
                 (states.py) inside control entries (control.py), rewrites
                 what runs unchanged (rewrite.py); numbering.py numbers them
    liveness.py  -> Lowered with the locals live at each await
    check.py     invariants (a failure is a bug in resumable)
    render.py    -> generated module text (templates/module.py.j2)

build.py runs them per file and writes `__resumable__/<module>.py`; cache.py
tells from a generated module's header whether it is up to date, without
importing the passes (nor libcst, jinja2); tree.py keeps the libcst facts the
passes ask for again and again (a node's children). cli.py is `resumable
compile`. Deployed code never imports this package.
"""

from __future__ import annotations

from .build import FileResult, compile_file, compile_source, find_sources

__all__ = ["FileResult", "compile_file", "compile_source", "find_sources"]
