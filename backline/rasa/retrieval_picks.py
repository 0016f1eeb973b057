"""A retrieval intent's answers learnt as classes of the intent classifier, read back the way Rasa's
ResponseSelector writes them.

Rasa splits a FAQ question in two: the intent classifier says `product_question`, the
ResponseSelector picks the answer (`product_question/warranty`), and the routing reads the
answer's confidence as the product of the two. Two independent models each unsure by a few
points make a product that seldom clears the high threshold: on the demo's cross-validation,
172 of 265 product questions had an intent confidence >= 0.85, 162 a pick confidence >= 0.85,
and only 98 both (docs/routing-experiments.md). A logistic regression over the picks and the other
intents together, beside the intent classifier, knows each answer against everything a customer
may be asking: the pick's confidence is its probability given its intent, P(pick) / P(its
intent's picks), and the routing reads the intent classifier's confidence times that.

This module holds the arithmetic and the output format; `IntentEnsembleClassifier` (with
`retrieval_picks: true`) trains the pick models and calls it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

SEPARATOR = "/"


def base_of(label: str) -> str:
    """`product_question` for `product_question/warranty`; any other intent is its own base."""
    return label.split(SEPARATOR, 1)[0]


def retrieval_bases(labels: Sequence[str]) -> List[str]:
    """The retrieval intents among a classifier's labels (those with picks), sorted."""
    return sorted({base_of(label) for label in labels if SEPARATOR in label})


def selector_output(
    labels: Sequence[str],
    row: np.ndarray,
    base: str,
    responses: Mapping[str, List[Dict[str, Any]]],
    ranking_length: int = 10,
) -> Dict[str, Any]:
    """What Rasa's ResponseSelector sets under `response_selector[<base>]` for one message: the pick
    with its responses, its confidence given the intent (P(pick) / P(base)), the `utter_` action
    that ActionRetrieveResponse runs, and the ranking of the base's picks (`ranking_length`, 0 for
    all)."""
    picks = [
        (label, float(row[index])) for index, label in enumerate(labels) if base_of(label) == base and label != base
    ]
    total = sum(probability for _, probability in picks)
    ordered = sorted(picks, key=lambda pick: -pick[1])
    ranking: List[Dict[str, Any]] = [
        {"confidence": probability / total if total > 0 else 0.0, "intent_response_key": label}
        for label, probability in ordered
    ]
    top = ranking[0]
    key = str(top["intent_response_key"])
    action = f"utter_{key}"
    return {
        "response": {
            # As Rasa's ResponseSelector: the key itself when the data has no responses for it.
            "responses": list(responses.get(action) or [{"text": key}]),
            "confidence": top["confidence"],
            "intent_response_key": key,
            "utter_action": action,
        },
        "ranking": ranking[:ranking_length] if ranking_length > 0 else ranking,
    }
