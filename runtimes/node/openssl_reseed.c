// A Node-API addon with one function, reseed(), that makes the OpenSSL
// inside node draw fresh seed material (RAND_poll: the primary DRBG reseeds
// from getrandom(2); the public and private DRBGs of every thread reseed
// from it at their next use because its reseed counter moved).
//
// Why: OpenSSL re-seeds itself after a fork only when getpid() changes, and
// a sandbox fork keeps the guest's pids, so without this every fork of a
// node seed would repeat crypto.randomInt, generateKey*, randomPrime and
// TLS secrets (seedvisor_entry.js calls reseed() after each fork).
//
//   const m = {exports: {}};
//   process.dlopen(m, '/tmp/openssl_reseed.node');
//   m.exports();  // true when OpenSSL reseeded
//
// The few Node-API declarations below are those of node_api.h (a stable C
// ABI, NAPI_VERSION 1), written out so that building needs no node headers;
// node itself exports them and OpenSSL's RAND_poll (official builds export
// OpenSSL's symbols for addons), so the library links against nothing.
#include <stdbool.h>
#include <stddef.h>

typedef struct napi_env__* napi_env;
typedef struct napi_value__* napi_value;
typedef struct napi_callback_info__* napi_callback_info;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef int napi_status;  // an enum in node_api.h; 0 is napi_ok

#define SEEDVISOR_NAPI_AUTO_LENGTH ((size_t)-1)

napi_status napi_create_function(napi_env env, const char* utf8name, size_t length,
                                 napi_callback cb, void* data, napi_value* result);
napi_status napi_get_boolean(napi_env env, bool value, napi_value* result);

int RAND_poll(void);

static napi_value Reseed(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result = NULL;
  napi_get_boolean(env, RAND_poll() == 1, &result);
  return result;
}

// The module's exports are the function itself.
__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env,
                                                                          napi_value exports) {
  (void)exports;
  napi_value fn = NULL;
  if (napi_create_function(env, "reseed", SEEDVISOR_NAPI_AUTO_LENGTH, Reseed, NULL, &fn) != 0) {
    return NULL;
  }
  return fn;
}
