"""The branded `nself` program: Invoke's Program with nself's config, global flags,
project discovery and exit codes.

Only `Program.run` exits; everything below it raises `NselfError`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Argument, Collection, Config, Exit, ParseError, Program, UnexpectedExit
from invoke.loader import FilesystemLoader

from nself import __version__
from nself.errors import Exit as Code
from nself.errors import NselfError
from nself.tasks.flags import arguments

GLOBAL_FLAGS = {"env": str, "json": bool, "yes": bool, "dry-run": bool, "quiet": bool,
                "verbose": bool}
REPAIRS = ("config.set", "config.reset", "config.edit")   # run on an nself.yml that fails to load
GLOBAL_OPTIONS = {*(f.replace("-", "_") for f in GLOBAL_FLAGS), "debug"}


class NselfConfig(Config):
    """Invoke config with prefix `nself`: project file `nself.yml`, env vars `NSELF_*`."""

    prefix = "nself"

    @staticmethod
    def global_defaults():
        from nself.runtime import DEFAULTS

        defaults = Config.global_defaults()
        defaults["nself"] = dict(DEFAULTS)
        return defaults


class NselfProgram(Program):
    def core_args(self):
        return [*super().core_args(),
                Argument(names=("env",), help="environment: local, staging, production "
                                              "(aliases dev, prod)"),
                Argument(names=("json",), kind=bool, default=False,
                         help="print exactly one JSON document on stdout"),
                Argument(names=("yes",), kind=bool, default=False,
                         help="answer yes to confirmations (required without a terminal)"),
                Argument(names=("dry-run",), kind=bool, default=False,
                         help="print the plan of changes without making them"),
                Argument(names=("quiet",), kind=bool, default=False, help="print errors only"),
                Argument(names=("verbose",), kind=bool, default=False, help="print more detail")]

    # -- running ----------------------------------------------------------------
    def run(self, argv=None, exit=True):
        self._json_requested = _env_flag("NSELF_JSON")
        words = list(sys.argv if argv is None else argv)
        if words[1:2] == ["--complete"]:   # the console script answers this before loading Invoke
            from nself.completion import fast

            code = fast.main(words[2:])
            if exit:
                sys.exit(code)
            return code
        try:
            return self._run(argv)
        except NselfError as exc:
            code = self._report(exc)
        except (ParseError, UnexpectedExit, Exit) as exc:
            code = self._report_invoke(exc)
        except KeyboardInterrupt:
            code = 130
        except BrokenPipeError:  # `nself config.show | head`: the reader left, not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 141
        except OSError as exc:   # a file system or device refusal that no layer below named
            code = self._report(_os_error(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if self._debug():
                _print_traceback()
            code = self._report(NselfError(f"internal error: {type(exc).__name__}: {exc}",
                                           hint="run again with --debug for the traceback, "
                                                "and report it"))
        if exit:
            sys.exit(code)
        return code

    def _run(self, argv):
        self.create_config()
        self.parse_core(argv)
        self.parse_collection()
        if self._route():
            return
        self.parse_tasks()
        self.parse_cleanup()
        self.update_config()
        self.execute()

    def _debug(self) -> bool:
        args = getattr(self, "core", None)
        return bool(args and self.args.debug.value) or \
            os.environ.get("NSELF_LOG_LEVEL", "").lower() == "debug"

    def _report(self, exc: NselfError) -> int:
        if self._json_requested and not exc.reported:
            import json

            print(json.dumps(exc.to_dict(), indent=2))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return exc.code

    def _report_invoke(self, exc) -> int:
        if isinstance(exc, ParseError):
            return self._report(NselfError(str(exc), code=Code.USAGE, hint=self._parse_hint(str(exc))))
        if isinstance(exc, Exit):
            if exc.message and exc.code:   # Invoke's own refusals (`--list nosuch`)
                return self._report(NselfError(str(exc.message), code=Code.USAGE,
                                               hint=f"see `{self.binary} --list`"))
            if exc.message:
                print(exc.message, file=sys.stderr)
            return exc.code
        print(exc, file=sys.stderr, end="")
        return exc.result.exited

    def _parse_hint(self, message: str) -> str:
        """A did-you-mean for an unknown task (`k8s.genrate` → `k8s.generate`)."""
        import difflib
        import re

        hint = f"see `{self.binary} --help` or `{self.binary} --help TASK`"
        unknown = re.fullmatch(r"No idea what '(.*)' is!", message)
        collection = getattr(self, "collection", None)
        if unknown and collection is not None:
            close = difflib.get_close_matches(unknown.group(1), list(collection.task_names), n=3, cutoff=0.8)
            if close:
                hint = "did you mean " + " or ".join(f"`{c}`" for c in close) + f"? ({hint})"
        return hint

    # -- help, legacy aliases, planned groups ----------------------------------------
    def parse_collection(self):
        """Load the collection for a bare `--help` too (Invoke prints its help before loading):
        nself's help lists the groups of this project."""
        help_arg = self.args.help
        asked = help_arg._value   # set directly: the `value` setter would cast None to "None"
        help_arg._value = None if asked is True else asked
        super().parse_collection()
        help_arg._value = asked

    def _route(self) -> bool:
        """Before Invoke parses the tasks: forward a legacy alias (warning on stderr), refuse a
        planned group that is not built, and answer the help forms (`nself help [GROUP [TASK]]`,
        `nself GROUP --help`, `nself --help GROUP`, a bare group without a default task).
        True when help was printed and nothing is left to run."""
        from itertools import takewhile

        from nself import help as tree
        from nself import legacy

        taken = {*self.collection.tasks, *self.collection.collections}
        words, alias = legacy.rewrite(list(self.core.unparsed), taken)
        if alias:
            print(legacy.warning(alias), file=sys.stderr)
        self.core.unparsed = words
        legacy.refuse_planned(words, set(self.collection.task_names))
        lead = list(takewhile(lambda w: not w.startswith("-"), words))
        asked = self.args.help.value
        if lead[:1] == ["help"] and "help" not in taken:
            return self._help(_without_flags(words[1:]))
        if isinstance(asked, str):
            return self._help([asked, *lead])
        if not lead or lead[0] in self.collection.task_names:
            return False   # a task
        if "." in lead[0]:   # a dotted group (`k8s.ingress --help`); Invoke reports unknown ones
            try:
                kind, path = tree.resolve(self.collection, lead[:1])
            except NselfError:
                return False
        else:
            kind, path = tree.resolve(self.collection, lead)
        if kind == "group" and (any(w in ("--help", "-h") for w in words)
                                or not tree.subcollection(self.collection, path).default):
            return self._help([path])
        return False

    def _help(self, words: list[str]) -> bool:
        from nself import help as tree
        from nself import legacy

        json_mode = self.args.json.value or self._json_requested
        if words == ["legacy"] and "legacy" not in self.collection.collections:
            rows = legacy.table()
            if json_mode:
                _print_json({"legacy": rows})
            else:
                print("Old names (nself 0.4.6), forwarded with a warning until " + legacy.REMOVED_IN + ":\n")
                self.print_columns([(r["alias"], f"→ nself {r['use']}") for r in rows])
            return True
        kind, path = tree.resolve(self.collection, words) if words else ("group", "")
        if kind == "task":
            self.parser = self._make_parser()
            if json_mode:
                task = self.collection[path]
                _print_json({"task": path, "summary": tree.summary(task), "positional": task.positional,
                             "options": [{"flag": f, "help": h} for f, h in
                                         self.parser.contexts[path].help_tuples()]})
            else:
                self.print_task_help(path)
            return True
        doc = tree.group_doc(self.collection, path)
        if json_mode:
            _print_json(doc)
        elif path:
            tree.render_group(doc, print, self.binary)
        else:
            self.print_help()
        return True

    def print_version(self) -> None:
        """`nself --version`; with --json (or NSELF_JSON=1) one JSON document."""
        if self._json_requested:
            _print_json({"name": self.name, "version": self.version})
        else:
            super().print_version()

    def print_help(self) -> None:
        """`nself --help` and `nself help`: the groups one line each, then the global flags."""
        from nself import help as tree

        print(f"Usage: {self.binary} [--global-flags] GROUP TASK [--options]   "
              f"(or GROUP.TASK; `{self.binary} help GROUP` lists a group)")
        print("")
        tree.render_group(tree.group_doc(self.collection, ""), print, self.binary)
        ours = {f"--{f}" for f in (*GLOBAL_FLAGS, "debug", "help", "list", "version", "print-completion-script")}
        tuples = self.initial_context.help_tuples()
        for title, part in (("Global flags", [t for t in tuples if ours & set(_flags(t[0]))]),
                            ("Invoke's options", [t for t in tuples if not ours & set(_flags(t[0]))])):
            print(f"{title}:")
            print("")
            self.print_columns(part)
        print(f"Old command names: `{self.binary} help legacy`.")

    # -- parsing ------------------------------------------------------------------
    def parse_core(self, argv):
        if argv is None:
            argv = sys.argv
        argv = list(argv)
        # What follows `--` is the task's command (k8s.exec, servers.exec).
        self._remainder = argv[argv.index("--") + 1:] if "--" in argv else []
        self.root = None
        # --json anywhere before `--` (also after the task, parsed later) shapes every error.
        self._json_requested = "--json" in argv[:argv.index("--") if "--" in argv else len(argv)] \
            or _env_flag("NSELF_JSON")
        super().parse_core(argv)
        if sum(bool(self.args[f].value) for f in ("quiet", "verbose")) > 1:
            raise NselfError("--quiet and --verbose contradict each other", code=Code.USAGE,
                             hint="pass one of them")

    def parse_core_args(self):
        """nself's own completion scripts (they complete values too), in place of Invoke's."""
        super().parse_core_args()
        shell = self.core[0].args["print-completion-script"].value
        if shell:
            from nself.completion import scripts

            print(scripts.script(shell), end="")
            raise Exit

    def load_collection(self):
        from nself.project import find_root

        start = self.args["search-root"].value
        try:
            os.getcwd()
        except FileNotFoundError:
            raise NselfError("the current directory no longer exists (it was deleted or moved)",
                             hint="cd into your project again") from None
        self.root = find_root(Path(start) if start else None)
        self._broken = False   # nself.yml is refused, and the command may repair it (REPAIRS)
        if self.root is not None:
            try:
                self._check_project_config(self.root, self.config.global_defaults())
            except NselfError:
                if not self._repairing():
                    raise
                self._broken = True
            else:
                self.config.set_project_location(str(self.root))
                self.config.load_project()
        tasks_file = self.root / "tasks.py" if self.root is not None else None
        if tasks_file is not None and tasks_file.is_file() and not self.args.collection.value:
            loader = FilesystemLoader(config=self.config, start=str(self.root))
            try:
                module, parent = loader.load()
            except Exception as exc:  # noqa: BLE001 - a user's file may raise anything
                if self._debug():
                    _print_traceback()
                raise NselfError(f"{tasks_file} failed to load: {type(exc).__name__}: {exc}",
                                 code=Code.CONFIG,
                                 hint="fix the error in tasks.py (run with --debug for the "
                                      "traceback)") from None
            self.collection = Collection.from_module(
                module, loaded_from=parent, auto_dash_names=self.config.tasks.auto_dash_names)
            _add_builtins(self.collection)
        elif self.args.collection.value:
            try:
                super().load_collection()
            except Exit as exc:
                raise NselfError(str(exc.message), code=Code.USAGE,
                                 hint="-c names a tasks module (without .py) in this directory "
                                      "or a parent") from None
        else:
            from nself.tasks import namespace

            self.collection = namespace(project_config_too=not self._broken)
        if self.root is not None and not self._broken:   # the collections' defaults merge later
            try:
                self._check_project_config(self.root, _collection_defaults(self.collection))
            except NselfError:
                if not self._repairing():
                    raise
                from nself.tasks import namespace

                self._broken = True   # load again without the file Invoke cannot merge
                self.config.set_project_location(None)
                self.collection = namespace(project_config_too=False)

    def _repairing(self) -> bool:
        """Is the command one that may repair an nself.yml Invoke cannot merge (`config set`,
        `config reset`, `config edit`)? They read and validate the file themselves, and write
        it only when the result validates. Judged from the words before the collection loads."""
        words = [w for w in self.core.unparsed if not w.startswith("-")]
        named = ".".join(words[:2]) if words[:1] == ["config"] else (words[0] if words else "")
        return named in REPAIRS

    def _check_project_config(self, root: Path, defaults: dict) -> None:
        """Refuse a malformed nself.yml before Invoke merges it over `defaults` (Invoke would
        crash with a traceback).

        The schema (unknown keys, types of nself's sections) is checked when a task loads
        the project, so that `config.validate` can report every problem at once.
        """
        from nself.project import SETTINGS_FILES

        path = next((root / n for n in SETTINGS_FILES if (root / n).exists()), None)
        if path is not None:
            from nself.project import settings, yamlio

            data, text = yamlio.load(path, "nself.yml")
            if data is not None and not isinstance(data, dict):
                raise NselfError(f"{path}:1: nself.yml must be a mapping of sections",
                                 code=Code.CONFIG,
                                 hint="start with keys such as `project:` or `environments:`")
            settings.check_defaults(data, defaults, path, text)

    def parse_tasks(self):
        self.core.unparsed = self._hoist_core_flags(self._respell(self.core.unparsed))
        self._json_requested = self._json_requested or "--json" in self.core.unparsed
        try:
            super().parse_tasks()
        except ValueError as exc:   # Invoke casts `--tail abc` to int while parsing
            import re

            value = re.search(r": (.*)$", str(exc))
            raise NselfError(f"expected a whole number, got {value.group(1) if value else exc}",
                             code=Code.USAGE, hint=f"see `{self.binary} --help TASK` for the flags "
                                                   "that take numbers") from None
        for context in self.tasks:
            self._check_required(context)

    def _check_required(self, context) -> None:
        """A task parameter without a default is required even when it is a flag (Invoke
        would call the task with None: `cloud.provision hetzner` without --name)."""
        import inspect

        params = inspect.signature(self.collection[context.name].body).parameters
        no_default = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
        missing = [f"--{arg.name}" for arg in context.args.values()
                   if arg.value is None and arg.name.replace("-", "_") in no_default]
        if missing:
            raise NselfError(f"{context.name} needs {', '.join(missing)}", code=Code.USAGE,
                             hint=f"see `{self.binary} {context.name} --help`")

    def _hoist_core_flags(self, argv: list[str]) -> list[str]:
        """Global flags and `--help` after a task apply to the command, even where Invoke
        would take them as the value of a missing positional (`nself k8s.logs --help`)."""
        out, front, task = [], [], None
        i = 0
        while i < len(argv):
            word = argv[i]
            if word in self.collection.task_names:
                task = self.collection[word]
            own = {n for a in arguments(task) for n in a.names} if task is not None else set()
            name = word.lstrip("-")
            if task is not None and word.startswith("-") and name not in own:
                if name in ("help", "h"):
                    self.args.help.value = next(w for w in argv if w in self.collection.task_names)
                    return []
                if word.startswith("--") and name.replace("-", "_") in GLOBAL_OPTIONS:
                    takes_value = GLOBAL_FLAGS.get(name) is str and i + 1 < len(argv)
                    front += argv[i:i + 1 + takes_value]
                    i += 1 + takes_value
                    continue
            out.append(word)
            i += 1
        return front + out

    def _respell(self, argv: list[str]) -> list[str]:
        """`k8s rollout undo web` → `k8s.rollout.undo web`, optional positionals → flags."""
        if "--" in argv:
            argv = argv[:argv.index("--")]
        names = set(self.collection.task_names) | {
            alias for aliases in self.collection.task_names.values() for alias in aliases}
        out, i = [], 0
        while i < len(argv):
            word = argv[i]
            if word.startswith("-"):
                out.append(word)
                i += 1
                continue
            for j in range(len(argv), i, -1):  # the longest matching task path wins
                candidate = ".".join(argv[i:j])
                if all(not w.startswith("-") for w in argv[i:j]) and candidate in names:
                    out.append(candidate)
                    i = self._optional_positionals(candidate, argv, j, out)
                    break
            else:
                out.append(word)
                i += 1
        return out

    def _optional_positionals(self, name: str, argv: list[str], i: int, out: list[str]) -> int:
        task = self.collection[name]
        optional = getattr(task, "optional_positionals", ())
        # `deploy.logs ENV [SERVICE]`: the required positionals come first and stay positional
        for _ in [p for p in getattr(task, "positional", ()) if p not in optional] if optional else ():
            if i < len(argv) and not argv[i].startswith("-"):
                out.append(argv[i])
                i += 1
        for param in optional:
            if i < len(argv) and not argv[i].startswith("-"):
                out += [f"--{param.replace('_', '-')}", argv[i]]
                i += 1
        return i

    def update_config(self, merge=True):
        super().update_config(merge=False)
        if self.args.env.value is not None and not self.args.env.value.strip():
            # an empty name would read as "not given" and pick the default environment
            raise NselfError("--env needs an environment name, got an empty one", code=Code.USAGE,
                             hint="pass --env local, staging or production (or leave --env out "
                                  "for the default; `nself env list` shows them)")
        verbosity = ("quiet" if self.args.quiet.value else "verbose" if self.args.verbose.value
                     else "debug" if self.args.debug.value else None)
        self.config.load_overrides({"nself": {
            "env": self.args.env.value, "json": self.args.json.value, "yes": self.args.yes.value,
            "dry_run": self.args["dry-run"].value, "verbosity": verbosity,
            "root": str(self.root) if self.root else None,
            "remainder": list(self._remainder)}}, merge=False)
        if merge:
            self.config.merge()


