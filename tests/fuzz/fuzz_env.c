/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the environment variables the library reads, through the library's own
 * readers: the TCP bootstrap's settings (addresses, ports, job token, timeout; with and
 * without options), the handler's kernel-wait timeout, the cost model's latencies and
 * bandwidths, the autotune cache directory, the fd exchange's socket directory and the log
 * settings.
 *
 * The input is [options byte][option fields][then pairs: variable byte, NUL-terminated value].
 * Every variable of the list is unset before an input, then the pairs are set. Properties:
 *   - a reader either returns a value within its documented range or fails with a printable
 *     message that names the variable (or option) at fault; an invalid value never turns into
 *     a default silently, never is read half-way;
 *   - derived paths fit their buffers and are never cut short;
 *   - the cost model's predictions stay finite whatever the accepted parameters.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/fd_exchange_msg.h"
#include "bootstrap/tcp_internal.h"
#include "core/env.h"
#include "core/log.h"
#include "fuzz_common.h"
#include "tune/tune.h"

static const char* const vars[] = {
    "MIXCOMM_ADDR",           "MASTER_ADDR",          "MIXCOMM_PORT",
    "MASTER_PORT",            "MIXCOMM_JOB_TOKEN",    "TORCHELASTIC_RUN_ID",
    "MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "MIXCOMM_TIMEOUT_MS", "MIXCOMM_COST_INTRA_LAT_US",
    "MIXCOMM_COST_INTRA_GBPS", "MIXCOMM_COST_INTER_LAT_US", "MIXCOMM_COST_INTER_GBPS",
    "MIXCOMM_COST_NCCL_LAT_US", "MIXCOMM_CACHE_DIR",   "XDG_CACHE_HOME",
    "HOME",                   "MIXCOMM_SOCKET_DIR",   "XDG_RUNTIME_DIR",
    "MIXCOMM_LOG",            "MIXCOMM_LOG_FILE",     "MIXCOMM_COST_KERNEL_US"};
#define NVARS ((int)(sizeof vars / sizeof vars[0]))

static void check_message(const char* const* names, int n) {
  const char* msg = mixcomm_last_error();
  FUZZ_CHECK(msg[0] != '\0' && fuzz_printable(msg, 1024), "message not printable: %s", msg);
  int named = n == 0;
  for (int i = 0; i < n; i++)
    named |= strstr(msg, names[i]) != NULL;
  FUZZ_CHECK(named, "message names no source: %s", msg);
}

static void check_tcp(const mixcomm_tcp_options_t* o, int size) {
  char addr[256];
  unsigned char token[MIXCOMM__TCP_TOKEN_SIZE];
  int port = -1, timeout = -1;
  memset(addr, 'x', sizeof addr);
  mixcomm_status_t st =
      mixcomm__tcp_resolve_options(o, size, addr, sizeof addr, &port, token, &timeout);
  if (st != MIXCOMM_SUCCESS) {
    static const char* const names[] = {"options.", "MIXCOMM_", "MASTER_", "TORCHELASTIC_RUN_ID",
                                        "no port"};
    check_message(names, 5);
    FUZZ_CHECK(st == MIXCOMM_ERR_INVALID_ARGUMENT, "status %d", (int)st);
    return;
  }
  FUZZ_CHECK(memchr(addr, '\0', sizeof addr) != NULL && addr[0] != '\0', "address");
  FUZZ_CHECK((port >= 1 && port <= 65535) || (port == 0 && size == 1), "port %d", port);
  FUZZ_CHECK(timeout >= 1 && timeout <= MIXCOMM__TCP_MAX_TIMEOUT_MS, "timeout %d", timeout);
  const size_t tl = strnlen((const char*)token, sizeof token);
  FUZZ_CHECK(tl < sizeof token, "token not terminated");
  for (size_t i = tl; i < sizeof token; i++)
    FUZZ_CHECK(token[i] == 0, "token not zero padded");
  /* An explicit option always wins. */
  if (o != NULL && o->port > 0)
    FUZZ_CHECK(port == o->port, "option port %d lost", o->port);
  if (o != NULL && o->timeout_ms > 0)
    FUZZ_CHECK(timeout == (o->timeout_ms < MIXCOMM__TCP_MAX_TIMEOUT_MS
                               ? o->timeout_ms
                               : MIXCOMM__TCP_MAX_TIMEOUT_MS),
               "option timeout lost");
}

