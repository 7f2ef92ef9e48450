#!/bin/bash
# seedd end to end: see seedd_e2e.py. Args: SEEDD SEEDSC.
set -eu
here=$(dirname "$0")
exec /usr/bin/python3 "$here/seedd_e2e.py" "$@"
