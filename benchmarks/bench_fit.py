"""Seconds per fit for both fitting methods over all Table 2 cells' worth of synthetic curves.

3 forms x 3 pruning methods x 2 families = 18 fits per method. Each cell has 3 model sizes x 3 rates
(one "rate" for 2:4) x 20 checkpoints drawn from a known law with noise, the size of the paper's data.
Run: python benchmarks/bench_fit.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from law_fixtures import TRUE_L1, synthetic_table  # noqa: E402
from p2law import fit  # noqa: E402

TRUE_24 = {"N_C": 1.0, "D_C": 0.9, "E": 0.3, "alpha": 0.1, "beta": 0.2, "delta": 0.15}


def main() -> None:
    cells = []
    for family, sizes in (("llama", (1.2e9, 3.2e9, 8.0e9)), ("qwen2", (0.5e9, 1.5e9, 3.1e9))):
        for method in ("depth", "width", "2:4"):
            params = TRUE_24 if method == "2:4" else TRUE_L1
            df = synthetic_table(params=params, method=method, family=family, sizes=sizes, noise=0.002)
            cells += [(family, method, form, df) for form in ("L1", "L2", "L3")]
    print(f"{len(cells)} cells, {sum(len(c[3]) for c in cells) // len(cells)} points per cell on average")
    for fit_method in ("lm", "huber-log"):
        times, r2s = [], []
        for family, method, form, df in cells:
            t = time.perf_counter()
            res = fit.fit(df, form, fit_method)
            times.append(time.perf_counter() - t)
            r2s.append(res.r2)
        print(f"{fit_method:>9}: {sum(times) / len(times):.3f} s per fit (max {max(times):.3f} s, "
              f"total {sum(times):.1f} s); median R2 {sorted(r2s)[len(r2s) // 2]:.4f}")


if __name__ == "__main__":
    main()
