# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (p2law)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Our setting beside the paper's
#
# The paper post-trained six real models, 0.5B to 8B parameters, on up to a billion tokens of SlimPajama,
# on eight data-centre GPUs for about 500 hours (§3.1 of {cite}`chen2025p2law`). This companion has to
# run on a two-core laptop-class CPU in a couple of hours, with no network to fetch weights or data. This
# page lists, side by side and computed from the code that runs the experiments, what we changed, why,
# and what each change may do to the conclusions. The last section says how to run the paper's own
# setting with the same code on GPUs.

# %% tags=["parameters"]
profile = "toy"
results_dir = "results/toy"

# %%
import json
from pathlib import Path

import pandas as pd
from myst_nb import glue

from p2law import book_support as bs
from p2law import paper
from p2law.models import toy_family
from p2law.profiles import get_profile

out = bs.ensure_results(profile, results_dir)
df = bs.load_checkpoints(out)
ours = get_profile(profile)
theirs = get_profile("paper")
manifest_path = Path(out) / "manifest.json"
manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}

# %% [markdown]
# ## Models
#
# Each of our models stands in for one of the paper's: the same architecture class from `transformers`
# (`LlamaForCausalLM` or `Qwen2ForCausalLM`, with grouped-query attention, and with tied embeddings and
# q/k/v biases where the real model has them), three sizes per family whose ratios echo the paper's, and
# the pruning rates of the paper's Table 1 for the model it stands in for. Our models are about a
# thousand times smaller. We had to pretrain them ourselves, briefly, so their base loss $\mathcal{L}_0$ is
# far above a real model's and the "knowledge" pruning destroys is shallower.

# %%
rows = []
for family in ours.families:
    for spec in toy_family(family, ours.scale):
        real = paper.PAPER_MODELS[spec.mirrors]
        sub = df[df["model"] == spec.name]
        pre = manifest.get("pretrain", {}).get(spec.name, {})
        rows.append({
            "our model": spec.name, "stands in for": real.name,
            "our N0": int(sub["n0"].iloc[0]) if len(sub) else None, "paper N0": real.n_params,
            "size ratio": real.n_params / sub["n0"].iloc[0] if len(sub) else None,
            "our layers": spec.num_hidden_layers, "paper layers": real.n_layers,
            "our hidden": spec.hidden_size, "paper hidden": real.hidden_size,
            "our L0": sub["l0"].iloc[0] if len(sub) else None,
            "pretraining tokens per parameter": pre.get("tokens_per_param"),
        })
models = pd.DataFrame(rows)
bs.save_table(models, out, "reproduction", "models")
present = models["our N0"].notna()
glue("repro_models_present", int(present.sum()), display=False)
glue("repro_models_planned", int(len(models)), display=False)
glue("repro_min_ratio", float(models.loc[present, "size ratio"].min()) if present.any() else float("nan"),
     display=False)
models.style.format({"our N0": "{:,.0f}", "paper N0": "{:,.0f}", "size ratio": "{:,.0f}×", "our L0": "{:.2f}",
                     "pretraining tokens per parameter": "{:.1f}"}, na_rep="not yet run").hide(axis="index")

# %% [markdown]
# The results this build reads hold {glue:text}`repro_models_present:d` of the
# {glue:text}`repro_models_planned:d` planned models (a model that is "not yet run" belongs to a part of
# the sweep that has not been committed yet); our largest model is still at least
# {glue:text}`repro_min_ratio:,.0f` times smaller than the paper's model it stands in for.

# %% [markdown]
# ## Data, training recipe and compute

# %%
def tokens(x):
    return f"{x:,.0f}" if x else "–"


post = df[df["tokens"] > 0].groupby("model")["tokens"].max()
run_seconds = sum(r.get("seconds", 0) for r in manifest.get("runs", {}).values())
pre_seconds = sum(r.get("seconds", 0) for r in manifest.get("pretrain", {}).values())
corpus = manifest.get("corpus")
corpus_text = (f"{corpus['source']} ({corpus['n_bytes'] / 1e6:,.1f} MB, sha256 {corpus['sha256'][:12]}…)"
               if corpus else ours.corpus)
trained_tokens = sum(r.get("tokens", 0) for r in manifest.get("runs", {}).values())
entries = list(manifest.get("runs", {}).values()) + list(manifest.get("pretrain", {}).values())
threads = sorted({e["threads"] for e in entries if "threads" in e})
threads_text = (" or ".join(map(str, threads)) + " torch thread(s)" if threads
                else f"{manifest.get('machine', {}).get('cpus', '?')} torch thread(s) in the latest session")
recipe = pd.DataFrame([
    ("corpus", "SlimPajama (hub: cerebras/SlimPajama-627B)", corpus_text),
    ("tokenizer", "each model's own (128k / 152k entries)", f"BPE trained with `tokenizers`, {ours.vocab_size} entries"),
    ("sequence length", theirs.seq_len, ours.seq_len),
    ("calibration samples for pruning", theirs.n_calibration, ours.n_calibration),
    ("learning rate", theirs.lr, ours.lr),
    ("batch (tokens per step)", f"{theirs.batch_size * theirs.seq_len:,}", f"{ours.batch_size * ours.seq_len:,}"),
    ("post-training tokens per model", "0.5B (smaller three) or 1B (larger three)",
     f"{tokens(post.min())} – {tokens(post.max())}" if len(post) else "–"),
    ("post-training tokens ÷ N0", f"{min(m.post_training_tokens / m.n_params for m in paper.PAPER_MODELS.values()):.2f}"
     f" – {max(m.post_training_tokens / m.n_params for m in paper.PAPER_MODELS.values()):.2f}",
     f"{ours.post_tokens_per_param}"),
    ("evaluation checkpoints per curve", "not stated", ours.n_checkpoints),
    ("hardware", "4 × A800-80G + 4 × A6000-48G", f"CPU only, {threads_text}"),
    ("wall time", "about 500 GPU-hours in all",
     f"{(run_seconds + pre_seconds) / 60:,.0f} min ({pre_seconds / 60:,.0f} pretraining bases, "
     f"{run_seconds / 60:,.0f} post-training)" if manifest else "–"),
    ("post-training throughput", "not stated",
     f"{trained_tokens / run_seconds:,.0f} tokens/s" if run_seconds else "–"),
], columns=["", "paper", f"ours ({profile})"]).astype(str)
bs.save_table(recipe, out, "reproduction", "recipe")
recipe.style.hide(axis="index")

