"""p2law: a reproducible companion to the P² Law paper (Chen et al.).

The package is split in two halves that never meet inside one module:

* the model side (``models``, ``data``, ``prune``, ``train``, ``experiment``) needs torch and
  produces the checkpoint table;
* the law side (``law``, ``fit``, ``metrics``, ``protocols``, ``paper``, ``plan``) is plain
  numpy/scipy and reads only that table, so it imports without torch.

Import submodules explicitly (``from p2law import fit``); this file imports nothing heavy.
"""

__version__ = "0.1.0"
