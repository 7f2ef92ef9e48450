# Sourced by every test that has a kvm variant (syscall suites, sfork, e2e,
# hostile): kvm needs a usable /dev/kvm, and where there is none the test
# says so in one line (the platform's own reason) and skips; it never
# passes silently.
#
#   source test/kvm_skip.sh
#   kvm_skip_unless_usable "$SEEDSC" "busybox_test"   # exits 0 on a skip

# Exits 0 after one "NAME: SKIPPED on kvm: REASON" line when `SEEDSC
# --platform=kvm` cannot start a sandbox for a reason the kvm platform names
# ("kvm: /dev/kvm: ..."); returns otherwise (kvm works, or it fails for
# some other reason, which the test itself then reports).
kvm_skip_unless_usable() {  # SEEDSC NAME
  local probe
  if ! probe="$("$1" --platform=kvm do /bin/true 2>&1)" && grep -q "kvm: " <<<"$probe"; then
    echo "$2: SKIPPED on kvm: $(grep -m1 "kvm: " <<<"$probe")"
    exit 0
  fi
}