def _collection_defaults(collection: Collection) -> dict:
    """The config defaults of a collection and its sub-collections (`{"k8s": {"output": …}}`);
    a sub-collection's own defaults win over what `namespace()` copied from nself.yml."""
    out = dict(collection.configuration())
    for sub in collection.collections.values():
        out.update(_collection_defaults(sub))
    return out


def _flags(spec: str) -> list[str]:
    """`-h [STRING], --help[=STRING]` → ["-h", "--help"]."""
    import re

    return re.findall(r"--?[\w-]+", spec)


def _print_json(doc) -> None:
    import json

    print(json.dumps(doc, indent=2))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


def _os_error(exc: OSError) -> NselfError:
    """An OSError as a refusal with the OS's words and the path: exit 7 when it is about
    permission (including a read-only file system), else 1."""
    import errno

    path = " → ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    words = exc.strerror or type(exc).__name__
    message = f"{path}: {words}" if path else words
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return NselfError(message, code=Code.PERMISSION,
                          hint="make the path writable (or readable) for this user, or work in "
                               "another folder")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NselfError(message, hint="free some space on that file system and run again")
    return NselfError(message, hint="check the path; run again with --debug for the traceback")


def _without_flags(words: list[str]) -> list[str]:
    """`help --json config` → ["config"]: the global flags (and --env's value) anywhere after
    `help` (JSON mode was already read from the whole command line)."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = GLOBAL_FLAGS.get(word.lstrip("-")) is str and "=" not in word
        else:
            out.append(word)
    return out


def _print_traceback() -> None:
    import traceback  # only with --debug: it costs start-up time

    traceback.print_exc()


def _add_builtins(collection: Collection) -> None:
    """`new`, `config.*` and `blueprint.*` are there in every project."""
    from nself.tasks import BUILTINS, namespace

    builtins = namespace(include=BUILTINS)
    for name, sub in builtins.collections.items():
        if name not in collection.collections and name not in collection.tasks:
            collection.add_collection(sub)
    if "new" not in collection.tasks and "new" not in collection.collections:
        collection.add_task(builtins.tasks["new"])


program = NselfProgram(name="nself", binary="nself", binary_names=["nself"],
                       version=__version__, config_class=NselfConfig)


def main() -> None:
    program.run()
