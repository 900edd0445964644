"""Shell completion for `nself`: tasks (dotted and spaced), flags, and values read from the
project (environments, services, servers, providers, helm releases).

`fast` answers `nself --complete -- WORDS…` from a cache in `.nself/cache/` without importing
Invoke; `build` makes that cache from the loaded collection (so a project's own tasks complete
too) whenever the project's files or nself's task modules change; `scripts` holds the bash,
zsh and fish glue that `nself --print-completion-script SHELL` prints.
"""
