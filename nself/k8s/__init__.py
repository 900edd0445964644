"""Kubernetes: Project → objects (plain dicts) → a kustomize tree.

`convert` is pure: the same project and overlay always give the same objects.
The writer turns base objects plus per-environment differences into a
kustomize base and overlays.
"""
