"""`python -m backline.bench run | thresholds | scale`: the benchmarks behind docs/benchmarks.md and docs/scale.md."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from backline.bench import (
    calibration,
    configs,
    datasets,
    machine,
    matrix_thresholds,
    metrics,
    report,
    report_calibration,
)
from backline.bench.report import QualityRun
from backline.paths import BENCHMARKS, PROJECT_ROOT

WORKDIR = PROJECT_ROOT / "build" / "bench"
HELDOUT = PROJECT_ROOT / "heldout" / "nlu.yml"
RESPONSES = sorted((PROJECT_ROOT / "data" / "responses").glob("*.yml"))
CROSS_FIT_FOLDS = 2
SINGLE_PARSES = 300
Speed = Dict[str, Dict[int, metrics.LatencySummary]]  # stack name -> concurrent conversations -> latencies


def log(text: str) -> None:
    """Progress on stdout, flushed at once."""
    print(text, flush=True)


def _slug(config: Path) -> str:
    return config.stem.replace(".", "-")


def _save(run: QualityRun, path: Path) -> None:
    """The run's predictions (gold, intent, confidence) and folds, for analysis after the run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"predictions": [list(p) for p in run.predictions], "folds": run.folds}))


def quality(configs_to_run: Sequence[Path], splits: Sequence[datasets.Split]) -> List[QualityRun]:
    """Trains and evaluates every config on every split, one training at a time. The evaluation split
    is dealt into CROSS_FIT_FOLDS folds for cross-fitted per-intent thresholds; the first split also
    times SINGLE_PARSES messages parsed one at a time."""
    from backline.bench import nlu_runner

    runs = []
    for config in configs_to_run:
        for number, split in enumerate(splits):
            log(f"[quality] {split.name} with {config}")
            workdir = WORKDIR / f"{split.name.lower()}-{_slug(config)}"
            predictions, train_seconds, parsed = nlu_runner.evaluate(
                config, split.train, split.evaluation, workdir, log=log, single=SINGLE_PARSES if number == 0 else 0
            )
            run = QualityRun(
                split.name,
                split.description,
                str(config),
                len(split.train),
                train_seconds,
                parsed.seconds,
                predictions,
                folds=datasets.fold_ids(split.evaluation, CROSS_FIT_FOLDS, datasets.SEED),
                single_latencies=parsed.single_latencies,
            )
            _save(run, workdir / "predictions.json")
            log(
                f"  in-scope accuracy {report.pct(metrics.in_scope_accuracy(predictions))}, "
                f"OOS recall {report.pct(metrics.oos_recall(predictions))}, "
                f"lowest high meeting the limits: {metrics.choose_high(predictions)}"
            )
            runs.append(run)
    return runs


def serving(config: Path, project_model: Path) -> Tuple[Speed, Dict[str, metrics.LatencySummary]]:
    """Trains the vanilla variant of `config`, measures both stacks over REST, then the hub's reply path."""
    from backline.bench import serving as bench_serving
    from backline.business.seed import seed

    workdir = WORKDIR / "serving"
    workdir.mkdir(parents=True, exist_ok=True)
    env = bench_serving.environment(workdir)
    seed(env["BACKLINE_BUSINESS_DB_URL"])
    vanilla_config = configs.write(configs.vanilla(configs.read(config)), workdir / "vanilla-config.yml")
    log(f"[serving] training the vanilla model ({vanilla_config})")
    vanilla_model = bench_serving.train_vanilla(vanilla_config, workdir, env)
    log("[serving] measuring over REST")
    speed = bench_serving.measure({"project": project_model, "vanilla": vanilla_model}, workdir, env, log=log)
    log("[serving] expert reply -> customer channel")
    hub = bench_serving.measure_hub_reply(project_model, workdir, env, log=log)
    for name, summary in hub.items():
        log(f"    {name}: {summary.messages} replies, p50 {summary.p50 * 1000:.0f} ms, p95 {summary.p95 * 1000:.0f} ms")
    return speed, hub


def demo_run(config: Path, folds: int, seed: int) -> QualityRun:
    """`config` cross-validated on data/nlu (k folds, fixed seed): the pooled out-of-fold predictions."""
    from backline.bench import nlu_runner

    examples = _nlu_examples(PROJECT_ROOT / "data" / "nlu")
    predictions: List[metrics.Prediction] = []
    fold_of: List[int] = []
    train_seconds = parse_seconds = 0.0
    for index, (train, test) in enumerate(datasets.k_folds(examples, folds, seed), start=1):
        log(f"[thresholds] fold {index}/{folds} with {config}")
        fold, fold_train, parsed = nlu_runner.evaluate(
            config, train, test, WORKDIR / f"demo-{_slug(config)}-fold{index}", log=log, responses=RESPONSES
        )
        predictions += fold
        fold_of += [index - 1] * len(fold)
        train_seconds += fold_train
        parse_seconds += parsed.seconds
    description = (
        f"data/nlu ({len(examples)} examples), {folds}-fold cross-validation stratified by intent (seed {seed}), "
        "out-of-fold predictions pooled; a product question counts as right only when the answer picked "
        "(`response_selector`) is also the right one, at the intent's confidence times the pick's (as the routing reads it)"
    )
    run = QualityRun(
        report.DEMO, description, str(config), len(examples), train_seconds, parse_seconds, predictions, folds=fold_of
    )
    _save(run, WORKDIR / f"demo-{_slug(config)}-predictions.json")
    return run


