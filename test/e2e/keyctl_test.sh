#!/usr/bin/env bash
# End-to-end: keyutils' keyctl(1) under `seedsc do` (issue 13): a session
# keyring, user keys added, read, updated, searched, linked, revoked; a
# request for a key nobody has; a keyring's listing.
#
#   bash test/e2e/keyctl_test.sh [--seedsc=PATH] [--only=REGEX]
#   bash test/e2e/keyctl_test.sh --seedsc=test/e2e/native_as_seedsc.sh --reference=native
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/testlib.sh"
testlib_init "$@"

[[ -x /usr/bin/keyctl ]] || { echo "keyctl_test: /usr/bin/keyctl missing (see scripts/install-deps.sh)" >&2; exit 2; }
cd "$TESTLIB_TMP" || exit 2

# Each case runs in a new anonymous session keyring (keyctl session -).
tcase user_key_lifecycle --status 1 --out $'hello\nworld\nfound\nuser;0;0;3f010000;k\nkeyctl_read_alloc: Key has been revoked' -- \
  "${DO[@]}" /usr/bin/keyctl session - /bin/sh -c 'exec 2>&1
    id=$(keyctl add user k hello @s) && keyctl print "$id"
    echo -n world | keyctl pupdate "$id" && keyctl print "$id"
    [ "$(keyctl search @s user k)" = "$id" ] && echo found
    keyctl rdescribe "$id"
    keyctl revoke "$id" && keyctl print "$id"' 

tcase keyring_listing --out $'2 keys in keyring:\nN: --alswrv     0     0 user: a\nN: --alswrv     0     0 user: b\nkeyring;0;0;3f010000;ring' -- \
  "${DO[@]}" /usr/bin/keyctl session - /bin/sh -c 'exec 2>&1
    r=$(keyctl newring ring @s)
    keyctl add user a 1 "$r" >/dev/null && keyctl add user b 2 "$r" >/dev/null
    keyctl list "$r" | sed "s/^ *[0-9]*:/N:/"
    keyctl rdescribe "$r"'

tcase request_missing_key --status 1 --out $'request_key: Required key not available' -- \
  "${DO[@]}" /usr/bin/keyctl session - /bin/sh -c 'exec 2>&1; keyctl request user nope'

tcase session_named --out $'same' -- \
  "${DO[@]}" /usr/bin/keyctl session seedvisor-e2e /bin/sh -c 'exec 2>&1
    [ "$(keyctl rdescribe @s | cut -d";" -f5)" = seedvisor-e2e ] && echo same'

testlib_finish
