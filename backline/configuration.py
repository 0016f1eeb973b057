"""The project's routing configuration, loaded once per process for the parts that are not handed a
matrix or a directory: the escalation matrix (``$BACKLINE_MATRIX``, default escalation.yml in the
project; its signals file comes with it) and the expert directory (``$BACKLINE_EXPERTS``, default
experts.yml in the project).

The Rasa components read the matrix named in config.yml; the hub and the action server read these.
An invalid file raises its `ConfigError` (every problem with file:line) at first use.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional, Tuple

from backline.paths import PROJECT_ROOT
from backline.routing.directory import ExpertDirectory, load_experts
from backline.routing.handback import HandBack
from backline.routing.matrix import EscalationMatrix, load_matrix
from backline.routing.source import ConfigError

logger = logging.getLogger(__name__)

ENV_MATRIX = "BACKLINE_MATRIX"
ENV_EXPERTS = "BACKLINE_EXPERTS"
DEFAULT_MATRIX = PROJECT_ROOT / "escalation.yml"
DEFAULT_EXPERTS = PROJECT_ROOT / "experts.yml"


def matrix_path(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_MATRIX) or DEFAULT_MATRIX)


def experts_path(env: Optional[Mapping[str, str]] = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_EXPERTS) or DEFAULT_EXPERTS)


@lru_cache(maxsize=4)
def _matrix(path: Path) -> EscalationMatrix:
    return load_matrix(path)


def matrix() -> EscalationMatrix:
    """The configured escalation matrix (loaded once per path)."""
    return _matrix(matrix_path())


def hand_back() -> HandBack:
    """The configured hand-back rules: follow-up types, their labels and intents, always-allowed intents."""
    return matrix().hand_back


@lru_cache(maxsize=4)
def _experts(path: Path, version: Tuple[int, int]) -> ExpertDirectory:
    return load_experts(path)


def experts(env: Optional[Mapping[str, str]] = None) -> ExpertDirectory:
    """The configured expert directory: parsed and checked once per version of the file (its
    modification time and size), so operators' edits apply without a restart and the action server
    does not re-read it on every escalation."""
    path = experts_path(env)
    try:
        stat = path.stat()
    except OSError:
        return load_experts(path)  # raises ExpertsError naming the file and why it cannot be read
    return _experts(path, (stat.st_mtime_ns, stat.st_size))


def team_name(queue: Optional[str]) -> str:
    """What customers are told a queue's team is called (experts.yml's ``team``). A directory that cannot
    be read is logged and the queue's own name used, so an announcement never fails for it."""
    try:
        return experts().team_name(queue)
    except ConfigError as error:
        logger.error("experts.yml cannot be read for team names: %s", error)
        return queue or "customer support"