def _nlu_examples(path: Path) -> List[datasets.Example]:
    """(text, intent) of every example in a Rasa NLU file or folder; a retrieval intent with its pick
    (product_question/warranty), whose answers are in RESPONSES."""
    from rasa.shared.nlu.training_data.loading import load_data

    return [
        (message.get("text"), message.get("intent_response_key") or message.get("intent"))
        for message in load_data(str(path)).intent_examples
    ]


def heldout_run(config: Path) -> QualityRun:
    """`config` trained on all of data/nlu, evaluated on heldout/nlu.yml, which no tuning touches."""
    from backline.bench import nlu_runner

    train, test = _nlu_examples(PROJECT_ROOT / "data" / "nlu"), _nlu_examples(HELDOUT)
    log(f"[held-out] {config}: {len(train)} training examples, {len(test)} held-out")
    predictions, train_seconds, parsed = nlu_runner.evaluate(
        config, train, test, WORKDIR / f"demo-heldout-{_slug(config)}", log=log, responses=RESPONSES
    )
    description = (
        f"trained on all of data/nlu ({len(train)} examples), evaluated on heldout/nlu.yml ({len(test)} examples "
        "written apart from the training data; no threshold or data change was tuned on them)"
    )
    return QualityRun(report.HELDOUT, description, str(config), len(train), train_seconds, parsed.seconds, predictions)


