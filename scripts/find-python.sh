#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 runs on 3.8-3.10 only; Backline pins 3.10).
# Order: $PYTHON_BIN if set, python3.10 on PATH, the 3.10 versions of pyenv ($PYENV_ROOT, ~/.pyenv,
# /root/.pyenv; newest first), then the usual install prefixes. $FIND_PYTHON_PLACES replaces the
# last two lists (pyenv roots and interpreters, space-separated). Exits 1 saying what it looked at
# and what to install when none is found.
set -u
want="3.10"
places="${FIND_PYTHON_PLACES-${PYENV_ROOT:-$HOME/.pyenv} /root/.pyenv /usr/local/bin/python3.10 /usr/bin/python3.10 /opt/python3.10/bin/python3}"
is_310() { [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; }
candidates=()
[ -n "${PYTHON_BIN:-}" ] && candidates+=("$PYTHON_BIN")
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
for place in $places; do
  if [ -d "$place/versions" ]; then
    for dir in $(ls -d "$place"/versions/3.10.* 2>/dev/null | sort -V -r); do candidates+=("$dir/bin/python"); done
  else
    candidates+=("$place")
  fi
done
for python in "${candidates[@]}"; do
  # print the real binary, not a pyenv shim (a shim answers only where .python-version names 3.10)
  if is_310 "$python"; then "$python" -c 'import sys; print(sys.executable)'; exit 0; fi
done
{
  echo "No Python $want interpreter found (Rasa 3.6 needs Python 3.8-3.10; Backline uses $want)."
  echo "Looked at: ${candidates[*]:-nothing}"
  echo "Install Python $want (e.g. 'pyenv install 3.10.13' or 'apt-get install python3.10 python3.10-venv'),"
  echo "or name one: make PYTHON_BIN=/path/to/python3.10 <target>"
} >&2
exit 1
