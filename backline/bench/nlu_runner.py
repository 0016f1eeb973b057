"""Train a Rasa NLU pipeline on benchmark data and parse evaluation texts in batches.

Uses Rasa's own API: `rasa.model_training.train_nlu` to train from a config file and
a YAML file written here, `Agent.load` to load the model, and the loaded model's
graph runner to parse many messages in one graph run (the way the processor parses one).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, List, NamedTuple, Sequence, Tuple

from backline.bench.datasets import Example, clean_text, rasa_nlu_yaml
from backline.bench.metrics import Prediction
from backline.routing.decision import Parse

BATCH = 250


def _quiet_rasa() -> None:
    """No training cache (honest timings, no shared .rasa/cache growth) and no telemetry."""
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(
    config: Path, examples: Sequence[Example], workdir: Path, responses: Sequence[Path] = ()
) -> Tuple[Path, float]:
    """Writes `examples` as workdir/data/train.yml beside copies of `responses` (the answers of
    retrieval intents such as product_question/warranty, which the pipeline learns to pick),
    trains the config's NLU pipeline; returns (model, seconds)."""
    _quiet_rasa()
    from rasa.model_training import train_nlu

    data = workdir / "data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    (data / "train.yml").write_text(rasa_nlu_yaml(examples))
    for number, path in enumerate(responses):
        shutil.copyfile(path, data / f"responses-{number}.yml")
    started = time.monotonic()
    model = train_nlu(str(config), str(data), str(workdir), fixed_model_name="nlu")
    if model is None:
        raise RuntimeError(f"training {config} on {data} produced no model")
    return Path(model), time.monotonic() - started


class Parsed(NamedTuple):
    """What parsing the evaluation texts gave: one (intent, confidence) per text, the seconds the
    batched parse took, and the latency of parsing `single` texts one message per graph run (the way
    the server parses a customer's message)."""

    results: List[Tuple[str, float]]
    seconds: float
    single_latencies: List[float]


def parse(
    model: Path,
    texts: Sequence[str],
    progress: Callable[[int, int], None] = lambda done, total: None,
    single: int = 0,
) -> Parsed:
    """(intent name, confidence) for each text, the seconds parsing took, and the one-by-one latencies
    of the first `single` texts (after a warm-up message)."""
    _quiet_rasa()
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.shared.core.trackers import DialogueStateTracker

    processor = Agent.load(str(model)).processor
    target = processor.model_metadata.nlu_target
    tracker = DialogueStateTracker("bench", [])
    results: List[Tuple[str, float]] = []
    started = time.monotonic()
    for start in range(0, len(texts), BATCH):
        batch = [UserMessage(clean_text(text)) for text in texts[start : start + BATCH]]
        outputs = processor.graph_runner.run(
            inputs={PLACEHOLDER_MESSAGE: batch, PLACEHOLDER_TRACKER: tracker}, targets=[target]
        )[target]
        for message in outputs:
            # As the routing reads it: a retrieval intent as its pick, at intent x pick confidence.
            read = Parse.from_parse_data(
                {"intent": message.get("intent") or {}, "response_selector": message.get("response_selector")}
            )
            results.append((read.intent or "", float(read.confidence or 0.0)))
        progress(len(results), len(texts))
    seconds = time.monotonic() - started
    latencies: List[float] = []
    for index, text in enumerate(["warm up", *texts[:single]]):
        began = time.perf_counter()
        processor.graph_runner.run(
            inputs={PLACEHOLDER_MESSAGE: [UserMessage(clean_text(text))], PLACEHOLDER_TRACKER: tracker},
            targets=[target],
        )
        if index:
            latencies.append(time.perf_counter() - began)
    return Parsed(results, seconds, latencies)


def evaluate(
    config: Path,
    train_examples: Sequence[Example],
    evaluation: Sequence[Example],
    workdir: Path,
    log: Callable[[str], None] = print,
    single: int = 0,
    responses: Sequence[Path] = (),
) -> Tuple[List[Prediction], float, Parsed]:
    """Trains on `train_examples`, parses `evaluation`; returns (predictions, train seconds, what parsing gave).
    A gold label without a retrieval pick (product_question) is judged at that level: the prediction's
    pick is dropped for it."""
    log(f"  training {config} on {len(train_examples)} examples ({workdir})")
    model, train_seconds = train(config, train_examples, workdir, responses)
    log(f"  trained in {train_seconds:.0f} s; parsing {len(evaluation)} queries")
    parsed = parse(
        model, [text for text, _ in evaluation], lambda done, total: log(f"    parsed {done}/{total}"), single=single
    )
    predictions = [
        Prediction(gold, intent if "/" in gold else intent.split("/", 1)[0], confidence)
        for (_, gold), (intent, confidence) in zip(evaluation, parsed.results)
    ]
    return predictions, train_seconds, parsed
