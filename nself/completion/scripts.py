"""The shell side of completion: each script hands the words up to the cursor (the current one
last, possibly empty) to `nself --complete --` and offers what it prints, one per line.

Install: `nself --print-completion-script bash > /etc/bash_completion.d/nself` (or
`source <(nself --print-completion-script bash)` in ~/.bashrc); zsh: save it as `_nself` in a
folder of `$fpath`; fish: `~/.config/fish/completions/nself.fish`.
"""
from __future__ import annotations

from nself.errors import UsageError

BASH = r"""# nself completion for bash (nself --print-completion-script bash)
_nself_complete() {
    local IFS=$'\n'
    COMPREPLY=( $(nself --complete -- "${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null) )
}
complete -o default -F _nself_complete nself
"""

ZSH = r"""#compdef nself
# nself completion for zsh (nself --print-completion-script zsh)
_nself() {
    local -a candidates
    candidates=(${(f)"$(nself --complete -- "${(@)words[1,CURRENT]}" 2>/dev/null)"})
    (( ${#candidates} )) && compadd -Q -- "${candidates[@]}"
}
if (( $+functions[compdef] )); then
    compdef _nself nself
fi
"""

FISH = r"""# nself completion for fish (nself --print-completion-script fish)
function __nself_complete
    nself --complete -- (commandline -opc) (commandline -ct) 2>/dev/null
end
complete -c nself -f -a '(__nself_complete)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def script(shell: str) -> str:
    if shell not in SCRIPTS:
        raise UsageError(f"no completion script for {shell!r}", hint="use bash, zsh or fish")
    return SCRIPTS[shell]
