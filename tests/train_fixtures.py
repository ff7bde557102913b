"""A learnable toy corpus for trainer tests: arithmetic token sequences a tiny model can fit."""

import torch

from p2law.lab.train import TrainData


def pattern_data(seq_len=32, vocab=96):
    seqs = torch.stack([(torch.arange(seq_len) * k + o) % vocab for k in range(1, 9) for o in range(16)])
    perm = torch.randperm(len(seqs), generator=torch.Generator().manual_seed(0))
    seqs = seqs[perm]
    return TrainData(train=seqs[:112], eval=seqs[112:])


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant. torchrun starts each worker in a session of its own, so
    killing torchrun's process group would leave its workers running (and writing)."""
    import os
    import signal
    from pathlib import Path

    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    for p in tree:  # all collected before any dies, so none escapes by being re-parented
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_group(cmd, timeout, **kw):
    """``subprocess.run`` for a launcher (torchrun) whose workers are its children: a timeout kills the
    launcher and all its workers (``kill_tree``), not only the launcher's process group."""
    import subprocess

    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=kw.pop("text", False), **kw
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