static void check_cost(void) {
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  FUZZ_CHECK(isfinite(p.intra_latency_us) && p.intra_latency_us >= 0 &&
                 isfinite(p.inter_latency_us) && p.inter_latency_us >= 0 &&
                 isfinite(p.nccl_latency_us) && p.nccl_latency_us >= 0 &&
                 isfinite(p.kernel_launch_us) && p.kernel_launch_us >= 0,
             "latency out of range");
  FUZZ_CHECK(isfinite(p.intra_gbps) && p.intra_gbps > 0 && isfinite(p.inter_gbps) &&
                 p.inter_gbps > 0,
             "bandwidth out of range");
  mixcomm_topology_t t;
  memset(&t, 0, sizeof t);
  t.world_size = 16;
  t.local_size = 8;
  t.inter_size = 2;
  t.local_tp_size = 4;
  t.local_dp_size = 2;
  FUZZ_CHECK(mixcomm_topology_resolve(&t, &t) == MIXCOMM_SUCCESS, "topology");
  static const uint64_t sizes[] = {0, 8192, 1ull << 30, 1ull << 40};
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    for (int m = 0; m < MIXCOMM_MODE_AUTOTUNE; m++)
      for (int s = 0; s < 4; s++) {
        const double us = mixcomm__cost_predict_epilogue_us(&p, &t, (mixcomm_op_t)op,
                                                            (mixcomm_mode_t)m, sizes[s]);
        FUZZ_CHECK(isfinite(us) && us >= 0,
                   "prediction %g us for op %d mode %d, %llu bytes (lat %g/%g/%g, gbps %g/%g)",
                   us, op, m, (unsigned long long)sizes[s], p.intra_latency_us,
                   p.inter_latency_us, p.nccl_latency_us, p.intra_gbps, p.inter_gbps);
      }
}

static void check_cache_path(const char* config_dir) {
  mixcomm__tune_key_t key;
  snprintf(key.text, sizeof key.text, "v=1;world=2;");
  char path[512];
  memset(path, 'x', sizeof path);
  mixcomm_status_t st = mixcomm__tune_cache_path(config_dir, &key, path, sizeof path);
  if (st != MIXCOMM_SUCCESS) {
    static const char* const names[] = {"autotune_cache_dir", "MIXCOMM_CACHE_DIR",
                                        "XDG_CACHE_HOME", "HOME"};
    FUZZ_CHECK(path[0] == '\0', "a path after a failure");
    FUZZ_CHECK(st == MIXCOMM_ERR_UNSUPPORTED || st == MIXCOMM_ERR_INVALID_ARGUMENT, "status");
    check_message(names, 4);
    return;
  }
  const size_t n = strnlen(path, sizeof path);
  FUZZ_CHECK(n < sizeof path, "path not terminated");
  static const char tail[] = "/autotune-0123456789abcdef.txt";
  FUZZ_CHECK(n >= sizeof tail - 1 && strncmp(path + n - (sizeof tail - 1), "/autotune-", 10) == 0 &&
                 strcmp(path + n - 4, ".txt") == 0,
             "path '%s'", path);
}

