"""A learnable toy corpus for trainer tests: arithmetic token sequences a tiny model can fit."""

import torch

from p2law.lab.train import TrainData


def pattern_data(seq_len=32, vocab=96):
    seqs = torch.stack([(torch.arange(seq_len) * k + o) % vocab for k in range(1, 9) for o in range(16)])
    perm = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(0))
    seqs = seqs[perm]
    return TrainData(train=seqs[:112], eval=seqs[112:])


def run_group(cmd, timeout, **kw):
    """``subprocess.run`` for a launcher (torchrun) whose workers are its children: started in a session of
    its own, so a timeout kills the whole group instead of leaving the workers running."""
    import os
    import signal
    import subprocess

    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=kw.pop("text", False), **kw
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
