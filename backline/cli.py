"""The `backline` command: one entry point for the project's own tools."""

from __future__ import annotations

import importlib
import sys
from typing import Callable, List, Optional

COMMANDS = {
    "build-spacy": ("backline.nlp.build", "build the spaCy pipeline from code"),
    "seed": ("backline.business.seed", "seed the demo tenant's business database"),
    "validate-matrix": ("backline.validation", "validate escalation.yml and experts.yml"),
    "export-matrix": ("backline.routing.export", "export the routing model (md, csv, json)"),
    "run": ("backline.launcher", "run the Rasa server, the action server and the hub"),
    "actions": ("backline.actions_server", "run the action server alone (loopback, token-checked)"),
    "hub": ("backline.hub.app", "run the hub alone (expert webhooks, operator API, SLA timer)"),
    "migrate-consultations": ("backline.consult.store", "migrate the consultation store: migrate | current"),
    "hash-password": ("backline.hub.operators", "print a dashboard password hash for experts.yml"),
    "tokens": ("backline.hub.api_tokens", "per-operator API tokens: create | list | revoke"),
    "report": ("backline.governance.report", "the governance report: outcome metrics as Markdown or HTML + CSV"),
    "candidates": ("backline.governance.candidates", "candidate training data from verdicts, overrides, reviews"),
    "sample": ("backline.governance.sampling", "put a sample of the AI's work into the QA review queue"),
}


def _usage() -> str:
    lines = ["usage: python -m backline <command> [options]", "", "commands:"]
    lines += [f"  {name:<16} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Dispatch to the command's own `main(argv)`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from backline import paths

    paths.private_umask()  # databases, journals and secrets under var/ are the owner's alone
    paths.private_var()
    command: Callable[[List[str]], int] = importlib.import_module(COMMANDS[name][0]).main
    return command(rest) or 0
