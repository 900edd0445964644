"""Testing kit for nself and for projects' own tasks: a Kubernetes API server for tests
(`KubeAPI`, `Controller`) and the pytest fixtures in `nself.testing.plugin`.

Load the fixtures in your conftest.py with `pytest_plugins = ["nself.testing.plugin"]`.
"""
