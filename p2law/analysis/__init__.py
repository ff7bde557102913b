"""The law side (numpy, scipy, pandas; never torch): it reads only the checkpoint table.

* ``law``: the P² Law parameterizations L1-L5 and their 2:4 variants, as plain functions;
* ``fit``: Levenberg-Marquardt and Huber-in-log fits from a grid of starts, bootstrap by whole curves;
* ``metrics``: R², Huber, ASD (Eq. 8) and Conditions 1-3;
* ``protocols``: the three generalization splits (dataset size, pruning rate, model size);
* ``budget``: post-training tokens at which a fitted law's slope falls under a threshold;
* ``verdict``: each of the paper's claims judged against a baseline above the seed-to-seed noise;
* ``sweep_checks``: the evidence rules a sweep must meet (flat controls, distinct and matched rates);
* ``grids``: a law fitted to every (family, pruning method) of a table, in worker processes;
* ``results``: the book's result tables (Tables 2, 3, 4, 6, held-out forms, budgets) from a checkpoint table;
* ``cache``: those tables cached on disk, keyed by the table's fingerprint, parameters and this code.
"""
