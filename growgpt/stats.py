"""Paired 95 % intervals for the difference between two models scored on the same val batches.

growgpt.evaluate scores every checkpoint on fixed val batches (a pure function of seed and batch
index), and keeps each batch's sums: `batch_nats`, `batch_bytes` and `batch_tokens`. Two scores made
with the same batch settings therefore saw the very same windows, batch by batch, and their
difference can be judged against the spread of the per-batch differences (a paired comparison): the
windows' own difficulty cancels, which makes the interval far tighter than two separate intervals.
The trade-off: the interval covers evaluation-sampling noise only (which val windows were scored),
never seed-to-seed training noise (another seed would train another model). No scipy: the t quantile
is computed here (`t_quantile`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist
from typing import Any

from growgpt.metrics import LN2

CONFIDENCE = 0.95
SERIES_MAX_DF = 300  # above this the expansion is accurate to better than 1e-10 and needs no loop

# Why a pair of scores has no interval (PairedDifference.status).
PAIRED = "paired"
NO_BATCH_SUMS = "no per-batch sums"        # a grow.json written before evaluation kept them
DIFFERENT_BATCHES = "different batches"    # scored with other settings or on other windows
ONE_BATCH = "one batch"                    # N = 1: no spread to estimate

NOISE_COVERED = ("evaluation-sampling noise only (which val windows were scored); not seed-to-seed "
                 "training noise")


# --------------------------------------------------------------------------------------------------
# Student's t quantile
# --------------------------------------------------------------------------------------------------

def _central_probability(theta: float, df: int) -> float:
    """P(|T| ≤ √df · tan θ) for Student's T with `df` (integer ≥ 1) degrees of freedom (A&S 26.7.3/4)."""
    sin, cos = math.sin(theta), math.cos(theta)
    cos2 = cos * cos
    if df % 2 == 1:
        # odd ν: (2/π) [θ + sin θ (cos θ + (2/3) cos³ θ + …
        #         + (2·4···(ν−3)) / (1·3···(ν−2)) cos^(ν−2) θ)]
        term, total = cos, 0.0
        for k in range(1, (df - 1) // 2 + 1):  # (ν − 1)/2 terms; none for ν = 1
            total += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        return 2.0 / math.pi * (theta + sin * total)
    # even ν: sin θ [1 + (1/2) cos² θ + (1·3)/(2·4) cos⁴ θ + …
    #         + (1·3···(ν−3)) / (2·4···(ν−2)) cos^(ν−2) θ]
    term, total = 1.0, 0.0
    for k in range(1, df // 2 + 1):  # ν/2 terms
        total += term
        term *= cos2 * (2 * k - 1) / (2 * k)
    return sin * total


@cache
def t_quantile(probability: float, df: float) -> float:
    """The `probability` quantile (0.5 < probability < 1) of Student's t with `df` degrees of freedom.

    df is a positive integer or math.inf (the normal distribution). t_quantile(0.975, 19) = 2.093…,
    t_quantile(0.975, 4) = 2.776…, t_quantile(0.975, math.inf) = 1.959964…

    Student's t distribution function for an integer number of degrees of freedom has a closed form
    (Abramowitz & Stegun 26.7.3/26.7.4, a finite sum in cos θ with t = √ν tan θ); the quantile is found
    by bisection on θ, to machine precision, for ν ≤ 300, and from the Cornish–Fisher expansion around
    the normal quantile (A&S 26.7.5, terms to 1/ν⁴; error below 1e-10) beyond.
    """
    if not 0.5 < probability < 1.0:
        raise ValueError(f"probability must be in (0.5, 1), got {probability}")
    if df != math.inf and (df < 1 or df != int(df)):
        raise ValueError(f"degrees of freedom must be a positive integer or inf, got {df}")
    z = NormalDist().inv_cdf(probability)
    if df == math.inf:
        return z
    df = int(df)
    if df > SERIES_MAX_DF:
        z2 = z * z
        g1 = z * (z2 + 1) / 4
        g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
        g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
        g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
        return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4
    target = 2.0 * probability - 1.0  # P(|T| ≤ t) for the two-sided quantile
    low, high = 0.0, math.pi / 2      # P rises from 0 to 1 as θ goes from 0 to π/2
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):  # the bracket is as narrow as floats allow
            break
        if _central_probability(mid, df) < target:
            low = mid
        else:
            high = mid
    return math.sqrt(df) * math.tan((low + high) / 2)


# --------------------------------------------------------------------------------------------------
# The paired difference of two scores
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairedDifference:
    """new − old of one metric between two scores, with a 95 % paired t-interval when there is one.

    status: PAIRED (diff, half_width set), ONE_BATCH (diff set, no width), NO_BATCH_SUMS or
    DIFFERENT_BATCHES (neither). batches: N, the number of val batches paired.
    """

    metric: str
    status: str
    diff: float | None = None
    half_width: float | None = None
    batches: int = 0

    @property
    def has_interval(self) -> bool:
        return self.status == PAIRED

    @property
    def low(self) -> float | None:
        return self.diff - self.half_width if self.has_interval else None

    @property
    def high(self) -> float | None:
        return self.diff + self.half_width if self.has_interval else None

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below 0: a difference beyond evaluation noise."""
        return self.has_interval and (self.low > 0 or self.high < 0)

    @property
    def rose(self) -> bool:
        """A rise beyond evaluation noise (the interval is above 0)."""
        return self.has_interval and self.low > 0

    @property
    def fell(self) -> bool:
        """A fall beyond evaluation noise (the interval is below 0)."""
        return self.has_interval and self.high < 0


def _numbers(values: Any) -> list[float] | None:
    """A per-batch list as floats; None when it is missing or holds anything but finite numbers."""
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def _drawn_differently(old_batches: Any, new_batches: Any) -> bool:
    """Whether two descriptions of how batches were drawn disagree on a key both give."""
    if not isinstance(old_batches, dict) or not isinstance(new_batches, dict):
        return False
    return any(old_batches[key] != new_batches[key] for key in old_batches.keys() & new_batches.keys())


def paired_difference(old: dict | None, new: dict | None, metric: str, old_batches: Any = None,
                      new_batches: Any = None, confidence: float = CONFIDENCE) -> PairedDifference:
    """new − old in `metric` ("bpb" or "loss") over the batches both scores were made on.

    One convention, used everywhere in the report. A score's figure is a ratio of sums: bpb = Σ nats ÷
    (Σ bytes × ln 2), loss = Σ nats ÷ Σ tokens — the numbers in the report's matrices. The point estimate
    is the difference of those two figures, computed from the per-batch lists:

        D = Σ_i (new_nats_i − old_nats_i) ÷ Σ_i w_i,   w_i = bytes_i × ln 2 (bpb) or tokens_i (loss),

    which is exactly the difference of the matrix numbers (both scores have the same w_i: same windows).
    Its standard error comes from the delta method for a ratio estimator: with the per-batch residuals
    r_i = (new_nats_i − old_nats_i) − D × w_i and their sample variance s² = Σ r_i² ÷ (N − 1),

        SE = s ÷ (w̄ × √N),   w̄ = Σ w_i ÷ N,   and the interval is D ± t(0.975, N − 1) × SE.

    When every batch has the same denominator — always for the loss (every batch has batch_size ×
    block_size targets), nearly so for bpb — this is the textbook paired t-interval of the per-batch
    differences d_i = (new_nats_i − old_nats_i) ÷ w_i: D is their mean and SE their standard error.
    Two identical models give exactly 0 ± 0; a shift that is the same on every batch (d_i = c for all
    i) gives exactly c with zero width. Bits per byte use batch_bytes; the two metrics are never mixed:
    a score lacking what `metric` needs yields no interval.

    `old` and `new` are score dicts of growgpt.evaluate (batch_nats, batch_bytes, batch_tokens).
    `old_batches` / `new_batches` describe how each score's batches were drawn (evaluate's
    "batches": count, batch_size, block_size, seed; callers may add more, e.g. the union's parts);
    when a key both describe differs, or the per-batch lists show other windows (other lengths, other
    token or byte counts per batch), the scores are not paired: status DIFFERENT_BATCHES.
    """
    if metric not in ("bpb", "loss"):
        raise ValueError(f"metric must be 'bpb' or 'loss', got {metric!r}")
    old, new = old or {}, new or {}
    denominator_key = "batch_bytes" if metric == "bpb" else "batch_tokens"
    old_nats, new_nats = _numbers(old.get("batch_nats")), _numbers(new.get("batch_nats"))
    old_den, new_den = _numbers(old.get(denominator_key)), _numbers(new.get(denominator_key))
    if None in (old_nats, new_nats, old_den, new_den):
        return PairedDifference(metric, NO_BATCH_SUMS)
    if _drawn_differently(old_batches, new_batches):
        return PairedDifference(metric, DIFFERENT_BATCHES)
    # The same windows have the same number of targets and decode to the same bytes: anything else
    # means other windows (another seed, batch size or val set), whatever the metadata says.
    if len(old_nats) != len(new_nats) or old_den != new_den or len(old_den) != len(old_nats):
        return PairedDifference(metric, DIFFERENT_BATCHES)
    old_tokens, new_tokens = _numbers(old.get("batch_tokens")), _numbers(new.get("batch_tokens"))
    if old_tokens is not None and new_tokens is not None and old_tokens != new_tokens:
        return PairedDifference(metric, DIFFERENT_BATCHES)
    if any(w <= 0 for w in old_den):
        return PairedDifference(metric, NO_BATCH_SUMS)  # a batch of no bytes: no per-batch figure

    scale = LN2 if metric == "bpb" else 1.0
    weights = [w * scale for w in old_den]                        # w_i: bytes × ln 2, or tokens
    deltas = [b - a for a, b in zip(old_nats, new_nats)]          # per-batch nats, new − old
    n = len(deltas)
    per_batch = [d / w for d, w in zip(deltas, weights)]          # d_i: the per-batch metric difference
    if max(per_batch) == min(per_batch):
        # The same shift on every batch (0 for identical models): D is that shift, the spread nil.
        # Taken as is rather than through the sums below, so that no rounding blurs "exactly".
        return PairedDifference(metric, PAIRED if n >= 2 else ONE_BATCH, per_batch[0],
                                0.0 if n >= 2 else None, n)
    diff = sum(deltas) / sum(weights)                             # the difference of the ratios of sums
    if n < 2:
        return PairedDifference(metric, ONE_BATCH, diff, None, n)
    residuals = [d - diff * w for d, w in zip(deltas, weights)]   # linearized ratio estimator (delta method)
    variance = sum(r * r for r in residuals) / (n - 1)
    standard_error = math.sqrt(variance / n) / (sum(weights) / n)
    half_width = t_quantile(0.5 + confidence / 2, n - 1) * standard_error
    return PairedDifference(metric, PAIRED, diff, half_width, n)
