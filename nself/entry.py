"""The `nself` console script's first lines.

- Ctrl-C while Python is still importing nself ends quietly with exit 130 instead of a
  KeyboardInterrupt traceback from some import. Once the Program runs, Ctrl-C is a
  KeyboardInterrupt again: tasks revert what they started, and the Program reports exit 130.
  (Only the interpreter's own start, before this module, is out of reach.)
- Shell completion (`nself --complete …`) is answered here, before Invoke is imported: that
  import alone can cost more than a completion may take.
"""
import os
import signal
import sys


def _quietly(signum, frame):
    os._exit(130)


signal.signal(signal.SIGINT, _quietly)


def main() -> None:
    if sys.argv[1:2] == ["--complete"]:
        from nself.completion import fast

        sys.exit(fast.main(sys.argv[2:]))
    from nself.cli import program

    signal.signal(signal.SIGINT, signal.default_int_handler)
    program.run()
