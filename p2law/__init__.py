"""p2law: a reproducible companion to the P² Law paper (Chen et al.).

The pipeline, in the order the layout shows it::

    lab/         (torch)      corpus -> toy bases or real checkpoints -> prune -> post-train
                                       |
    table.py     (contract)   the checkpoint table: one row per evaluation checkpoint
                                       |
    analysis/    (no torch)   law forms -> fit -> metrics -> held-out protocols -> budgets -> verdicts
    paper.py     (contract)   the paper's published numbers, and Table 5 as laws (``paper.law``)
    book.py      the book's page helpers; cli.py  ``p2law run | fit | plan``

The two halves meet only in the checkpoint table: ``lab`` writes it, ``analysis`` reads it, so
``p2law.analysis``, ``p2law.table`` and ``p2law.paper`` import without torch (a test checks it).
Import submodules explicitly (``from p2law.analysis import fit``); this file imports nothing.
"""

__version__ = "0.1.0"
