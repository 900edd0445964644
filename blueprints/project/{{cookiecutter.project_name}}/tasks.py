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
ns = mount(ns, Collection("db", seed))

# Replace a library task with your own (on a copy; the library is untouched), e.g. run the
# test suite before every canary:
#
# from nself.tasks.deploy import canary as library_canary
#
# @task(help=library_canary.help)
# def canary(c, **kwargs):
#     """Run the tests, then nself's canary."""
#     c.run("pytest -q")
#     library_canary(c, **kwargs)
#
# ns = override(ns, "deploy.canary", canary)
