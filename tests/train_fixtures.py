"""A learnable toy corpus for trainer tests: arithmetic token sequences a tiny model can fit."""

import torch

from p2law.train import TrainData


def pattern_data(seq_len=32, vocab=96):
    seqs = torch.stack([(torch.arange(seq_len) * k + o) % vocab for k in range(1, 9) for o in range(16)])
    perm = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(0))
    seqs = seqs[perm]
    return TrainData(train=seqs[:112], eval=seqs[112:])
