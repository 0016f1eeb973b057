"""Train a Rasa NLU pipeline on benchmark data and parse evaluation texts in batches.

Uses Rasa's own API: `rasa.model_training.train_nlu` to train from a config file and
a YAML file written here, `Agent.load` to load the model, and the loaded model's
graph runner to parse many messages in one graph run (the way the processor parses one).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

from backline.bench.datasets import Example, clean_text, rasa_nlu_yaml
from backline.bench.metrics import Prediction

BATCH = 250


def _quiet_rasa() -> None:
    """No training cache (honest timings, no shared .rasa/cache growth) and no telemetry."""
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(config: Path, examples: Sequence[Example], workdir: Path) -> Tuple[Path, float]:
    """Writes `examples` as workdir/train.yml, trains the config's NLU pipeline; returns (model, seconds)."""
    _quiet_rasa()
    from rasa.model_training import train_nlu

    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "train.yml"
    data.write_text(rasa_nlu_yaml(examples))
    started = time.monotonic()
    model = train_nlu(str(config), str(data), str(workdir), fixed_model_name="nlu")
    if model is None:
        raise RuntimeError(f"training {config} on {data} produced no model")
    return Path(model), time.monotonic() - started


def parse(
    model: Path, texts: Sequence[str], progress: Callable[[int, int], None] = lambda done, total: None
) -> Tuple[List[Tuple[str, float]], float]:
    """(intent name, confidence) for each text, and the seconds parsing took."""
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
            intent = message.get("intent") or {}
            results.append((intent.get("name") or "", float(intent.get("confidence") or 0.0)))
        progress(len(results), len(texts))
    return results, time.monotonic() - started


def evaluate(
    config: Path,
    train_examples: Sequence[Example],
    evaluation: Sequence[Example],
    workdir: Path,
    log: Callable[[str], None] = print,
) -> Tuple[List[Prediction], float, float]:
    """Trains on `train_examples`, parses `evaluation`; returns (predictions, train seconds, parse seconds)."""
    log(f"  training {config} on {len(train_examples)} examples ({workdir})")
    model, train_seconds = train(config, train_examples, workdir)
    log(f"  trained in {train_seconds:.0f} s; parsing {len(evaluation)} queries")
    parsed, parse_seconds = parse(
        model, [text for text, _ in evaluation], lambda done, total: log(f"    parsed {done}/{total}")
    )
    predictions = [Prediction(gold, intent, confidence) for (_, gold), (intent, confidence) in zip(evaluation, parsed)]
    return predictions, train_seconds, parse_seconds
