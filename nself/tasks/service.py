"""service: the stack's optional services (email, search, functions, mlflow, admin): list,
enable, disable, status, and each one's own commands."""
from __future__ import annotations

import json

from invoke import Collection, task

from nself import runtime
from nself.services.catalog import SERVICES
from nself.tasks.env import _root


@task(name="list", default=True)
def list_(c):
    """List every optional service: enabled in this project or not, image, URL."""
    from nself.services.manage import list_services

    out = runtime.output(c)
    rows = list_services(_root(c))
    out.emit({"services": rows}, render=lambda d: out.table(
        ["service", "compose service", "enabled", "image", "url"],
        [[r["service"], r["compose_service"], "yes" if r["enabled"] else "no", r["image"], r["url"]]
         for r in d["services"]]))


def _switch(name: str, action: str, doc: str):
    """The `enable` or `disable` task of service `name` (one body, the name bound)."""
    def body(c):
        from nself.services import manage

        out = runtime.output(c)
        result = getattr(manage, action)(_root(c), name, env=runtime.options(c).env)
        out.emit(result, render=lambda d: _say_change(out, d))
    body.__doc__ = doc
    return task(name=action)(body)


def _status(name: str):
    def status(c):
        from nself.errors import Exit, NselfError
        from nself.services import status as probe
        from nself.services.catalog import SERVICES
        from nself.services.manage import list_services

        out = runtime.output(c)
        project = runtime.load(c)
        svc = SERVICES[name]
        rows = probe.local(project.name, svc) if project.env == "local" else probe.remote(project, svc, out)
        enabled = next(r["enabled"] for r in list_services(project.root) if r["service"] == name)
        doc = probe.summary(svc, project.env, enabled, rows)
        out.emit(doc, render=lambda d: _say_status(out, d))
        if not doc["running"] or doc["healthy"] is False:
            raise NselfError(f"{name} is {'not running' if not doc['running'] else 'unhealthy'} in {project.env}",
                             code=Exit.RUNTIME, reported=True,
                             hint=None if enabled else f"it is not in this project: `nself service {name} enable`")
    status.__doc__ = (f"Show whether {name} runs and is healthy (--env; local: podman).\n\n"
                      "Exit 4 when a container is not running or fails its healthcheck.")
    return task(name="status")(status)


def _say_status(out, d: dict) -> None:
    health = {True: "healthy", False: "unhealthy", None: "no healthcheck"}[d["healthy"]]
    out.say(f"{d['service']} in {d['environment']}: {'running' if d['running'] else 'not running'}"
            f"{', ' + health if d['running'] else ''} ({d['url']})")
    if d["containers"]:
        out.table(["container", "state", "healthy"],
                  [[r["name"], r["state"], {True: "yes", False: "no", None: "-"}[r["healthy"]]]
                   for r in d["containers"]])


def _say_change(out, d: dict) -> None:
    out.say(f"{d['service']} {d['state']} ({d['compose_service']}, {d['url']}); "
            f"changed: {', '.join(d['files']) or 'nothing'}")
    if d["secrets"] and d["state"] == "enabled":
        out.say(f"new secrets in .env.secrets (0600, not shown): {', '.join(d['secrets'])}")


@task(name="test", help={"to": "the address to send the test mail to"})
def email_test(c, to):
    """Send a test mail through the environment's SMTP settings.

    SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD, SMTP_FROM, SMTP_SECURE (docs/services.md)."""
    from nself.services import email

    out = runtime.output(c)
    project = runtime.load(c)
    smtp = email.settings(project.variables.values)
    mail = email.message(smtp, to, project.name, project.env)
    if runtime.options(c).dry_run:
        out.emit({"would_send": {"to": to, "from": smtp.sender, "server": f"{smtp.host}:{smtp.port}",
                                 "secure": smtp.secure, "login": bool(smtp.user and smtp.password)}},
                 render=lambda d: out.say(f"would send a test mail to {to} through {d['would_send']['server']}"))
        return
    doc = email.send(smtp, mail)
    out.emit(doc, render=lambda d: out.say(f"sent {d['subject']!r} to {d['to']} through {d['server']} "
                                           f"({d['secure']}{', login' if d['login'] else ''})"))


@task(name="index", positional=["name"], help={
    "name": "the Meilisearch index (made on first use)", "file": "a JSON array of documents, or NDJSON",
    "primary_key": "the documents' primary key field (else Meilisearch infers the one named *id)"})
def search_index(c, name, file, primary_key=None):
    """Add documents to a Meilisearch index; wait until they are indexed."""
    from pathlib import Path

    from nself.plan import LocalRunner, emit
    from nself.services import search

    out = runtime.output(c)
    project = runtime.load(c)
    plan = search.index_plan(search.connection(project.variables.values), name,
                             search.read_documents(Path(file)), primary_key)
    if runtime.options(c).dry_run:
        return emit(out, plan)
    [result] = plan.run(LocalRunner())
    task = result.value
    out.emit({"index": name, "task": task["uid"], "status": task["status"],
              "indexed": (task.get("details") or {}).get("indexedDocuments")},
             render=lambda d: out.say(f"indexed {d['indexed']} document(s) in {name} (task {d['task']})"))


@task(name="query", positional=["name", "text"], help={
    "name": "the Meilisearch index", "text": "what to search for", "limit": "at most this many hits (default 20)"})
def search_query(c, name, text, limit=20):
    """Search a Meilisearch index; --json gives Meilisearch's answer."""
    from nself.services import search

    out = runtime.output(c)
    project = runtime.load(c)
    doc = search.query(search.connection(project.variables.values), name, text, int(limit))

    def render(d):
        out.say(f"{d['estimatedTotalHits']} hit(s) for {d['query']!r} in {name}")
        for hit in d["hits"]:
            out.say("  " + json.dumps(hit, ensure_ascii=False))
    out.emit(doc, render=render)


@task(name="password", help={"show": "print the new password (it is never printed otherwise)"})
def admin_password(c, show=False):
    """Rotate the admin password (NSELF_ADMIN_PASSWORD in .env.secrets)."""
    from nself.services import manage

    out = runtime.output(c)
    value = manage.rotate(_root(c), "admin", "NSELF_ADMIN_PASSWORD")
    doc = {"rotated": "NSELF_ADMIN_PASSWORD", "file": ".env.secrets", **({"password": value} if show else {})}
    out.emit(doc, render=lambda d: out.say(
        "new NSELF_ADMIN_PASSWORD in .env.secrets" + (f": {value}" if show else " (not shown: --show prints it)")
        + "; restart nself-admin to use it"))


EXTRAS = {"email": [email_test], "search": [search_index, search_query],
          "admin": [admin_password]}


def _group(name: str) -> Collection:
    sub = Collection(name, _status(name),
                     _switch(name, "enable", f"Add {name} to the project (compose block, .env, .env.secrets)."),
                     _switch(name, "disable", f"Remove {name} and the variables and secrets its enable added."))
    for extra in EXTRAS.get(name, []):
        sub.add_task(extra)
    sub.__doc__ = f"{name}: {SERVICES[name].compose_name} ({SERVICES[name].image})."
    return sub


ns = Collection("service", list_)
for _name in SERVICES:
    ns.add_collection(_group(_name))
