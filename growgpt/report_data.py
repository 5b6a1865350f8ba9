"""What the grow report reads: `RUN_DIR/grow.json`, its scores, chains and costs.

`load_results` reads the file `growgpt grow` writes (a missing or unreadable one is a UserError); the
rest are small accessors the analysis, the sections and the plot share, written to take an older
grow.json as it is (a score without bits per byte, a stage without a schedule) rather than fail.
`pair`, `totals` and `lineage_tokens` are public: bench/grow_science.py uses them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from growgpt import stats
from growgpt.errors import UserError

GROW_FILE = "grow.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
LOSS_PNG = "loss_curves.png"

SCHEDULE_LABELS = {"cosine": "grow-cosine", "wsd": "grow-WSD"}


def load_results(run_dir: str | Path) -> dict:
    """Read `run_dir/grow.json`; a missing or unreadable file is a UserError."""
    run_dir = Path(run_dir)
    path = run_dir / GROW_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: no {GROW_FILE} \u2014 run `growgpt grow PLAN.toml --workdir ...` first")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(results, dict) or not isinstance(results.get("stages", []), list):
        raise UserError(f"{path}: not a grow results file (expected an object with a 'stages' list)")
    results.setdefault("stages", [])
    results.setdefault("baseline", None)
    if not results.get("parts"):  # derive the part order from what the stages name
        parts: list[str] = []
        for stage in _scored_rows(results):
            for p in list(stage.get("parts", [])) + list((stage.get("eval") or {}).get("parts") or {}):
                if str(p) not in parts:
                    parts.append(str(p))
        results["parts"] = parts
    results["parts"] = [str(p) for p in results["parts"]]
    return results


def loss_of(ev: dict | None, metric: str = "loss") -> float | None:
    """A score's val loss (metric "loss") or bits per byte ("bpb"); None when it has none."""
    value = (ev or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _scored_rows(results: dict) -> list[dict]:
    return list(results.get("stages") or []) + ([results["baseline"]] if results.get("baseline") else [])


def part_eval(stage: dict, part: str) -> dict | None:
    return ((stage.get("eval") or {}).get("parts") or {}).get(part)


def union_eval(stage: dict) -> dict | None:
    return (stage.get("eval") or {}).get("union")


def score_of(row: dict, part: str | None) -> dict | None:
    """One part's score of a stage (or the baseline); the union's for part None."""
    return union_eval(row) if part is None else part_eval(row, part)


def compare_metric(results: dict) -> str:
    """"bpb" when every recorded score (each part and the union, of every stage and the baseline) has
    bits per byte, else "loss": the verdicts never mix the two."""
    for row in _scored_rows(results):
        scores = list(((row.get("eval") or {}).get("parts") or {}).values()) + [union_eval(row)]
        if any(loss_of(ev) is not None and loss_of(ev, "bpb") is None for ev in scores):
            return "loss"
    return "bpb"


def extended_metric(results: dict) -> str:
    """The metric of the schedule and seed comparisons: the report's (compare_metric), and "loss" when
    a union score of a variant or a repeat lacks bits per byte."""
    metric = compare_metric(results)
    if metric == "bpb":
        extra = [s for v in (results.get("variants") or {}).values() if isinstance(v, dict)
                 for s in v.get("stages") or []]
        extra += [s for r in results.get("repeats") or [] for s in r.get("stages") or []]
        extra += list((results.get("baseline") or {}).get("repeats") or [])
        if any(loss_of(union_eval(r)) is not None and loss_of(union_eval(r), "bpb") is None for r in extra):
            return "loss"
    return metric


def stage_bytes_per_token(results: dict) -> float | None:
    """UTF-8 bytes per token of the union's val set (the whole set when the manifests count its bytes,
    else the scored windows), from the last row that has it."""
    for row in reversed(_scored_rows(results)):
        union = union_eval(row) or {}
        tokens, n_bytes = union.get("val_tokens"), union.get("val_bytes")
        if isinstance(tokens, int) and tokens > 0 and isinstance(n_bytes, int) and n_bytes > 0:
            return n_bytes / tokens
        if isinstance(union.get("bytes_per_token"), (int, float)):
            return float(union["bytes_per_token"])
    return None


def stage_name(stage: dict, k: int) -> str:
    """A stage's name; "stage k+1" for an entry without one."""
    return str(stage.get("name", f"stage {k + 1}"))


def stage_parts(stage: dict) -> list[str]:
    return [str(p) for p in stage.get("parts", [])]


def new_parts_of(stages: list[dict], k: int) -> list[str]:
    stage = stages[k]
    if stage.get("new_parts") is not None:
        return [str(p) for p in stage["new_parts"]]
    seen = seen_before(stages, k)
    return [p for p in stage_parts(stage) if p not in seen]


def seen_before(stages: list[dict], k: int) -> set[str]:
    """Parts trained on in the stages before stage k."""
    return {p for s in stages[:k] for p in stage_parts(s)}


def untrained_parts(results: dict) -> list[str]:
    """The plan's parts no stage has trained on yet, in part order."""
    stages = results["stages"]
    return [p for p in results["parts"] if p not in seen_before(stages, len(stages))]


def baseline_name(base: dict) -> str:
    """The jump baseline's name; "jump" for an entry without one."""
    return str(base.get("name") or "jump")


def percent_change(old: float, new: float) -> float:
    return (new - old) / old * 100.0 if old else math.inf if new > old else 0.0


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --------------------------------------------------------------------------------------------------
# Pairs of scores
# --------------------------------------------------------------------------------------------------

def _drawn(row: dict, part: str | None) -> dict | None:
    """How a score's val batches were drawn: the score's own record (grow stamps each score), else its
    row's; for the union also which corpus parts it covers."""
    ev = row.get("eval") or {}
    drawn = (score_of(row, part) or {}).get("batches") or ev.get("batches")
    drawn = dict(drawn) if isinstance(drawn, dict) else {}
    if part is None and isinstance(ev.get("union_parts"), list):
        drawn["union_parts"] = sorted(map(str, ev["union_parts"]))
    return drawn or None


def pair(old_row: dict, new_row: dict, part: str | None, metric: str) -> stats.PairedDifference:
    """new − old of one part's score (the union's for part None) of two stage entries of grow.json, with
    its paired interval if there is one. metric: "bpb" or "loss"."""
    return stats.paired_difference(score_of(old_row, part), score_of(new_row, part), metric, _drawn(old_row, part),
                                   _drawn(new_row, part))


# --------------------------------------------------------------------------------------------------
# Chains: schedules, wsd branches, costs
# --------------------------------------------------------------------------------------------------

def cooldown_branch_of(stage: dict) -> dict | None:
    """A wsd stage's cooldown branch (its own iterations, tokens, time); None for a cosine stage."""
    branch = stage.get("branch")
    return branch if isinstance(branch, dict) else None


def totals(stages: list[dict], key: str) -> float | None:
    """The sum of `key` ("tokens", "seconds") over a chain's stages, wsd cooldown branches included: what
    the chain spent in all. None when a stage lacks the figure."""
    values = [s.get(key) for s in stages] + [b.get(key) for b in map(cooldown_branch_of, stages) if b is not None]
    return sum(values) if values and all(is_number(v) for v in values) else None


def lineage_tokens(stages: list[dict]) -> float | None:
    """Tokens the chain's final model has seen: every stage's trunk (or whole cosine stage), plus, for a
    wsd chain, the last stage's cooldown branch only (each branch is a side track; the next stage
    continues the trunk)."""
    trunk = [s.get("tokens") for s in stages]
    if not stages or not all(is_number(v) for v in trunk):
        return None
    last = cooldown_branch_of(stages[-1])
    if last is None:
        return sum(trunk)
    return sum(trunk) + last["tokens"] if is_number(last.get("tokens")) else None


def schedule_label(schedule: str) -> str:
    return SCHEDULE_LABELS.get(schedule, f"grow-{schedule}")


def main_schedule(results: dict) -> str:
    """The main chain's schedule: results["schedule"], else its stages', else cosine (an older grow.json)."""
    named = results.get("schedule") or next((s.get("schedule") for s in results.get("stages") or []
                                             if isinstance(s.get("schedule"), str)), None)
    return str(named or "cosine")


def schedule_chains(results: dict) -> dict[str, list[dict]]:
    """schedule -> the stage entries of the chain trained with it: the main chain, then the variants."""
    chains: dict[str, list[dict]] = {}
    if results.get("stages"):
        chains[main_schedule(results)] = list(results["stages"])
    for key, variant in (results.get("variants") or {}).items():
        # Only a finished chain of the same stages: an interrupted one's last stage is not its final model.
        if isinstance(variant, dict) and isinstance(variant.get("stages"), list) and variant["stages"] and \
                [s.get("name") for s in variant["stages"]] == [s.get("name") for s in results.get("stages") or []]:
            chains.setdefault(str(variant.get("schedule") or key), list(variant["stages"]))
    return chains
