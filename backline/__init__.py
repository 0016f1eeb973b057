"""Backline: the consultation layer behind a Rasa support assistant."""
