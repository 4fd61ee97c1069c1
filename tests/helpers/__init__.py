"""What tests share beyond fixtures: configuration documents, simulated incidents,
subprocess runners, the in-process harness, and the convergence machines' scaffolding.

Fixtures stay in ``tests/conftest.py`` and are built from these; tests import the helpers
they use from the module that defines them.
"""
