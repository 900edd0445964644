"""The `nself` command's first lines: Ctrl-C while Python is still importing nself ends
quietly with exit 130 instead of a KeyboardInterrupt traceback from some import.

Once the Program runs, Ctrl-C is a KeyboardInterrupt again: tasks revert what they started,
and the Program reports exit 130. (Only the interpreter's own start, before this module,
is out of reach.)
"""
import os
import signal


def _quietly(signum, frame):
    os._exit(130)


signal.signal(signal.SIGINT, _quietly)


def main() -> None:
    from nself.cli import program

    signal.signal(signal.SIGINT, signal.default_int_handler)
    program.run()
