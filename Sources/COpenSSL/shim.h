// COpenSSL: OpenSSL's C API, with wrappers for the macros and variadics Swift cannot import.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// SSL_CTX configuration (all macros over SSL_CTX_ctrl).
static inline long copenssl_ctx_set_min_proto(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long copenssl_ctx_set_max_proto(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}
static inline uint64_t copenssl_ctx_set_options(SSL_CTX *ctx, uint64_t options) {
    return SSL_CTX_set_options(ctx, options);
}
static inline long copenssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long copenssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

// Per-connection (macros over SSL_ctrl / BIO_ctrl).
static inline size_t copenssl_bio_ctrl_pending(BIO *b) { return BIO_ctrl_pending(b); }
static inline long copenssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
/// The allocated capacity of a memory BIO's buffer (BUF_MEM.max), or 0 if it has none.
static inline size_t copenssl_mem_bio_capacity(BIO *b) {
    BUF_MEM *mem = NULL;
    if (BIO_get_mem_ptr(b, &mem) <= 0 || mem == NULL) return 0;
    return mem->max;
}

// Key generation: EVP_EC_gen is a macro over the variadic EVP_PKEY_Q_keygen.
static inline EVP_PKEY *copenssl_ec_keygen(const char *curve) { return EVP_EC_gen(curve); }

static const uint64_t COPENSSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t COPENSSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
static const uint64_t COPENSSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
static const long COPENSSL_MODE_RELEASE_BUFFERS = SSL_MODE_RELEASE_BUFFERS;
static const long COPENSSL_MODE_ENABLE_PARTIAL_WRITE = SSL_MODE_ENABLE_PARTIAL_WRITE;
static const long COPENSSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
static const long COPENSSL_SESS_CACHE_OFF = SSL_SESS_CACHE_OFF;
static const int COPENSSL_TLS1_1_VERSION = TLS1_1_VERSION;
static const int COPENSSL_TLS1_2_VERSION = TLS1_2_VERSION;
static const int COPENSSL_TLS1_3_VERSION = TLS1_3_VERSION;
static const int COPENSSL_MBSTRING_ASC = MBSTRING_ASC;
#endif
