"""Benchmark of the Black-Scholes-Merton Greeks kernel against its plain numpy twin.

    .venv/bin/python benchmarks/greeks.py                 # 1M options, best of 7
    .venv/bin/python benchmarks/greeks.py --options 100000 --repeats 3

``bench_greeks`` times ``sim.engine.greeks.black_scholes`` (price and four Greeks per option,
one fused pass) and the vectorised numpy twin of ``tests/engine/test_greeks.py`` on the same random
book, checks that they agree, and returns the figures as a dict (printed as JSON here).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from timing import timed

from sim.engine.greeks import CALL, PUT, black_scholes

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the twin lives with the tests (``tests`` is a package)
    sys.path.insert(0, str(ROOT))

from tests.engine.test_greeks import black_scholes_numpy  # noqa: E402

N_INPUTS = 7  # kind (int64), spot, strike, t, vol, rate, dividend (float64)
N_OUTPUTS = 5  # price, delta, gamma, vega, theta (float64)
BYTES_PER_OPTION = 8 * (N_INPUTS + N_OUTPUTS)
AGREEMENT = 1e-10  # relative to each output's scale: kernel and twin compute the same thing


def make_options(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A random book of ``n`` European options on ETH-like underlyings.

    Calls and puts half and half; spot lognormal around 2,000; strike / spot log-uniform in
    [0.5, 2]; 1 day to 1 year; vol 0.3 to 1.5; rate 0 to 8%; staking yield 0 to 5%.
    """
    rng = np.random.default_rng(seed)
    spot = rng.lognormal(np.log(2000.0), 0.5, n)
    return {
        "kind": rng.choice(np.array([CALL, PUT], dtype=np.int64), n),
        "spot": spot,
        "strike": spot * np.exp(rng.uniform(np.log(0.5), np.log(2.0), n)),
        "t": rng.uniform(1.0 / 365.0, 1.0, n),
        "vol": rng.uniform(0.3, 1.5, n),
        "rate": rng.uniform(0.0, 0.08, n),
        "dividend": rng.uniform(0.0, 0.05, n),
    }


def check_agreement(kernel_out: list[np.ndarray], twin_out: tuple[np.ndarray, ...],
                    book: dict[str, np.ndarray]) -> None:
    """Raise if the kernel and the twin disagree beyond ``AGREEMENT``."""
    delta = twin_out[1]
    # The price and theta are sums of terms of size |delta| spot that can cancel.
    scale = np.abs(delta) * book["spot"]
    for name, got, want in zip(("price", "delta", "gamma", "vega", "theta"), kernel_out,
                               twin_out, strict=True):
        floor = scale if name in ("price", "theta") else 0.0
        bound = np.maximum(AGREEMENT * np.maximum(np.abs(want), floor), 1e-300)
        if not np.all(np.abs(got - want) <= bound):
            raise RuntimeError(f"black_scholes and its numpy twin disagree on {name}")


def bench_greeks(n: int = 1_000_000, repeats: int = 7) -> dict:
    """Best-of-``repeats`` time of ``black_scholes`` and of the numpy twin on ``n`` options.

    Both run once untimed first (JIT load, page faults). The kernel writes into output arrays
    allocated outside the timed region; the twin allocates its own, as numpy code does.
    ``bytes_per_option`` counts the seven inputs and five outputs (8 bytes each), and the
    bandwidth is those bytes over the kernel's best time.
    """
    book = make_options(n)
    args = tuple(book.values())
    outs = [np.empty(n) for _ in range(N_OUTPUTS)]
    black_scholes(*args, *outs)
    twin = black_scholes_numpy(*args)
    check_agreement(outs, twin, book)
    del twin
    kernel_s = min(timed(black_scholes, *args, *outs) for _ in range(repeats))
    numpy_s = min(timed(black_scholes_numpy, *args) for _ in range(repeats))
    return {
        "options": n,
        "kernel_s": kernel_s,
        "numpy_s": numpy_s,
        "options_per_s": n / kernel_s,
        "speedup_vs_numpy": numpy_s / kernel_s,
        "bytes_per_option": BYTES_PER_OPTION,
        "bandwidth_gb_per_s": n * BYTES_PER_OPTION / kernel_s / 1e9,
    }


def main() -> None:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    result = bench_greeks(args.options, args.repeats)
    print(json.dumps(result, indent=2))
    print(f"black_scholes: {result['options_per_s'] / 1e6:.1f} M options/s, "
          f"{result['speedup_vs_numpy']:.2f}x the numpy twin, "
          f"{result['bandwidth_gb_per_s']:.2f} GB/s")


if __name__ == "__main__":
    main()
