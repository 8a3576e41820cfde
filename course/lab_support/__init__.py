"""Scaffolding the labs hand a learner (tables, printers, launchers), one module per phase, so
it exists once instead of in both starter.py and solution.py."""
