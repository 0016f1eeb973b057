"""Rasa graph components and channels: thin adapters over the backline library."""
