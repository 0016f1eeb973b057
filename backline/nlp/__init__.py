"""Entity extraction: money normaliser, spaCy pipeline built from code, entity dicts."""
