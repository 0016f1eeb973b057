"""The image's entrypoint (Dockerfile ENTRYPOINT, after tini): runs its arguments the way
`backline run` runs a process (`backline.launcher.child`).

    entrypoint.py PROGRAM [ARGUMENT ...]

PROGRAM is taken from the virtualenv's bin/ folder when it is there (``rasa``, ``python``), else
from PATH (``bash`` for a look around); each ``${VARIABLE}`` in an argument is replaced by its value
in the container's environment (`backline.launcher.expand`, as systemd does for ExecStart=); the
process runs in the project folder under umask 077 and replaces this one (exec: it gets the signals).

So Compose's ``command:`` and Kubernetes' ``args:`` hold `backline.launcher.process_specs`'
commands verbatim (tests/test_deploy.py compares them). A variable an argument names that is unset
or empty stops the start (exit 2) with its name: the process would otherwise start with
``--auth-token ""`` or ``--port ""``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project folder (/app in the image)

from backline import paths  # noqa: E402
from backline.launcher import BIN, PROJECT_ROOT, expand  # noqa: E402

VARIABLE = re.compile(r"\$\{(\w+)\}")
EXIT_USAGE = 2


def argv(command: Sequence[str], env: Mapping[str, str]) -> List[str]:
    """What to exec for ``command``: the program's path and the arguments with their variables
    expanded from ``env``; ValueError naming the variables that are unset or empty."""
    if not command:
        raise ValueError("no command given")
    program, *args = command
    missing = sorted({name for arg in args for name in VARIABLE.findall(arg) if not env.get(name)})
    if missing:
        raise ValueError(f"{', '.join(missing)} unset or empty: the command {program} needs it")
    executable = BIN / program
    return [str(executable) if executable.is_file() else program, *(expand(arg, env) for arg in args)]


def main(args: Optional[List[str]] = None) -> int:
    command = sys.argv[1:] if args is None else args
    if not command or command[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if command else EXIT_USAGE
    try:
        resolved = argv(command, os.environ)
    except ValueError as error:
        print(f"entrypoint: {error}", file=sys.stderr)
        return EXIT_USAGE
    paths.private_umask()
    os.chdir(PROJECT_ROOT)
    os.execvp(resolved[0], resolved)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
