"""`growgpt grow PLAN.toml --workdir W`: run a stage plan end to end, safe to re-run.

Each stage: fetch its parts (or take local dump files) -> extract -> prepare (only parts not yet
tokenized) -> train -> evaluate on every part's val set -> record in W/run/grow.json -> report
(the folder layout: growgpt.workspace).

How a stage continues the one before, the trade-off this module exists for: stage k starts from stage
k-1's final checkpoint (model, AdamW moments, iteration, RNG states) with a schedule of its own —
warmup, then cosine decay to min_lr over the stage's iters, from its first iteration — on a mixture of
its parts that replays the old ones (growgpt.data). Re-warm + re-decay + replay is what Ibrahim et al.
2024 (arXiv 2403.08763) found to match re-training on the union; nanoGPT's resume would keep the old,
decayed schedule and learn new data at min_lr. `schedule = "wsd"` (Hägele et al. 2024) instead trains
one constant-LR trunk and scores each stage as a cooldown branch off it, so adding data never
re-warms, at the price of a cooldown paid at every stage. `compare_schedules` and `repeat` train the
other schedule's chain and seed repeats; every model is scored on the same val batches, so the
report pairs any two.

Idempotence: a stage is done once grow.json records it with the same signature (the plan up to that
stage); a stage whose plan changed is moved aside (never deleted) and redone with every later one.
Parts that arrive after a stage are scored on its final checkpoint at the end of the run, so every
row of the report covers every part.
"""

from __future__ import annotations

import json
from pathlib import Path

from growgpt import checkpoint as ckpt_io
from growgpt.config import TrainConfig, cooldown_length
from growgpt.errors import UserError
from growgpt.fsutil import atomic_write_json
from growgpt.metrics import perplexity
from growgpt.plan import Plan, Stage, check_parts_exist, load_plan
from growgpt.report import GROW_FILE as RESULTS  # the file the report reads
from growgpt.workspace import Sources, Workspace

STAGE_MARK = "stage.json"
BRANCH_DIR = "cooldown"  # a wsd stage's cooldown branch: run/stages/NAME/cooldown (moved aside with its trunk)
SCHEDULES = ("cosine", "wsd")  # what a grow chain can use (config's "constant" is the wsd trunk's own)
TRAIN_DEFAULT_SEED = TrainConfig.seed
TRAIN_DEFAULT_COOLDOWN = TrainConfig.cooldown_fraction


