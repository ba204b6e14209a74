"""Helpers shared by several test folders (on pytest's pythonpath: ``from support.inference import ...``)."""