def run(args: argparse.Namespace) -> int:
    """Routing quality (every config), thresholds, serving speed; writes the report."""
    started = time.monotonic()
    main_config = Path(args.config)
    ablations = [
        configs.write(
            configs.without(configs.read(main_config), name),
            WORKDIR.relative_to(PROJECT_ROOT) / f"without-{name.rsplit('.', 1)[-1]}.yml",
        )
        for name in args.without
    ]
    compare = [
        Path(path)
        for path in [*args.compare, *ablations]
        if not configs.same_pipeline(configs.read(main_config), configs.read(Path(path)))
    ]
    splits = [
        datasets.clinc150(BENCHMARKS / "clinc150" / "data_full_train_val.json"),
        datasets.banking77(BENCHMARKS / "banking77" / "train.csv", BENCHMARKS / "banking77" / "categories.json"),
    ]
    runs = quality([main_config, *compare], splits)
    if args.folds:
        runs += [demo_run(config, args.folds, datasets.SEED) for config in [main_config, *compare]]
    thresholds = {
        str(config): report.derive([r for r in runs if r.config == str(config)]) for config in [main_config, *compare]
    }
    per_intent = _per_intent(runs, main_config, thresholds.get(str(main_config)), args)
    if args.folds and HELDOUT.exists():
        runs.append(heldout_run(main_config))
    speed, hub = ({}, {}) if args.skip_serving else serving(main_config, Path(args.model))
    routing_overhead = None
    if not args.skip_serving:
        from backline.bench import overhead

        log("[overhead] the same model with and without the routing layer")
        routing_overhead = overhead.measure(Path(args.model), log=log)
    note = (
        "Skipped (--skip-serving)."
        if args.skip_serving
        else f"The project's stack serves `{args.model}` (trained by `make train` from `{main_config}`)."
    )
    page = report.render(
        report.Report(
            command=args.command,
            date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            machine=machine.describe(),
            wall_seconds=time.monotonic() - started,
            runs=runs,
            thresholds=thresholds,
            serving=speed,
            serving_note=note,
            hub_reply=hub,
            per_intent=per_intent,
            overhead=routing_overhead,
        )
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(page)
    log(f"wrote {args.out} in {(time.monotonic() - started) / 60:.1f} min")
    return 0


def _per_intent(
    runs: Sequence[QualityRun], config: Path, chosen: Optional[report.Thresholds], args: argparse.Namespace
) -> Optional[calibration.IntentThresholds]:
    """Per-intent thresholds for escalation.yml from the demo domain's cross-validation of `config`;
    written into the matrix with --write-thresholds (beside the defaults' high and low)."""
    demo = next((r for r in runs if r.dataset == report.DEMO and r.config == str(config)), None)
    if demo is None:
        return None
    matrix = Path(args.matrix)
    # Only intents the cross-validation predicted get a row threshold: the others have no evidence.
    derived = calibration.derive(demo.predictions)
    if derived is None:
        log("[thresholds] no calibrated cut meets the limits on the demo domain")
        return None
    if chosen is not None and not report_calibration.meets(report_calibration.cross_fitted(demo)):
        # Out of sample the per-intent thresholds miss the limits: no row goes below the one
        # threshold; rows whose intent needs more keep their stricter high.
        derived = calibration.floored(derived, chosen.high)
        log(f"[thresholds] per-intent thresholds miss the limits cross-fitted: floored at high {chosen.high:.2f}")
    if args.write_thresholds and chosen is not None:
        basis = report_calibration.basis(derived, chosen, str(config), datetime.now(timezone.utc))
        now = datetime.now(timezone.utc)
        changed = matrix_thresholds.write(
            matrix,
            derived.thresholds,
            chosen.high,
            chosen.low,
            basis,
            f"{matrix_thresholds.BENCH_BASIS} {now:%Y-%m-%d} (docs/benchmarks.md)",
        )
        log(f"[thresholds] wrote {matrix}: {len(changed)} rows changed ({', '.join(changed) or 'none'})")
    return derived


def thresholds(args: argparse.Namespace) -> int:
    """The demo domain's risk–coverage table, its global and per-intent thresholds from k-fold
    cross-validation on data/nlu (cross-fitted figures), and with --write the matrix updated."""
    run = demo_run(Path(args.config), args.folds, args.seed)
    print("\n".join(report.coverage_table(run)))
    print(
        f"\nin-scope accuracy {report.pct(metrics.in_scope_accuracy(run.predictions))}, "
        f"OOS recall {report.pct(metrics.oos_recall(run.predictions))}"
    )
    chosen = report.derive([run])
    if chosen is None:
        print("no threshold meets the limits")
        return 1
    print(f"one threshold: high {chosen.high:.3g}  low {chosen.low:.2f}")
    per_intent = _per_intent([run], Path(args.config), chosen, args)
    if per_intent is None:
        return 1
    row = report_calibration.cross_fitted(run)
    print(
        f"per-intent thresholds (cut {per_intent.cut:.3f}), cross-fitted: coverage / accuracy / OOS answered "
        f"{report_calibration.figures(row)}"
    )
    for name, value in sorted(per_intent.thresholds.items()):
        print(f"  {name}: {value:.2f}")
    return 0


def scale(args: argparse.Namespace) -> int:
    """The scale benchmark (backline/bench/scale.py)."""
    from backline.bench import scale as scale_bench

    if args.conversations < 1 or args.turns < 4 or not 0 <= args.handoff_share <= 1:
        print("--conversations must be at least 1, --turns at least 4, --handoff-share between 0 and 1")
        return 2
    return scale_bench.main(args.conversations, args.turns, args.handoff_share, Path(args.out), args.command, log=log)


def main(argv: Optional[List[str]] = None) -> int:
    os.chdir(PROJECT_ROOT)
    parser = argparse.ArgumentParser(prog="python -m backline.bench", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True)
    run_parser = commands.add_parser("run", help="every benchmark; writes docs/benchmarks.md")
    run_parser.add_argument("--config", default="config.yml", help="the config whose pipeline is measured")
    run_parser.add_argument("--compare", nargs="*", default=[], help="more configs to measure on the same data")
    run_parser.add_argument(
        "--without", nargs="*", default=[], help="also measure the config without these components (ablations)"
    )
    run_parser.add_argument("--model", default="models/backline.tar.gz", help="the project's trained model (serving)")
    run_parser.add_argument(
        "--folds", type=int, default=0, help="also cross-validate on data/nlu (k folds) for the thresholds"
    )
    run_parser.add_argument("--skip-serving", action="store_true")
    run_parser.add_argument(
        "--matrix", default="escalation.yml", help="the matrix whose rows get per-intent thresholds"
    )
    run_parser.add_argument(
        "--write-thresholds",
        action="store_true",
        help="write the derived thresholds into the matrix (its defaults and its answering rows)",
    )
    run_parser.add_argument("--out", default="docs/benchmarks.md")
    run_parser.set_defaults(handler=run)
    thresholds_parser = commands.add_parser(
        "thresholds", help="derive thresholds for the demo domain (k-fold on data/nlu)"
    )
    thresholds_parser.add_argument("--config", default="config.yml")
    thresholds_parser.add_argument("--folds", type=int, default=5)
    thresholds_parser.add_argument("--seed", type=int, default=datasets.SEED)
    thresholds_parser.add_argument("--matrix", default="escalation.yml")
    thresholds_parser.add_argument("--write-thresholds", action="store_true", help="write them into the matrix")
    thresholds_parser.set_defaults(handler=thresholds)
    scale_parser = commands.add_parser(
        "scale", help="load on the embedded and the scale profile, and a Rasa server killed; writes docs/scale.md"
    )
    scale_parser.add_argument("--conversations", type=int, default=100, help="conversations at once")
    scale_parser.add_argument("--turns", type=int, default=20, help="turns per conversation")
    scale_parser.add_argument("--handoff-share", type=float, default=0.1, help="share that asks for a person")
    scale_parser.add_argument("--out", default="docs/scale.md")
    scale_parser.set_defaults(handler=scale)
    args = parser.parse_args(argv)
    args.command = "python -m backline.bench " + " ".join(shlex.quote(arg) for arg in (argv or sys.argv[1:]))
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
