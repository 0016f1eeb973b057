"""Benchmarks: routing quality on public intent data, derived thresholds, serving speed.

Pure logic (data splits, Rasa YAML writing, metrics, the report) lives in modules
that import no Rasa; `nlu_runner` and `serving` are the parts that train, parse and
start servers. `python -m backline.bench --help` lists the commands.
"""
