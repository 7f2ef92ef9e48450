#!/bin/bash
# What a call makes on the host: see seedd_invoke_path.py. Args: SEEDD SEEDSC.
set -eu
here=$(dirname "$0")
export PYTHONPATH="$here/../../bench/faas${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 "$here/seedd_invoke_path.py" "$@"
