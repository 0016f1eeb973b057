"""Benchmark data: CLINC150 and BANKING77 splits, and Rasa NLU YAML for them."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

OOS = "out_of_scope"
SEED = 7
BANKING_HELD_OUT = 20
BANKING_VALIDATION_SHARE = 0.2

Example = Tuple[str, str]


@dataclass(frozen=True)
class Split:
    """A training set and the examples to evaluate on; out-of-scope gold labels are OOS."""

    name: str
    train: List[Example]
    evaluation: List[Example]
    description: str


def clean_text(text: str) -> str:
    """One line, single spaces; square brackets become parentheses (Rasa reads `[x](y)` as an entity)."""
    return " ".join(text.replace("[", "(").replace("]", ")").split())


def clinc150(path: Path) -> Split:
    """CLINC150 "full": train + oos_train (as intent OOS) to train, val + oos_val to evaluate."""
    data = json.loads(Path(path).read_text())

    def rows(*keys: str) -> List[Example]:
        return [(text, OOS if intent == "oos" else intent) for key in keys for text, intent in data[key]]

    return Split(
        name="CLINC150",
        train=rows("train", "oos_train"),
        evaluation=rows("val", "oos_val"),
        description="CLINC150 full: train + oos_train (as intent `out_of_scope`); evaluated on val + oos_val",
    )


def held_out_categories(categories: Sequence[str], count: int, seed: int) -> List[str]:
    """`count` categories drawn with a fixed seed, sorted."""
    return sorted(random.Random(seed).sample(sorted(categories), count))


def stratified_split(examples: Iterable[Example], share: float, seed: int) -> Tuple[List[Example], List[Example]]:
    """(train, validation): `share` of each intent's examples (rounded) go to validation, drawn with `seed`."""
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in examples:
        by_intent[intent].append(text)
    rng = random.Random(seed)
    train: List[Example] = []
    validation: List[Example] = []
    for intent in sorted(by_intent):
        texts = sorted(by_intent[intent])
        rng.shuffle(texts)
        cut = round(len(texts) * share)
        validation += [(text, intent) for text in texts[:cut]]
        train += [(text, intent) for text in texts[cut:]]
    return train, validation


def banking77(
    csv_path: Path,
    categories_path: Path,
    held_out: int = BANKING_HELD_OUT,
    validation_share: float = BANKING_VALIDATION_SHARE,
    seed: int = SEED,
) -> Split:
    """BANKING77 with `held_out` categories as in-domain out-of-scope queries.

    The other categories are split per category into train and validation; the
    evaluation set is that validation part plus every example of the held-out
    categories, labelled OOS. Nothing is trained as out-of-scope.
    """
    categories = json.loads(Path(categories_path).read_text())
    unseen = set(held_out_categories(categories, held_out, seed))
    with open(csv_path, newline="") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    train, validation = stratified_split([row for row in rows if row[1] not in unseen], validation_share, seed)
    oos = [(text, OOS) for text, category in rows if category in unseen]
    return Split(
        name="BANKING77",
        train=train,
        evaluation=validation + oos,
        description=(
            f"BANKING77 train.csv: {held_out} of {len(categories)} categories held out as out-of-scope "
            f"(seed {seed}: {', '.join(sorted(unseen))}); the other {len(categories) - held_out} split "
            f"{1 - validation_share:.0%} train / {validation_share:.0%} validation per category"
        ),
    )


def k_folds(examples: Sequence[Example], k: int, seed: int) -> List[Tuple[List[Example], List[Example]]]:
    """k (train, test) pairs; each intent's examples are dealt round-robin over the folds after a seeded shuffle."""
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in examples:
        by_intent[intent].append(text)
    rng = random.Random(seed)
    folds: List[List[Example]] = [[] for _ in range(k)]
    for intent in sorted(by_intent):
        texts = sorted(by_intent[intent])
        rng.shuffle(texts)
        for index, text in enumerate(texts):
            folds[index % k].append((text, intent))
    return [
        ([example for other, fold in enumerate(folds) if other != index for example in fold], folds[index])
        for index in range(k)
    ]


def fold_ids(examples: Sequence[Example], k: int, seed: int) -> List[int]:
    """A fold (0..k-1) for each example, stratified by intent: each intent's examples are dealt
    round-robin after a seeded shuffle (for cross-fitting thresholds on an evaluation split)."""
    by_intent: Dict[str, List[int]] = defaultdict(list)
    for index, (_, intent) in enumerate(examples):
        by_intent[intent].append(index)
    rng = random.Random(seed)
    folds = [0] * len(examples)
    for intent in sorted(by_intent):
        indices = by_intent[intent]
        rng.shuffle(indices)
        for position, index in enumerate(indices):
            folds[index] = position % k
    return folds


def rasa_nlu_yaml(examples: Iterable[Example]) -> str:
    """Rasa 3 NLU training data: one `intent` block per label, examples in first-seen order."""
    by_intent: Dict[str, List[str]] = defaultdict(list)
    for text, intent in examples:
        cleaned = clean_text(text)
        if cleaned:
            by_intent[intent].append(cleaned)
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in by_intent.items():
        lines += [f"- intent: {json.dumps(intent)}", "  examples: |"]
        lines += [f"    - {text}" for text in texts]
    return "\n".join(lines) + "\n"