static void check_dirs_and_log(const char* socket_base, const char* log_pattern,
                               const char* log_level, int local_size) {
  char tmpl[MIXCOMM__FDX_DIR_CAP];
  if (socket_base != NULL && mixcomm__fdx_dir_template(socket_base, local_size, tmpl,
                                                       sizeof tmpl) == 0) {
    const size_t n = strlen(tmpl);
    FUZZ_CHECK(n < sizeof tmpl && n >= 15 && strcmp(tmpl + n - 15, "/mixcomm-XXXXXX") == 0 &&
                   strncmp(tmpl, socket_base, n - 15) == 0 && strlen(socket_base) == n - 15,
               "template '%s'", tmpl);
    char sock[128];
    FUZZ_CHECK(snprintf(sock, sizeof sock, "%s/r%d", tmpl, local_size - 1) < 108,
               "socket path too long for sun_path");
  }
  if (log_pattern != NULL) {
    char name[256];
    const int pid = 4242;
    if (mixcomm__log_file_name(log_pattern, pid, name, sizeof name) == 0) {
      /* Independent expansion for the comparison. */
      char want[4096];
      size_t k = 0;
      for (const char* p = log_pattern; *p && k + 16 < sizeof want; p++) {
        if (p[0] == '%' && p[1] == 'p') {
          k += (size_t)snprintf(want + k, sizeof want - k, "%d", pid);
          p++;
        } else {
          want[k++] = *p;
        }
      }
      want[k] = '\0';
      FUZZ_CHECK(strcmp(name, want) == 0 && name[0] != '\0', "log file '%s' for '%s'", name,
                 log_pattern);
    } else {
      FUZZ_CHECK(name[0] == '\0', "a half name after a failure");
    }
  }
  int known = 0;
  const int level = mixcomm__log_level_from_text(log_level, &known);
  FUZZ_CHECK(level >= MIXCOMM_LOG_OFF && level <= MIXCOMM_LOG_DEBUG, "level %d", level);
  if (log_level == NULL || log_level[0] == '\0')
    FUZZ_CHECK(level == MIXCOMM_LOG_OFF && known, "logging without MIXCOMM_LOG");
}

int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  (void)argv;
  /* Logging off for good (the level is read once per process). */
  unsetenv("MIXCOMM_LOG");
  (void)mixcomm__log_enabled(MIXCOMM_LOG_WARN);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size_in) {
  fuzz_in_t in = {data, size_in};
  for (int i = 0; i < NVARS; i++)
    unsetenv(vars[i]);
  const uint8_t opt_flags = fuzz_u8(&in);
  const int size = 1 + fuzz_u8(&in) % 8;
  mixcomm_tcp_options_t o;
  memset(&o, 0, sizeof o);
  if (opt_flags & 1) {
    o.port = (int)fuzz_u32(&in);
    o.timeout_ms = (int)fuzz_u32(&in);
    if (opt_flags & 2)
      fuzz_bytes(&in, o.addr, opt_flags & 4 ? sizeof o.addr : 16);
    if (opt_flags & 8)
      fuzz_bytes(&in, o.token, opt_flags & 16 ? sizeof o.token : 16);
  }
  const char* socket_base = NULL;
  const char* log_pattern = NULL;
  const char* log_level = NULL;
  const char* config_dir = NULL;
  /* Variables: the values live in a NUL-terminated copy of the rest of the input. */
  char* rest = malloc(in.n + 1);
  FUZZ_CHECK(rest != NULL, "out of memory");
  memcpy(rest, in.p, in.n);
  rest[in.n] = '\0';
  for (char* p = rest; p < rest + in.n;) {
    const int v = (unsigned char)*p++ % (NVARS + 1);
    const char* value = p;
    p += strlen(p) + 1;
    if (v == NVARS) { /* not a variable: the handler config's autotune_cache_dir */
      config_dir = value;
      continue;
    }
    setenv(vars[v], value, 1);
    if (!strcmp(vars[v], "MIXCOMM_SOCKET_DIR"))
      socket_base = value;
    if (!strcmp(vars[v], "MIXCOMM_LOG_FILE"))
      log_pattern = value;
    if (!strcmp(vars[v], "MIXCOMM_LOG"))
      log_level = value;
  }

  check_tcp((opt_flags & 1) ? &o : NULL, size);
  int timeout = -1;
  if (mixcomm__env_timeout_ms((opt_flags & 32) ? 5 : 0, 30000, &timeout) == MIXCOMM_SUCCESS)
    FUZZ_CHECK(timeout >= 1 && timeout <= (1 << 30), "kernel timeout %d", timeout);
  else {
    static const char* const names[] = {"MIXCOMM_TIMEOUT_MS"};
    check_message(names, 1);
  }
  check_cost();
  check_cache_path(config_dir);
  check_dirs_and_log(socket_base, log_pattern, log_level, 1 + size * 100);
  free(rest);
  return 0;
}
