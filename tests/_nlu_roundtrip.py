"""A real Rasa NLU round trip for component tests: train with Rasa's own API, load the model
back with Agent.load, and classify texts through the processor as a server would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable


def trained_classifier(tmp_path: Path, config: str, nlu_data: str) -> Callable[[str], str]:
    """Trains `config` on `nlu_data` (YAML texts) under `tmp_path`; returns text -> predicted intent."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.model_training import train_nlu

    (tmp_path / "config.yml").write_text(config)
    (tmp_path / "nlu.yml").write_text(nlu_data)
    model = train_nlu(str(tmp_path / "config.yml"), str(tmp_path / "nlu.yml"), str(tmp_path / "models"))
    assert model is not None, "Rasa trained no model"
    processor = Agent.load(model).processor

    async def intent(text: str) -> str:
        return (await processor.parse_message(UserMessage(text)))["intent"]["name"]

    return lambda text: asyncio.run(intent(text))