# %% [markdown]
# Where the machine time went, model by model, as the sweep's manifest measured it (a run's time includes
# its pruning and its evaluations; pretraining is the base model's, done once):

# %%
model_of = df.groupby("run_id")["model"].first()
compute = []
for model in dict.fromkeys(df["model"]):
    pre = manifest.get("pretrain", {}).get(model, {})
    runs = [v for k, v in manifest.get("runs", {}).items() if model_of.get(k) == model]
    post_s = sum(v["seconds"] for v in runs)
    compute.append({
        "model": model, "threads": ", ".join(map(str, sorted({e.get("threads", "?") for e in [pre, *runs]}))),
        "pretraining min": pre.get("seconds", float("nan")) / 60, "pretraining tokens/s": pre.get("tokens_per_second"),
        "runs": len(runs), "post-training min": post_s / 60,
        "post-training tokens/s": sum(v["tokens"] for v in runs) / post_s if post_s else None,
    })
compute = pd.DataFrame(compute)
total_min = float(compute["pretraining min"].sum() + compute["post-training min"].sum()) if len(compute) else float("nan")
if len(compute):
    compute.loc[len(compute)] = {"model": "all", "threads": "", "runs": compute["runs"].sum(),
                                 "pretraining min": compute["pretraining min"].sum(),
                                 "post-training min": compute["post-training min"].sum()}
bs.save_table(compute, out, "reproduction", "compute")
glue("repro_total_min", total_min, display=False)
compute.style.format({"pretraining min": "{:.1f}", "post-training min": "{:.1f}", "pretraining tokens/s": "{:,.0f}",
                      "post-training tokens/s": "{:,.0f}"}, na_rep="–").hide(axis="index")

# %% [markdown]
# In all, {glue:text}`repro_total_min:,.0f` minutes of machine time for these results. A sweep's
# dry run (`p2law run --profile toy --dry-run`) estimates its time from these measured rates when it finds
# this manifest in its output folder.

# %% [markdown]
# Two choices matter most for reading our results:
#
# * **The budget is scaled to the model, not copied.** The paper post-trains with 0.1 to 1 token per
#   parameter of the base model; we keep that ratio rather than the absolute count, so a curve bends over
#   the same relative span. Because our bases saw only a few tokens per parameter before pruning, part of
#   what post-training buys them is ordinary further training; the ρ = 0 control (the unpruned base
#   post-trained with the same recipe) measures that part, which the paper's well-trained bases do not need.
# * **Rates are the paper's, granularity is ours.** A toy model has few layers, so one layer is a large
#   share of its parameters and depth pruning cannot hit every rate of Table 1; the achieved ρ is recorded
#   per run and is what the laws are fitted on. The pruning page lists target and achieved rates.
#
# Everything else (the pruning criteria, SparseGPT's update, the mask kept during training, the five
# parameterizations, the fitter, R², Huber and ASD) is the paper's method unchanged.

# %% [markdown]
# ## Running the paper's setting on GPUs
#
# The `paper` profile holds the paper's settings (the table's middle column). Its dry run lists the 48
# runs, their token counts and each model's parameter count from its published architecture, without
# downloading anything:
#
# ```bash
# p2law run --profile paper --dry-run
# ```
#
# On a machine with GPUs and access to the Hugging Face hub, the same command without `--dry-run`
# downloads each base model and its tokenizer (or reads them from a local folder given as
# `--model-path Llama-3.2-1B=/models/llama-3.2-1b`), streams SlimPajama through `datasets`, measures
# each base's $\mathcal{L}_0$, prunes, post-trains with the mask kept and writes the same checkpoint
# table as the toy sweep. The trainer is an `accelerate` loop, so several GPUs are used by starting it
# through `accelerate launch`; weights stay in float32 (AdamW at a learning rate of 2e-5 needs them) and
# bf16 compute comes from accelerate's mixed precision:
#
# ```bash
# accelerate launch --mixed_precision bf16 -m p2law.cli run --profile paper --out results/paper
# ```
#
# Each process takes an equal share of every 256k-token global batch, so the loss curve does not depend
# on the number of GPUs, and only the first process writes files. The sweep is resumable: stopped and
# started again, it skips finished runs and continues an interrupted one from its last checkpoint. Then
# every page of this book re-renders from those results with `PROFILE=paper make book`.
#
# What we could not test here, and a GPU user should know: this path has been run end to end only on a
# tiny local stand-in model (in the test suite); there is no gradient accumulation, so each GPU must hold
# its share of a 128-sequence batch of 2,048 tokens, and the 8B model needs FSDP or DeepSpeed
# (`accelerate config`) for its optimizer state; and the corpus loader reads at most 200,000 SlimPajama
# documents by default, fewer than a billion tokens, so the largest budgets would revisit data.
