import pytest

from p2law.lab.gpu_plan import GB, choose_micro_batch, gpu_hours, memory_per_gpu

# Llama-3.2-1B: 1,235,814,400 parameters, 16 layers, hidden 2048, vocabulary 128,256; the paper's 2,048 tokens
LLAMA_1B = dict(n_params=1_235_814_400, n_layers=16, hidden=2048, vocab=128_256, seq_len=2048)


def test_llama_3_2_1b_memory_by_hand():
    n = LLAMA_1B["n_params"]
    ddp = memory_per_gpu(**LLAMA_1B, micro_batch=1, n_gpus=4, strategy="ddp")
    assert (ddp.weights, ddp.grads, ddp.optimizer) == (4 * n, 8 * n, 8 * n)  # 20 B/param under DDP
    per_token = 16 * 34 * 2048 + 10 * 128_256  # layers x 34 x hidden + 10 x vocabulary
    assert ddp.activations == 2048 * per_token == 4_908_384_256
    assert ddp.total / GB == pytest.approx(29.62, abs=0.01)
    fsdp = memory_per_gpu(**LLAMA_1B, micro_batch=1, n_gpus=4, strategy="fsdp2")
    assert fsdp.weights == pytest.approx(n + 4 * 2 * n / 16)  # a quarter of fp32 weights + two gathered layers
    assert fsdp.optimizer == 2 * n and fsdp.activations == ddp.activations
    assert memory_per_gpu(**LLAMA_1B, micro_batch=8, n_gpus=4, strategy="ddp").activations == 8 * ddp.activations
    ckpt = memory_per_gpu(**LLAMA_1B, micro_batch=1, n_gpus=4, strategy="ddp", checkpointing=True)
    assert ckpt.activations == 2048 * ((16 * 2 + 34) * 2048 + 10 * 128_256)


def test_micro_batch_choice_and_gpu_hours():
    fits = lambda m: memory_per_gpu(**LLAMA_1B, micro_batch=m, n_gpus=4, strategy="ddp").total <= 72 * GB  # noqa: E731
    assert choose_micro_batch(32, fits) == 8  # 8 sequences: 24.7 + 39.3 GB; 16 would need 103 GB
    assert choose_micro_batch(32, lambda m: False) is None
    # 6 N D for 0.5B tokens at 40% of 312 TFLOP/s
    assert gpu_hours(6 * 1.2358144e9 * 5e8) == pytest.approx(6 * 1.2358144e9 * 5e8 / (312e12 * 0.4) / 3600)
    with pytest.raises(ValueError, match="strategy must be 'ddp' or 'fsdp2'"):
        memory_per_gpu(**LLAMA_1B, micro_batch=1, n_gpus=4, strategy="zero3")
