"""The experiment side (torch): it produces the checkpoint table.

* ``data``, ``token_store``: corpora, tokenizer, packing, document-disjoint splits; streamed token stores;
* ``models``, ``hub``: toy Llama/Qwen2 families; real checkpoints by hub id, folder or GGUF file;
* ``pretrain``: the toy bases;  ``prune``: depth, width, 2:4 SparseGPT;
* ``train``: the mask-keeping post-trainer (accelerate; resumable; preemptible);
* ``profiles``, ``experiment``, ``gpu_plan``: the sweeps (smoke, toy, paper), their plans and memory sums.
"""
