#!/bin/bash
# Two seedds on one host and a restart of one: see seedd_pair.py. Args: SEEDD SEEDSC.
set -eu
here=$(dirname "$0")
export PYTHONPATH="$here/../../bench/faas:$here/../containerd${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 "$here/seedd_pair.py" "$@"