def _log(verbose: bool, message: str) -> None:
    if verbose:
        print(f"[grow] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# Parts: getting them to token shards


def _stems(files: list[Path]) -> list[str]:
    from growgpt.wiki.tasks import part_stem

    return [part_stem(f.name) for f in files]


def ensure_parts(plan: Plan, ws: Workspace, sources: Sources, parts: list[int], progress: bool,
                 verbose: bool) -> dict[int, list[str]]:
    """fetch -> extract -> prepare the given plan parts; returns part number -> corpus part names."""
    from growgpt.prepare import prepare_parts
    from growgpt.wiki.extract import extract

    files = {part: sources.files(part, progress) for part in parts}
    stems = {part: _stems(paths) for part, paths in files.items()}
    todo = [str(f) for part in parts for f in files[part]]
    options = {} if plan.data.min_chars < 0 else {"min_chars": plan.data.min_chars}
    _log(verbose, f"extract parts {', '.join(map(str, parts))} -> {ws.text}")
    extract(todo, str(ws.text), progress=progress, **options)
    wanted = [s for part in parts for s in stems[part]]
    for m in prepare_parts(ws.text, ws.tokens, tokenizer=plan.data.tokenizer, val_fraction=plan.data.val_fraction,
                           seed=plan.data.split_seed, progress=progress, parts=wanted):
        _log(verbose, f"tokens {m['part']}: {'unchanged' if m['skipped'] else 'tokenized'}, "
                      f"train {m['splits']['train']['tokens']:,}, val {m['splits']['val']['tokens']:,}")
    return stems


def prepared_parts(plan: Plan, ws: Workspace, sources: Sources) -> dict[int, list[str]]:
    """Plan parts whose every dump file already has token shards."""
    from growgpt.data import corpus_parts

    have = set(corpus_parts(ws.tokens))
    out = {}
    for part in plan.all_parts:
        if sources.listing is None:
            stems = _stems(plan.data.files[part - 1])
        else:
            stems = _stems([Path(f.name) for f in sources.listing.part(part).files if not f.is_index])
        if stems and all(s in have for s in stems):
            out[part] = stems
    return out


# --------------------------------------------------------------------------------------------
# Disk check


def check_disk(plan: Plan, ws: Workspace, sources: Sources, stage: Stage, new_parts: list[int]) -> None:
    from growgpt.estimate import checkpoint_bytes, disk_bytes, model_params
    from growgpt.tokenizer import FIXED_VOCAB_SIZES
    from growgpt.wiki.dumps import free_bytes

    compressed = sum(sources.compressed_bytes(p) for p in new_parts)
    download = sum(sources.download_bytes(p) for p in new_parts)  # only files not on disk yet
    disk = disk_bytes(compressed, plan.data.tokenizer)
    derived = disk["extracted"] + disk["tokens"]
    m = plan.model
    n_params = model_params(m["n_layer"], m["n_head"], m["n_embd"], m["block_size"],
                            FIXED_VOCAB_SIZES[plan.data.tokenizer], m.get("bias", True))
    checkpoints = checkpoint_bytes(n_params)["total"]  # ckpt.pt, best.pt, model.safetensors
    need = download + derived + checkpoints
    ws.root.mkdir(parents=True, exist_ok=True)
    free = free_bytes(ws.root)
    if need > free:
        gb = lambda n: f"{n / 1e9:.2f} GB"  # noqa: E731
        raise UserError(f"not enough disk for stage '{stage.name}' on {ws.root}: need {gb(need)} "
                        f"({gb(download)} download + {gb(derived)} text and tokens + {gb(checkpoints)} checkpoints), "
                        f"free {gb(free)}")


# --------------------------------------------------------------------------------------------
# Training a stage


def _stage_settings(plan: Plan, ws: Workspace, stage: Stage, stems: list[str], new_stems: list[str], start: int,
                    out_dir: Path, schedule: str = "cosine", first: bool = True, seed_offset: int = 0) -> dict:
    """The train settings of one stage. cosine: warmup from ~0 and cosine decay over the stage's
    iters, counted from its first iteration. wsd: the stage is a stretch of the trunk, at constant
    learning_rate ("constant" schedule) with the first stage's warmup only; its cooldown is a branch
    (_branch_settings)."""
    train = dict(plan.train)
    settings = {**plan.model, **train}
    settings.update(
        dataset=str(ws.tokens), parts=",".join(stems), out_dir=str(out_dir),
        learning_rate=stage.learning_rate, warmup_iters=stage.warmup_iters,
        min_lr=_min_lr(plan, stage), replay=stage.replay,
        new_parts=",".join(new_stems) if stage.new_fraction > 0 else "",
        new_fraction=stage.new_fraction, max_iters=start + stage.iters, lr_decay_iters=stage.iters,
        schedule="cosine", schedule_start=start, always_save_checkpoint=True,
        eval_interval=train.get("eval_interval", max(1, stage.iters // 5)),
        seed=train.get("seed", TRAIN_DEFAULT_SEED) + seed_offset,
    )
    if schedule == "wsd":
        settings.update(schedule="constant", warmup_iters=stage.warmup_iters if first else 0)
    return settings


def _min_lr(plan: Plan, stage: Stage) -> float:
    return stage.min_lr if stage.min_lr is not None else plan.train.get("min_lr", stage.learning_rate / 10)


def cooldown_iters(plan: Plan, stage: Stage) -> int:
    """How long a wsd stage's cooldown branch trains: cooldown_fraction of the stage's iters, at least 1."""
    return cooldown_length(stage.iters, plan.train.get("cooldown_fraction", TRAIN_DEFAULT_COOLDOWN))


def _branch_settings(plan: Plan, trunk: dict, start: int, iters: int, out_dir: Path) -> dict:
    """A cooldown branch off the trunk at iteration `start`: the stage's mixture and learning_rate
    decaying to min_lr over `iters`, shaped cooldown_shape — config.cooldown_branch's schedule, the one
    definition of a branch."""
    from growgpt.config import cooldown_branch, load_config

    branch = cooldown_branch(load_config(base=trunk), start, iters)
    return {**branch.to_dict(), "out_dir": str(out_dir),
            "eval_interval": plan.train.get("eval_interval", max(1, iters // 2))}


def start_from(previous_ckpt: Path, target: Path) -> None:
    """Seed a stage folder with the previous stage's final state; a fresh best val loss."""
    state = ckpt_io.load(previous_ckpt)
    if state.get("optimizer") is None:
        raise UserError(f"{previous_ckpt} holds weights only (no optimizer state): the next stage cannot continue it")
    ckpt_io.check_entries(state, previous_ckpt, ckpt_io.RESUME_ENTRIES)  # name the file, not its copy
    state["best_val_loss"] = float("inf")
    ckpt_io.atomic_save(state, target)


def run_training(settings: dict, out_dir: Path, signature: str, init_from: str, previous_ckpt: Path | None,
                 verbose: bool) -> dict:
    """Train one stage in out_dir, resuming what an earlier attempt of the same stage left there.

    A folder that cannot be continued is moved aside to `<stage dir>.old-<time>` (never deleted,
    and always said, whatever `verbose`): one recorded for another signature (the plan changed), and
    one holding outputs of an attempt that never reached its first checkpoint when the stage would
    start without one (the trainer refuses to start from scratch over an earlier run)."""
    from growgpt.config import load_config
    from growgpt.train import earlier_run_files, move_aside, train

    mark = out_dir / STAGE_MARK
    checkpoint = out_dir / ckpt_io.CHECKPOINT
    if out_dir.exists():
        try:
            recorded = json.loads(mark.read_text())["signature"]
        except (OSError, ValueError, KeyError, TypeError):
            recorded = None
        if recorded != signature:
            why = "the plan changed since it was trained"
        elif not checkpoint.is_file() and previous_ckpt is None and earlier_run_files(out_dir):
            why = "an earlier attempt stopped before its first checkpoint"
        else:
            why = None
        if why:
            moved = move_aside(out_dir)
            print(f"[grow] {out_dir} moved aside to {moved}: {why}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(mark, {"signature": signature})
    if checkpoint.is_file():
        settings["init_from"] = "resume"
    elif previous_ckpt is not None:
        start_from(previous_ckpt, checkpoint)
        settings["init_from"] = "resume"
    else:
        settings["init_from"] = init_from
    cfg = load_config(base=settings)
    result = train(cfg, verbose=verbose)
    return {"cfg": cfg, **result}


def run_stats(out_dir: Path, cfg, start: int, end: int) -> dict:
    """A stage's cost from the train records of iterations start..end-1 in its metrics.jsonl.

    Each record's ms_per_iter is the mean step time since the previous record, evaluation and
    checkpoint time excluded; it stands for the iterations since the previous record (the first for
    those since `start`). seconds: the sum of those, the time spent in training steps. tokens_per_s
    and mfu: the figures the console prints per log line, taken over the whole stage: the records'
    figures weighted by their time, which is the stage's tokens (training FLOPs / peak) divided by
    seconds. mfu is None when any record has none (no peak figure, or one evidently too low) or one
    above 1: then part of the stage was measured against a wrong peak, and no figure for the whole
    stage is trustworthy."""
    from growgpt.metrics import read_metrics

    by_iter = {r["iter"]: r for r in read_metrics(out_dir) if r.get("kind") == "train" and start <= r["iter"] < end}
    tokens_per_iter = cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps
    seconds = tokens = mfu_seconds = 0.0  # mfu_seconds: the sum of each record's MFU x its seconds
    mfu_known, previous = bool(by_iter), start - 1
    for it in sorted(by_iter):
        record = by_iter[it]
        record_seconds = record["ms_per_iter"] / 1000 * max(1, int(it - previous))
        previous = it
        seconds += record_seconds
        tokens += record["tokens_per_s"] * record_seconds
        if record.get("mfu") is None or record["mfu"] > 1:  # above 1: written before MFU was checked
            mfu_known = False
        else:
            mfu_seconds += record["mfu"] * record_seconds
    mean_mfu = mfu_seconds / seconds if mfu_known and seconds > 0 else None  # at most 1, as every record's
    return {"tokens": (end - start) * tokens_per_iter, "seconds": round(seconds, 2),
            "tokens_per_s": tokens / seconds if seconds > 0 else None,
            "mfu": mean_mfu}


def eval_batch_size(plan: Plan) -> int:
    return plan.eval.batch_size or plan.train.get("batch_size", TrainConfig.batch_size)


def _evaluate(plan: Plan, ws: Workspace, checkpoint: Path, parts: dict[int, list[str]], union: list[str],
              stage_union: list[str], device: str) -> dict:
    from growgpt.evaluate import evaluate_parts

    unions = {"union": union}
    if stage_union:
        unions["stage_union"] = stage_union
    ev = evaluate_parts(checkpoint, ws.tokens, {str(p): s for p, s in parts.items()}, unions,
                        batches=plan.eval.batches, batch_size=eval_batch_size(plan), seed=plan.eval.seed,
                        device=device)
    _stamp_batches(ev)
    ev["union_parts"] = sorted(union)
    return ev


def _stamp_batches(ev: dict) -> None:
    """Copy how the batches were drawn into each score: scores added later (fill_matrix) may have been
    drawn with other [eval] settings, and the report pairs two scores only when they saw the same batches."""
    for score in [*ev["parts"].values(), ev.get("union"), ev.get("stage_union")]:
        if score is not None:
            score["batches"] = dict(ev["batches"])


def _current_score(score: dict | None, row_batches: dict | None, plan: Plan) -> bool:
    """Whether a recorded score has its per-batch sums (for paired intervals) and was drawn with the plan's
    [eval] settings (its own record of them, else its row's); else fill_matrix scores it again."""
    if not score or "batch_nats" not in score or "bpb" not in score:
        return False
    drawn = score.get("batches") or row_batches or {}
    return (drawn.get("count"), drawn.get("batch_size"), drawn.get("seed")) == \
        (plan.eval.batches, eval_batch_size(plan), plan.eval.seed)


def _samples(plan: Plan, run_dir: Path, device: str) -> list[dict]:
    from growgpt.sample import sample

    out = []
    for prompt in plan.eval.prompts:
        text = sample(str(run_dir), start=prompt, num_samples=1, max_new_tokens=plan.eval.max_new_tokens,
                      temperature=plan.eval.temperature, top_k=plan.eval.top_k, seed=plan.eval.seed, device=device,
                      checkpoint="last")[0]
        out.append({"prompt": prompt, "text": text})
    return out


# --------------------------------------------------------------------------------------------
# The whole plan


def _load_results(ws: Workspace, plan: Plan) -> dict:
    path = ws.run / RESULTS
    if path.is_file():
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(results, dict) and isinstance(results.get("stages"), list):
                return results
        except ValueError:
            pass
    return {"title": plan.title, "plan": str(plan.path), "parts": [], "stages": [], "baseline": None}


def _save_results(ws: Workspace, results: dict) -> None:
    ws.run.mkdir(parents=True, exist_ok=True)
    atomic_write_json(ws.run / RESULTS, results)


def grow(plan_path: str | Path, workdir: str | Path, baseline: str | None = None, progress: bool = True,
         verbose: bool = True, compare_schedules: bool = False, repeat: int = 1, repeat_grow: bool = False) -> dict:
    """Run every stage of the plan that is not done yet; return the results (grow.json).

    baseline "jump": also train from scratch on all the plan's parts for all stages' iterations.
    compare_schedules: also run the stages with the other schedule (cosine <-> wsd) as a second chain
    in run/variants/SCHEDULE/, for the report's grow-cosine / grow-WSD / jump comparison.
    repeat K >= 2: train the jump baseline K times with seeds seed, seed+1, ... (run/baseline/jump-seedN/),
    and with repeat_grow the plan's chain too (run/repeats/seedN/), for the seed-to-seed spread."""
    plan = load_plan(plan_path)
    if baseline not in (None, "jump"):
        raise UserError(f"--baseline must be 'jump', got {baseline!r}")
    if not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise UserError(f"--repeat must be a whole number from 1 to {MAX_REPEAT}, got {repeat!r}")
    if repeat > 1 and baseline != "jump" and not repeat_grow:
        raise UserError("--repeat trains the jump baseline (and with --repeat-grow the stages) again with other "
                        "seeds: add --baseline jump or --repeat-grow")
    ws = Workspace(workdir)
    sources = Sources(plan, ws)
    check_parts_exist(plan, sources.available)
    device = plan.train.get("device", "auto")
    results = _load_results(ws, plan)
    schedule = plan_schedule(plan)
    results["title"], results["parts"], results["schedule"] = plan.title, [str(p) for p in plan.all_parts], schedule
    drop_stale(plan, results)

    def save_stages(done: list[dict]) -> None:
        if (results.get("baseline") or {}).get("signature") != jump_signature(plan):
            results["baseline"] = None  # trained for other stages: never shown beside these
        results["stages"] = done
        _save_results(ws, results)

    _run_chain(plan, ws, sources, results["stages"], ws.run / "stages", schedule, 0, save_stages, device, progress,
               verbose, label="")
    if compare_schedules:
        other = next(s for s in SCHEDULES if s != schedule)
        variants = results.setdefault("variants", {})
        recorded = (variants.get(other) or {}).get("stages") or []

        def save_variant(done: list[dict]) -> None:
            variants[other] = {"schedule": other, "stages": done}
            _save_results(ws, results)

        _run_chain(with_schedule(plan, other), ws, sources, recorded, ws.run / "variants" / other, other, 0,
                   save_variant, device, progress, verbose, label=f"{other} ")
    if repeat_grow and repeat > 1:
        by_seed = {r.get("seed_offset"): r for r in results.get("repeats") or []}
        runs = []
        for offset in range(1, repeat):
            recorded = (by_seed.get(offset) or {}).get("stages") or []

            def save_repeat(done: list[dict], offset=offset) -> None:
                runs_now = [r for r in runs if r["seed_offset"] != offset] + [{"seed_offset": offset, "stages": done}]
                results["repeats"] = sorted(runs_now, key=lambda r: r["seed_offset"])
                _save_results(ws, results)

            done = _run_chain(plan, ws, sources, recorded, ws.run / "repeats" / f"seed{offset}", schedule, offset,
                              save_repeat, device, progress, verbose, label=f"seed+{offset} ")
            runs.append({"seed_offset": offset, "stages": done})
        results["repeats"] = runs
    if baseline == "jump":
        results["baseline"] = _run_jump(plan, ws, sources, results.get("baseline"), device, progress, verbose)
        _save_results(ws, results)
        if repeat > 1:
            by_seed = {r.get("seed_offset"): r for r in results["baseline"].get("repeats") or []}
            repeats = []
            for offset in range(1, repeat):
                repeats.append(_run_jump(plan, ws, sources, by_seed.get(offset), device, progress, verbose, offset))
                results["baseline"]["repeats"] = repeats[:]
                _save_results(ws, results)
    fill_matrix(plan, ws, sources, results, device)
    _save_results(ws, results)
    from growgpt.report import write_report

    paths = write_report(ws.run)
    _log(verbose, f"report: {paths['markdown']} and {paths['html']}")
    return results


MAX_REPEAT = 100  # seeds per run: more is a typo, not a plan


def drop_stale(plan: Plan, results: dict) -> None:
    """Forget recorded variants and repeats that were trained for another plan (an edited plan, or the
    schedule switched), so that the report never shows them beside this plan's stages; those this run
    asks for are retrained, the others are kept only while they still match the plan."""
    def matches(stages: list[dict], chain_plan: Plan, suffix: str) -> bool:
        return len(stages) <= len(chain_plan.stages) and all(  # a prefix: an interrupted chain goes on
            entry.get("signature") == chain_plan.stage_signature(i) + suffix for i, entry in enumerate(stages))

    variants = results.get("variants") or {}
    for name in list(variants):
        if name not in SCHEDULES or name == plan_schedule(plan) or \
                not matches(variants[name].get("stages") or [], with_schedule(plan, name), ""):
            del variants[name]
    if not variants:
        results.pop("variants", None)
    repeats = [r for r in results.get("repeats") or [] if isinstance(r.get("seed_offset"), int)
               and matches(r.get("stages") or [], plan, f"-seed{r['seed_offset']}")]
    if repeats:
        results["repeats"] = repeats
    else:
        results.pop("repeats", None)
    base = results.get("baseline")
    if base and base.get("signature") != jump_signature(plan):
        results["baseline"] = None


def plan_schedule(plan: Plan) -> str:
    return plan.train.get("schedule", "cosine")


def with_schedule(plan: Plan, schedule: str) -> Plan:
    """The plan with [train] schedule set to `schedule` (the default, cosine, as an absent key: the
    stage signatures of a plan that never named its schedule stay what they were)."""
    import dataclasses

    train = {k: v for k, v in plan.train.items() if k != "schedule"}
    if schedule != "cosine":
        train["schedule"] = schedule
    return dataclasses.replace(plan, train=train)


def _run_chain(plan: Plan, ws: Workspace, sources: Sources, recorded_stages: list[dict], root: Path, schedule: str,
               seed_offset: int, save, device: str, progress: bool, verbose: bool, label: str) -> list[dict]:
    """Train the plan's stages one after the other in root/NAME, skipping those recorded with the same
    signature; `save(done)` records the finished stages after each one. Returns the stage entries."""
    done: list[dict] = []
    suffix = f"-seed{seed_offset}" if seed_offset else ""
    for index, stage in enumerate(plan.stages):
        signature = plan.stage_signature(index) + suffix
        recorded = next((s for s in recorded_stages if s["name"] == stage.name), None)
        if recorded and recorded.get("signature") == signature and len(done) == index:
            done.append(recorded)
            _log(verbose, f"{label}stage '{stage.name}' already done: skipped")
            continue
        save(done[:])  # later entries describe stages that will be redone
        done.append(_run_stage(plan, ws, sources, index, done[-1] if done else None, root, schedule, signature,
                               seed_offset, device, progress, verbose, label))
        save(done[:])
    return done


def _run_stage(plan: Plan, ws: Workspace, sources: Sources, index: int, previous: dict | None, root: Path,
               schedule: str, signature: str, seed_offset: int, device: str, progress: bool, verbose: bool,
               label: str) -> dict:
    """Train (and for wsd cool down), evaluate and sample one stage; its grow.json entry."""
    stage = plan.stages[index]
    seen = set(previous["parts_trained"]) if previous else set()
    new_parts = [p for p in stage.parts if str(p) not in seen]
    _log(verbose, f"{label}stage '{stage.name}': parts {stage.parts} "
                  f"({'new: ' + str(new_parts) if new_parts else 'no new parts'}), {stage.iters} iters at "
                  f"lr {stage.learning_rate:g}" + (" (wsd trunk, then a cooldown branch of "
                                                    f"{cooldown_iters(plan, stage)})" if schedule == "wsd" else ""))
    check_disk(plan, ws, sources, stage, [p for p in stage.parts if p not in prepared_parts(plan, ws, sources)])
    stems = ensure_parts(plan, ws, sources, stage.parts, progress, verbose)
    stage_stems = [s for p in stage.parts for s in stems[p]]
    new_stems = [s for p in new_parts for s in stems[p]]
    start = previous["end_iter"] if previous else 0
    end = start + stage.iters
    out_dir = root / stage.name
    settings = _stage_settings(plan, ws, stage, stage_stems, new_stems, start, out_dir, schedule,
                               first=previous is None, seed_offset=seed_offset)
    prev_ckpt = ws.run / previous.get("trunk_dir", previous["run_dir"]) / ckpt_io.CHECKPOINT if previous else None
    outcome = run_training(settings, out_dir, signature, stage.init_from, prev_ckpt, verbose)
    entry = stage_record(ws, stage, signature, schedule, start, settings, out_dir, outcome["cfg"],
                         new_parts=new_parts, parts_trained=sorted(seen | {str(p) for p in stage.parts}, key=int))
    if seed_offset:
        entry["seed_offset"] = seed_offset
    scored_dir = out_dir
    if schedule == "wsd":
        # The stage is evaluated, sampled and reported as its cooldown branch; the next stage continues
        # the trunk (trunk_dir), never the branch.
        iters = cooldown_iters(plan, stage)
        branch_dir = out_dir / BRANCH_DIR
        _log(verbose, f"{label}stage '{stage.name}': cooldown branch, {iters} iters from the trunk at iteration {end}")
        branch = run_training(_branch_settings(plan, settings, end, iters, branch_dir), branch_dir,
                              signature + "-cooldown", "resume", out_dir / ckpt_io.CHECKPOINT, verbose)
        entry.update(trunk_dir=entry["run_dir"], run_dir=str(branch_dir.relative_to(ws.run)),
                     branch={"start_iter": end, "end_iter": end + iters, "iters": iters,
                             "learning_rate": stage.learning_rate, "min_lr": _min_lr(plan, stage),
                             "cooldown_shape": plan.train.get("cooldown_shape", TrainConfig.cooldown_shape),
                             **run_stats(branch_dir, branch["cfg"], end, end + iters)})
        scored_dir = branch_dir
    available = prepared_parts(plan, ws, sources)
    all_stems = [s for p in plan.all_parts for s in available.get(p, [])]
    entry["eval"] = _evaluate(plan, ws, scored_dir / ckpt_io.CHECKPOINT, available, all_stems, stage_stems, device)
    entry["samples"] = _samples(plan, scored_dir, device)
    union = entry["eval"]["union"]
    bpb = f"{union['bpb']:.4f}" if union.get("bpb") is not None else "n/a"
    # "union" here is the parts prepared so far; the report's union column is rescored over
    # every part of the plan at the end (see fill_matrix), so name the parts.
    scored = ", ".join(str(p) for p in plan.all_parts if p in available)
    _log(verbose, f"{label}stage '{stage.name}' done: val loss {union['loss']:.4f} "
                  f"(ppl {perplexity(union['loss']):.1f}), {bpb} bits per byte over the val sets of "
                  f"part(s) {scored} (prepared so far)")
    return entry


def stage_record(ws: Workspace, stage: Stage, signature: str, schedule: str, start: int, settings: dict,
                 out_dir: Path, cfg: TrainConfig, new_parts: list[int] | None = None,
                 parts_trained: list[str] | None = None) -> dict:
    """The grow.json entry of a trained stage (or of the jump baseline, which has no new_parts,
    parts_trained or new_fraction): what it trained on, its iterations and schedule, its run folder
    and its cost (run_stats). The caller adds the scores (and a wsd stage its branch)."""
    end = start + stage.iters
    entry = {"name": stage.name, "signature": signature, "schedule": schedule, "parts": [str(p) for p in stage.parts]}
    if new_parts is not None:
        entry.update(new_parts=[str(p) for p in new_parts], parts_trained=parts_trained)
    entry.update(start_iter=start, end_iter=end, learning_rate=stage.learning_rate,
                 warmup_iters=settings["warmup_iters"], replay=stage.replay)
    if new_parts is not None:
        entry["new_fraction"] = stage.new_fraction
    entry.update(run_dir=str(out_dir.relative_to(ws.run)), **run_stats(out_dir, cfg, start, end))
    return entry


def jump_signature(plan: Plan, seed_offset: int = 0) -> str:
    # "-union": the jump trains on every part of the plan, which a plan whose last stage lists only its
    # new parts (no replay) once did not get; plans whose last stage lists every part keep their signature.
    union = "-union" if plan.stages[-1].parts != plan.all_parts else ""
    return plan.stage_signature(len(plan.stages) - 1) + "-jump" + union + (f"-seed{seed_offset}" if seed_offset else "")


def _run_jump(plan: Plan, ws: Workspace, sources: Sources, recorded: dict | None, device: str, progress: bool,
              verbose: bool, seed_offset: int = 0) -> dict:
    """From scratch on the union of the plan's parts (what the last stage's model has been trained on,
    also when its stages list only their new parts), for as many iterations as all stages together, with the
    cosine schedule (warmup once, one decay over the whole run) whatever the plan's: re-training on the
    union the usual way is the default to beat (Ibrahim et al. 2024). seed_offset > 0: a repeat with
    [train] seed + seed_offset, in run/baseline/jump-seedN."""
    first = plan.stages[0]
    total = sum(s.iters for s in plan.stages)
    jump = Stage(name="jump", parts=plan.all_parts, iters=total, learning_rate=first.learning_rate,
                 warmup_iters=first.warmup_iters, min_lr=first.min_lr, replay="proportional",
                 init_from=first.init_from)
    signature = jump_signature(plan, seed_offset)
    if recorded and recorded.get("signature") == signature:
        return recorded
    stems = ensure_parts(plan, ws, sources, jump.parts, progress, verbose)
    jump_stems = [s for p in jump.parts for s in stems[p]]
    out_dir = ws.run / "baseline" / ("jump" + (f"-seed{seed_offset}" if seed_offset else ""))
    _log(verbose, f"baseline 'jump': from scratch on parts {jump.parts}, {total} iters"
                  + (f", seed +{seed_offset}" if seed_offset else ""))
    settings = _stage_settings(plan, ws, jump, jump_stems, [], 0, out_dir, seed_offset=seed_offset)
    outcome = run_training(settings, out_dir, signature, jump.init_from, None, verbose)
    available = prepared_parts(plan, ws, sources)
    all_stems = [s for p in plan.all_parts for s in available.get(p, [])]
    entry = stage_record(ws, jump, signature, "cosine", 0, settings, out_dir, outcome["cfg"])
    entry["eval"] = _evaluate(plan, ws, out_dir / ckpt_io.CHECKPOINT, available, all_stems, jump_stems, device)
    if seed_offset:
        entry["seed_offset"] = seed_offset
    else:
        entry["samples"] = _samples(plan, out_dir, device)  # repeats are for their numbers only
    return entry


def fill_matrix(plan: Plan, ws: Workspace, sources: Sources, results: dict, device: str) -> None:
    """Score earlier stages on parts that were prepared after they ran, and on the full union; scores
    an older growgpt recorded without bits per byte or per-batch sums, and scores drawn with other [eval]
    settings (batches, batch_size, seed: raised to tighten the report's intervals), are redone."""
    from growgpt.evaluate import evaluate_parts

    available = prepared_parts(plan, ws, sources)
    all_stems = sorted(s for p in plan.all_parts for s in available.get(p, []))
    for entry in scored_entries(results):
        ev = entry["eval"]
        drawn = ev.get("batches")
        missing = {str(p): s for p, s in available.items()
                   if not _current_score(ev["parts"].get(str(p)), drawn, plan)}
        redo_union = ev.get("union_parts") != all_stems or not _current_score(ev.get("union"), drawn, plan)
        unions = {"union": all_stems} if redo_union else {}
        if not missing and not unions:
            continue
        extra = evaluate_parts(ws.run / entry["run_dir"] / ckpt_io.CHECKPOINT, ws.tokens, missing, unions,
                               batches=plan.eval.batches, batch_size=eval_batch_size(plan),
                               seed=plan.eval.seed, device=device)
        _stamp_batches(extra)
        ev["parts"].update(extra["parts"])
        ev["parts"] = {k: ev["parts"][k] for k in sorted(ev["parts"], key=int)}
        if "union" in extra:
            ev["union"], ev["union_parts"] = extra["union"], all_stems
        if all((score or {}).get("batches") == extra["batches"] for score in [*ev["parts"].values(), ev.get("union")]):
            ev["batches"] = dict(extra["batches"])  # every score now says how it was drawn; so does the row




def scored_entries(results: dict) -> list[dict]:
    """Every evaluated model of a grow.json: the stages, the other schedule's stages, the repeats, the
    jump baseline and its repeats."""
    base = results.get("baseline")
    return [*(results.get("stages") or []),
            *(s for v in (results.get("variants") or {}).values() for s in v.get("stages") or []),
            *(s for r in results.get("repeats") or [] for s in r.get("stages") or []),
            *([base] if base else []), *((base or {}).get("repeats") or [])]


def plan_summary(plan: Plan) -> str:
    schedule = plan_schedule(plan)
    lines = [f"plan {plan.path}: {len(plan.stages)} stage(s), parts {plan.all_parts}, schedule {schedule}"
             + (" (a constant-LR trunk; each stage is evaluated as a cooldown branch off it)" if schedule == "wsd" else
                " (each stage re-warms and decays)")]
    for s in plan.stages:
        lines.append(f"  {s.name}: parts {s.parts}, {s.iters} iters, lr {s.learning_rate:g}, warmup {s.warmup_iters}, "
                     f"replay {s.replay}" + (f", new_fraction {s.new_fraction}" if s.new_fraction else "")
                     + (f", cooldown branch {cooldown_iters(plan, s)} iters" if schedule == "wsd" else ""))
    return "\n".join(lines)

