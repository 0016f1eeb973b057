"""Rasa custom actions for Backline: thin adapters around the backline library."""
