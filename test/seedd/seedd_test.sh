#!/bin/bash
# seedd end to end: see seedd_e2e.py. Args: SEEDD SEEDSC.
set -eu
here=$(dirname "$0")
# seedd_e2e.py starts seedd through bench/faas/seedd_proc.py and reads FRI's
# answers with test/containerd/pb_wire.py.
export PYTHONPATH="$here/../../bench/faas:$here/../containerd${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 "$here/seedd_e2e.py" "$@"
