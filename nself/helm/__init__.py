"""Helm: the same converted objects as k8s.generate, as a chart; and the helm binary."""
