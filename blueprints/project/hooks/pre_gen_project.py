"""Refuse a project name that cannot be a Kubernetes name (before anything is written)."""
import re
import sys

NAME = "{{ cookiecutter.project_name }}"
if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}[a-z0-9]", NAME):
    print(f"error: {NAME!r} is not a valid project name: use lowercase letters, digits and '-', "
          "starting with a letter", file=sys.stderr)
    sys.exit(1)
