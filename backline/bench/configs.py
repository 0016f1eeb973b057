"""Rasa config files as data: the vanilla baseline and ablations derived from the project's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import yaml

SPACY_COMPONENTS = {"SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer", "SpacyEntityExtractor"}
VANILLA_POLICIES = ["MemoizationPolicy", "RulePolicy", "TEDPolicy"]
# A custom component that extends a stock one is replaced by it in the vanilla config (settings
# dropped), so the baseline still classifies intents when the project's classifier is its own.
STOCK_COUNTERPARTS = {"backline.rasa.intent_ensemble.IntentEnsembleClassifier": "LogisticRegressionClassifier"}
# The ensemble with `retrieval_picks` also picks FAQ answers: stock Rasa needs a ResponseSelector for that.
STOCK_RESPONSE_SELECTOR = {"name": "ResponseSelector", "epochs": 50, "constrain_similarities": True, "random_seed": 42}


def read(path: Path) -> Dict[str, Any]:
    """The config file as a dict."""
    return yaml.safe_load(Path(path).read_text())


def is_custom(component: Dict[str, Any]) -> bool:
    """A component named by module path (e.g. backline.rasa.sentiment.SentimentAnalyzer) is not Rasa's own."""
    return "." in component["name"]


def vanilla(project: Dict[str, Any]) -> Dict[str, Any]:
    """The project's config with only stock Rasa parts: custom NLU components replaced by their
    stock counterparts (STOCK_COUNTERPARTS; a ResponseSelector where the ensemble picked FAQ answers) or dropped, the spaCy pipeline dropped (a
    WhitespaceTokenizer first instead), and the project's policies (custom ones too) replaced by
    MemoizationPolicy, RulePolicy and TEDPolicy with the project's settings for those three where
    it has them."""
    pipeline: List[Dict[str, Any]] = [{"name": "WhitespaceTokenizer"}]
    for component in project["pipeline"]:
        if component["name"] in STOCK_COUNTERPARTS:
            pipeline.append({"name": STOCK_COUNTERPARTS[component["name"]]})
            if component.get("retrieval_picks"):
                pipeline.append(dict(STOCK_RESPONSE_SELECTOR))
        elif not is_custom(component) and component["name"] not in SPACY_COMPONENTS:
            pipeline.append(dict(component))
    settings = {policy["name"]: policy for policy in project.get("policies", [])}
    policies = [dict(settings.get(name, {"name": name})) for name in VANILLA_POLICIES]
    return {
        "recipe": project.get("recipe", "default.v1"),
        "language": project.get("language", "en"),
        "assistant_id": f"{project.get('assistant_id', 'assistant')}-vanilla",
        "pipeline": pipeline,
        "policies": policies,
    }


def without(project: Dict[str, Any], component: str) -> Dict[str, Any]:
    """The config with every pipeline component named `component` removed (an ablation: what the
    component adds, measured on the same data)."""
    pipeline = [dict(c) for c in project["pipeline"] if c["name"] != component]
    if len(pipeline) == len(project["pipeline"]):
        raise ValueError(f"the pipeline has no component {component!r}")
    suffix = component.rsplit(".", 1)[-1]
    return {
        **project,
        "assistant_id": f"{project.get('assistant_id', 'assistant')}-without-{suffix}",
        "pipeline": pipeline,
    }


def same_pipeline(first: Dict[str, Any], second: Dict[str, Any]) -> bool:
    """True when both configs have the same NLU pipeline (so one evaluation serves both)."""
    return first.get("pipeline") == second.get("pipeline")


def write(config: Dict[str, Any], path: Path) -> Path:
    """Writes the config as YAML; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
