"""Deploys: environments as targets (SSH hosts running compose, or Kubernetes), releases,
locks, audit, hooks. See docs/deploy.md."""
