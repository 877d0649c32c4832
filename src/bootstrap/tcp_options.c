/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's settings: options first, then the environment (the order is listed at the
 * top of tcp.c). A value that is present but invalid is an error naming where it came from;
 * it never falls back to another source. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bootstrap/tcp_internal.h"
#include "core/env.h"
#include "core/error.h"

static mixcomm_status_t resolve_addr(const mixcomm_tcp_options_t* o, char* addr,
                                     size_t addr_cap) {
  const char* v;
  const char* name = "options.addr";
  if (o != NULL && memchr(o->addr, '\0', sizeof o->addr) == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: options.addr is not NUL-terminated");
  if (o != NULL && o->addr[0] != '\0')
    v = o->addr;
  else if ((v = mixcomm__env_nonempty(name = "MIXCOMM_ADDR")) == NULL &&
           (v = mixcomm__env_nonempty(name = "MASTER_ADDR")) == NULL)
    v = "127.0.0.1";
  if (strlen(v) >= addr_cap) {
    char shown[44];
    mixcomm__printable(v, shown, sizeof shown);
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: the address from %s ('%s') is longer "
                          "than %zu bytes",
                          name, shown, addr_cap - 1);
  }
  snprintf(addr, addr_cap, "%s", v);
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t resolve_port(const mixcomm_tcp_options_t* o, int size, int* port) {
  *port = 0;
  if (o != NULL && (o->port < 0 || o->port > 65535))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: options.port=%d is not a TCP port "
                          "(1..65535)",
                          o->port);
  if (o != NULL && o->port > 0) {
    *port = o->port;
    return MIXCOMM_SUCCESS;
  }
  const char* name = "MIXCOMM_PORT";
  const char* v = mixcomm__env_nonempty(name);
  if (v == NULL) {
    name = "MASTER_PORT";
    v = mixcomm__env_nonempty(name);
  }
  long long p = 0;
  if (v != NULL && !mixcomm__parse_ll(v, 1, 65535, &p)) {
    char shown[68];
    mixcomm__printable(v, shown, sizeof shown);
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: %s='%s' is not a TCP port (1..65535)",
                          name, shown);
  }
  if (v == NULL && size > 1)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: no port for rank 0's rendezvous: set "
                          "options.port, or MIXCOMM_PORT or MASTER_PORT in the environment "
                          "(the same on every rank)");
  *port = (int)p;
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t resolve_token(const mixcomm_tcp_options_t* o, unsigned char* token) {
  memset(token, 0, MIXCOMM__TCP_TOKEN_SIZE);
  if (o != NULL && memchr(o->token, '\0', sizeof o->token) == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: options.token is not NUL-terminated "
                          "(at most %d bytes)",
                          MIXCOMM__TCP_TOKEN_SIZE - 1);
  const char* name = "options.token";
  const char* v;
  if (o != NULL && o->token[0] != '\0') {
    v = o->token;
  } else {
    name = "MIXCOMM_JOB_TOKEN";
    if ((v = mixcomm__env_nonempty(name)) == NULL) {
      name = "TORCHELASTIC_RUN_ID";
      v = mixcomm__env_nonempty(name);
    }
  }
  if (v == NULL)
    return MIXCOMM_SUCCESS;
  const size_t len = strlen(v);
  if (len >= MIXCOMM__TCP_TOKEN_SIZE) /* the token itself is a secret: never echoed */
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: the job token from %s is %zu bytes; "
                          "at most %d are allowed",
                          name, len, MIXCOMM__TCP_TOKEN_SIZE - 1);
  memcpy(token, v, len);
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t resolve_timeout(const mixcomm_tcp_options_t* o, int* timeout_ms) {
  if (o != NULL && o->timeout_ms < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: options.timeout_ms=%d is negative (0 "
                          "means MIXCOMM_BOOTSTRAP_TIMEOUT_MS or %d)",
                          o->timeout_ms, MIXCOMM__TCP_DEFAULT_TIMEOUT_MS);
  if (o != NULL && o->timeout_ms > 0) {
    *timeout_ms = o->timeout_ms;
  } else {
    const char* v = mixcomm__env_nonempty("MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
    long long t = MIXCOMM__TCP_DEFAULT_TIMEOUT_MS;
    if (v != NULL && !mixcomm__parse_ll(v, 1, MIXCOMM__TCP_MAX_TIMEOUT_MS, &t)) {
      char shown[68];
      mixcomm__printable(v, shown, sizeof shown);
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "mixcomm_bootstrap_tcp_create: MIXCOMM_BOOTSTRAP_TIMEOUT_MS='%s' is "
                            "not a positive number of milliseconds (at most %d)",
                            shown, MIXCOMM__TCP_MAX_TIMEOUT_MS);
    }
    *timeout_ms = (int)t;
  }
  if (*timeout_ms > MIXCOMM__TCP_MAX_TIMEOUT_MS)
    *timeout_ms = MIXCOMM__TCP_MAX_TIMEOUT_MS;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__tcp_resolve_options(const mixcomm_tcp_options_t* o, int size,
                                              char* addr, size_t addr_cap, int* port,
                                              unsigned char* token, int* timeout_ms) {
  MIXCOMM_CHECK(resolve_addr(o, addr, addr_cap));
  MIXCOMM_CHECK(resolve_port(o, size, port));
  MIXCOMM_CHECK(resolve_token(o, token));
  return resolve_timeout(o, timeout_ms);
}
