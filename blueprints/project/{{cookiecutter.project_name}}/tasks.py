"""Tasks of {{ cookiecutter.project_name }}: nself's collections plus your own.

`nself --list` (or `inv --list`) shows them. Behaviour lives in the nself library;
this file only chooses, configures and extends it.
"""
from invoke import Collection, task

from nself.tasks import mount, namespace, override  # noqa: F401 - override: see the example below


@task(help={"sample": "how many demo rows to load"})
def seed(c, sample=10):
    """Load demo data into the local database."""
    c.run(f"echo seeding {sample} rows into {{ cookiecutter.project_name }}")


# nself's collections (config, k8s, helm, …), configured from nself.yml and NSELF_*.
ns = namespace()
ns = mount(ns, Collection("demo", seed))     # `nself demo.seed`; nself's own `db.*` is beside it

# Replace a library task with your own (on a copy; the library is untouched), e.g. a smoke
# test after nself's health check, run by `nself deploy.check ENV` and from a post-deploy hook
# (docs/overriding.md in nself has the whole example):
#
# from nself.tasks.deploy import check as library_check
#
# @task(help=library_check.help, positional=["environment"])
# def check(c, environment):
#     """Check every service, then our smoke test."""
#     library_check(c, environment)
#     c.run("curl -fsS --max-time 5 https://{{ cookiecutter.project_name }}.example.com/health")
#
# ns = override(ns, "deploy.check", check)
