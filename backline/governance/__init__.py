"""Governance: how the escalation matrix is judged by its outcomes.

- `backline.governance.config`: governance.yml (verdicts, override reasons, windows, CSAT, QA shares);
- `backline.governance.facts`: conversations from Rasa's tracker store and cases from the consultation
  store, as plain facts;
- `backline.governance.metrics`: the outcome metrics over those facts (pure Python);
- `backline.governance.sampling`: QA sampling into the review queue;
- `backline.governance.candidates` (+ `candidate_files`): candidate training data for the conversation
  designers, outside data/;
- `backline.governance.report` (+ `plots`): the governance report (Markdown / HTML with plots, CSV).
"""
