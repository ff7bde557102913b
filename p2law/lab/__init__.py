"""The experiment side (torch): it produces the checkpoint table.

* ``data``, ``token_store``: corpora, tokenizer, packing, document-disjoint splits; streamed token stores;
* ``models``, ``hub``: toy Llama/Qwen2 families; real checkpoints by hub id, folder or GGUF file;
* ``pretrain``: the toy bases;  ``prune``: depth, width, 2:4 SparseGPT (and magnitude 2:4, its baseline);
* ``train``: the mask-keeping post-trainer (accelerate; resumable; preemptible);
* ``profiles``: the sweeps (smoke, toy, smollm, paper); ``schedule``: a sweep's runs; ``costs`` and
  ``gpu_plan``: what it would cost (time, GPU memory); ``manifest``: provenance; ``experiment``: running it.
"""
