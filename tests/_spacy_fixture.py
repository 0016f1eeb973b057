"""Shared fixtures: the Kestrel spaCy pipeline, built once per session from tenant/products.yml."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest
import spacy
from spacy.language import Language

from backline.nlp.build import build_pipeline

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = PROJECT_ROOT / "tenant" / "products.yml"

_built: Dict[str, Path] = {}


@pytest.fixture(scope="session")
def kestrel_pipeline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of the built pipeline (built on first use, shared by every module)."""
    if "path" not in _built:
        _built["path"] = build_pipeline(PRODUCTS, tmp_path_factory.mktemp("spacy") / "kestrel_en")
    return _built["path"]


@pytest.fixture(scope="session")
def kestrel_nlp(kestrel_pipeline_path: Path) -> Language:
    """The built pipeline loaded the way Rasa's SpacyNLP loads it."""
    return spacy.load(kestrel_pipeline_path, disable=["parser"])
