"""RoutingPolicy refuses to train on a matrix that does not fit the domain, listing every problem
at once. The fixtures: tests/routing_policy_kit.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.exceptions import RasaException

from backline.rasa.routing_policy import RoutingConfigError, RoutingPolicy
from tests.routing_policy_kit import (  # noqa: F401  (fixtures)
    MATRIX_TEXT,
    ROOT,
    config_for,
    domain,
    execution_context,
    matrix_file,
    model_storage,
    policy,
    resource,
    trained,
    training_trackers,
)

# --- a matrix that does not fit fails training, clearly --------------------------------------


WEATHER_ROW = "  weather_report:\n    ai_may: answer\n    queue: support\n    description: Not a Kestrel topic.\n"


def broken_matrix(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken" / "escalation.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", path.parent / "signals.yml")
    return path


def without_row(text: str, intent: str) -> str:
    start = text.index(f"\n  {intent}:\n")
    end = text.index("\n  ", text.index("description:", start))
    assert end > start
    return text[:start] + text[end:]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: MATRIX_TEXT + WEATHER_ROW,
            r"does not fit the domain:\n  .*escalation.yml:\d+: intents.weather_report: not an intent of the domain",
            id="row for an unknown intent",
        ),
        pytest.param(
            lambda: without_row(MATRIX_TEXT, "inform"),
            r"does not fit the domain:\n  .*escalation.yml:\d+: intents: domain intent 'inform' \(domain\) has no row",
            id="domain intent without a row",
        ),
        pytest.param(
            lambda: MATRIX_TEXT.replace(
                "rejection_intents: [answer_rejected]", "rejection_intents: [answer_rejected, nope]"
            ),
            r"is invalid:\n  .*escalation.yml:\d+: triggers.no_convergence.rejection_intents: intent 'nope' has no row",
            id="trigger naming an unknown intent",
        ),
        pytest.param(
            lambda: "version: 1\ndefaults: [unclosed\n",
            r"The escalation matrix .*escalation.yml is invalid:\n  .*escalation.yml:3: invalid YAML",
            id="invalid YAML",
        ),
        pytest.param(
            lambda: MATRIX_TEXT.replace("  pricing:\n    ai_may: answer\n", "  pricing:\n    ai_may: sometimes\n"),
            r"The escalation matrix .*escalation.yml is invalid:\n  .*sometimes",
            id="unknown ai_may",
        ),
    ],
)
def test_a_matrix_that_does_not_fit_fails_training(
    make: Any,
    message: str,
    tmp_path: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> None:
    text = make()
    assert text != MATRIX_TEXT
    path = broken_matrix(tmp_path, text)
    policy = RoutingPolicy.create(config_for(path), model_storage, resource, execution_context)
    with pytest.raises(RasaException, match=message) as error:
        policy.train(training_trackers(domain), domain)
    assert isinstance(error.value, RoutingConfigError)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError):  # nothing was persisted
        with model_storage.read_from(resource):
            pass


def test_every_problem_is_listed_at_once(
    tmp_path: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> None:
    text = without_row(without_row(MATRIX_TEXT, "cancel_subscription"), "inform") + WEATHER_ROW
    path = broken_matrix(tmp_path, text)
    policy = RoutingPolicy.create(config_for(path), model_storage, resource, execution_context)
    with pytest.raises(RoutingConfigError) as error:
        policy.train(training_trackers(domain), domain)
    problems = str(error.value).splitlines()[1:]
    assert sorted(p.split(": ", 1)[1] for p in problems) == [
        "intents.weather_report: not an intent of the domain",
        "intents: domain intent 'cancel_subscription' (domain) has no row",
        "intents: domain intent 'inform' (domain) has no row",
    ]


def test_a_missing_matrix_file_fails_training(
    tmp_path: Path,
    model_storage: LocalModelStorage,
    resource: Resource,
    execution_context: ExecutionContext,
    domain: Domain,
) -> None:
    path = tmp_path / "nowhere" / "escalation.yml"
    policy = RoutingPolicy.create(config_for(path), model_storage, resource, execution_context)
    with pytest.raises(RoutingConfigError) as error:
        policy.train(training_trackers(domain), domain)
    assert str(error.value) == (
        f"The escalation matrix {path} is invalid:\n  {path}: cannot read file: No such file or directory"
    )
