#include "sentry/kernel/keys/key.h"

#include <time.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {

const KeyType* FindKeyType(const std::string& name) {
  for (const KeyType* t : {&kKeyTypeUser, &kKeyTypeLogon, &kKeyTypeBigKey, &kKeyTypeKeyring}) {
    if (name == t->name) return t;
  }
  return nullptr;
}

int64_t KeyNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

Key::Key(int32_t serial, const KeyType* type, std::string description,
         std::shared_ptr<KeyUser> user, gid_t gid, uint32_t perm, bool in_quota,
         uint32_t quotalen)
    : serial(serial),
      type(type),
      description(std::move(description)),
      user(std::move(user)),
      gid(gid),
      perm(perm),
      in_quota(in_quota),
      quotalen(quotalen) {
  this->user->nkeys++;
  if (in_quota) {
    this->user->qnkeys++;
    this->user->qnbytes += quotalen;
  }
}

// key_gc_unused_keys(): the owner gets its quota back. No lock: the last
// holder may drop the key anywhere (see the header).
Key::~Key() {
  user->nkeys--;
  if (instantiated) user->nikeys--;
  if (in_quota) {
    user->qnkeys--;
    user->qnbytes -= quotalen;
  }
}

Status Key::Permits(const Credentials& c, bool possessed, uint32_t need) const {
  uint32_t granted;
  if (uid() == c.fsuid) {
    granted = perm >> 16;
  } else if (gid != static_cast<gid_t>(-1) && (gid == c.fsgid || c.InGroup(gid))) {
    granted = perm >> 8;
  } else {
    granted = perm;
  }
  if (possessed) granted |= perm >> 24;
  if ((granted & need & kKeyNeedAll) != need) return Errno(EACCES);
  return {};
}

Status Key::Validate(int64_t now) const {
  if (invalidated) return Errno(ENOKEY);
  if (revoked) return Errno(EKEYREVOKED);
  if (Expired(now)) return Errno(EKEYEXPIRED);
  return {};
}

Status Key::Reserve(uint32_t new_datalen, int64_t maxbytes) {
  const int64_t delta = static_cast<int64_t>(new_datalen) - datalen;
  if (delta != 0 && in_quota) {
    if (delta > 0 && user->qnbytes + delta > maxbytes) return Errno(EDQUOT);
    user->qnbytes += delta;
    quotalen = static_cast<uint32_t>(quotalen + delta);
  }
  datalen = new_datalen;
  return {};
}

std::string Key::Describe() const {
  // keyring_describe(), user_describe(), big_key_describe().
  if (is_keyring()) {
    std::string s = description.empty() ? "[anon]" : description;
    if (instantiated && reject_error == 0) {
      absl::StrAppend(&s, links.empty() ? ": empty" : absl::StrCat(": ", links.size()));
    }
    return s;
  }
  std::string s = description;
  if (instantiated && reject_error == 0) {
    absl::StrAppend(&s, ": ", datalen);
    if (type == &kKeyTypeBigKey) absl::StrAppend(&s, datalen > 1024 ? " [file]" : " [buff]");
  }
  return s;
}

}  // namespace seedvisor::sentry
