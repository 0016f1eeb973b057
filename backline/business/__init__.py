"""The demo tenant's business database (orders, invoices, catalogue, support hours) and tier-1 answers.

Modules: models (schema), db (URL, engines, sessions), seed (tenant files → DB), ids (order and
invoice number normalisation), queries (read-only lookups → frozen records), answers (pure text
formatting), replies (one call per customer request, used by the Rasa actions).
"""
