#!/bin/sh
# Usage: embed_stub.sh STUB_BINARY OUT.cc — writes the stub's bytes as a C++ array.
set -eu
{
  echo '#include "platform/systrap/stub_image.h"'
  echo 'namespace seedvisor::platform::systrap {'
  echo 'const uint8_t kStubImage[] = {'
  od -An -v -tx1 "$1" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
  echo '};'
  echo 'const size_t kStubImageSize = sizeof(kStubImage);'
  echo '}  // namespace seedvisor::platform::systrap'
} > "$2"
