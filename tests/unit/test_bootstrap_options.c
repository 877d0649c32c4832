/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's settings: the environment (MASTER_* / TORCHELASTIC_RUN_ID, the order of
 * precedence, the timeout), IPv6 loopback, and invalid options, variables and arguments, each
 * refused with a message naming its source. */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bootstrap_test.h"
#include "common/spawn.h"

static int env_master_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  char port[16];
  snprintf(port, sizeof port, "%d", a->port);
  clear_bootstrap_env();
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", port, 1);
  setenv("TORCHELASTIC_RUN_ID", "elastic-42", 1);
  setenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "5000", 1);
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(NULL, rank, n, &bs));
  int v = rank * 10, all[3];
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, all, sizeof v, "env allgather"));
  for (int r = 0; r < n; r++)
    ASSERT_EQ(all[r], r * 10);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_env_master) {
  return run_tcp_ranks(3, env_master_rank, 5000, 0, 10000);
}

static int env_precedence_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  char port[16], bad_port[16], run_id[32];
  snprintf(port, sizeof port, "%d", a->port);
  snprintf(bad_port, sizeof bad_port, "%d", a->extra);
  snprintf(run_id, sizeof run_id, "run-of-rank-%d", rank);
  clear_bootstrap_env();
  /* MIXCOMM_* win over MASTER_* / TORCHELASTIC_RUN_ID: the losers here would fail. */
  setenv("MIXCOMM_ADDR", "127.0.0.1", 1);
  setenv("MASTER_ADDR", "no-such-host.invalid", 1);
  setenv("MIXCOMM_PORT", port, 1);
  setenv("MASTER_PORT", bad_port, 1);
  setenv("MIXCOMM_JOB_TOKEN", "shared-token", 1);
  setenv("TORCHELASTIC_RUN_ID", run_id, 1); /* differs per rank */
  mixcomm_tcp_options_t o;
  set_options(&o, NULL, 0, 5000, NULL); /* only the timeout given */
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, rank, n, &bs));
  ASSERT_OK(mixcomm__bs_barrier(bs, "env barrier"));
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_env_precedence) {
  tcp_arg_t a = tcp_arg(5000);
  a.extra = free_tcp_port(); /* nobody listens there */
  ASSERT(a.extra > 0 && a.extra != a.port);
  ASSERT_EQ(run_ranks(3, env_precedence_rank, &a, 10000, NULL), 0);
  return 0;
}

TEST_IMPL(bootstrap_tcp_env_timeout) {
  /* MIXCOMM_BOOTSTRAP_TIMEOUT_MS bounds rank 0's wait for a rank that never comes. */
  clear_bootstrap_env();
  char port[16];
  snprintf(port, sizeof port, "%d", free_tcp_port());
  setenv("MIXCOMM_PORT", port, 1);
  setenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "400", 1);
  mixcomm_bootstrap_t* bs = (mixcomm_bootstrap_t*)1;
  long long t0 = ms_now();
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(NULL, 0, 2, &bs), MIXCOMM_ERR_TIMEOUT,
             "rank 1 of 2 never connected");
  long long took = ms_now() - t0;
  ASSERT_CONTAINS(mixcomm_last_error(), "400 ms");
  ASSERT(bs == NULL);
  ASSERT(took >= 350 && took < 2000);
  return 0;
}

static int ipv6_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  (void)a;
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(NULL, rank, n, &bs)); /* [::1] from the environment */
  int v = rank, all[3];
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, all, sizeof v, "ipv6"));
  for (int r = 0; r < n; r++)
    ASSERT_EQ(all[r], r);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_ipv6) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  if (probe < 0 || bind(probe, (struct sockaddr*)&sa, sizeof sa) != 0) {
    printf("  (no IPv6 loopback here: skipped)\n");
    if (probe >= 0)
      close(probe);
    return 0;
  }
  close(probe);
  tcp_arg_t a = tcp_arg(5000);
  clear_bootstrap_env();
  setenv("MIXCOMM_ADDR", "::1", 1);
  char port[16];
  snprintf(port, sizeof port, "%d", a.port);
  setenv("MASTER_PORT", port, 1);
  ASSERT_EQ(run_ranks(3, ipv6_rank, &a, 10000, NULL), 0);
  return 0;
}

TEST_IMPL(bootstrap_tcp_invalid_args) {
  clear_bootstrap_env();
  mixcomm_tcp_options_t o;
  mixcomm_bootstrap_t* bs = (mixcomm_bootstrap_t*)1;
  set_options(&o, NULL, 29500, 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, NULL), MIXCOMM_ERR_INVALID_ARGUMENT, "out");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 0, &bs), MIXCOMM_ERR_INVALID_ARGUMENT, "size=0");
  ASSERT(bs == NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, -1, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT, "rank=-1");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 2, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT, "rank=2");
  /* No port anywhere. */
  set_options(&o, NULL, 0, 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_PORT");
  ASSERT_CONTAINS(mixcomm_last_error(), "MASTER_PORT");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(NULL, 1, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MASTER_PORT");
  setenv("MIXCOMM_PORT", "abc", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_PORT='abc'");
  unsetenv("MIXCOMM_PORT");
  setenv("MASTER_PORT", "70000", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MASTER_PORT='70000'");
  unsetenv("MASTER_PORT");
  set_options(&o, NULL, 70000, 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "options.port=70000");
  set_options(&o, NULL, 29500, -5, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "timeout_ms=-5");
  set_options(&o, NULL, 29500, 0, NULL);
  setenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "soon", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
  unsetenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
  char long_token[200];
  memset(long_token, 'x', sizeof long_token - 1);
  long_token[sizeof long_token - 1] = '\0';
  setenv("MIXCOMM_JOB_TOKEN", long_token, 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_JOB_TOKEN");
  unsetenv("MIXCOMM_JOB_TOKEN");
  memset(o.token, 'y', sizeof o.token); /* not terminated */
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "options.token");
  ASSERT(bs == NULL);
  /* A port taken by someone else. */
  int busy = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  spawn_loopback_address(&sa, 0);
  ASSERT(busy >= 0 && bind(busy, (struct sockaddr*)&sa, sizeof sa) == 0 && listen(busy, 1) == 0);
  ASSERT(getsockname(busy, (struct sockaddr*)&sa, &sl) == 0);
  set_options(&o, "127.0.0.1", ntohs(sa.sin_port), 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_BOOTSTRAP, "in use");
  close(busy);
  /* Size 1 needs no port and does not touch the network. */
  ASSERT_OK(mixcomm_bootstrap_tcp_create(NULL, 0, 1, &bs));
  ASSERT(bs != NULL && bs->size == 1 && bs->rank == 0);
  uint64_t v = 42, all = 0;
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, &all, sizeof v, "single"));
  ASSERT_EQ(all, 42);
  ASSERT_OK(mixcomm__bs_barrier(bs, "single"));
  ASSERT_OK(mixcomm__bs_broadcast(bs, &v, sizeof v, 0, "single"));
  ASSERT_ERR(mixcomm__bs_allgather(bs, NULL, &all, sizeof v, "null send"),
             MIXCOMM_ERR_INVALID_ARGUMENT, "null send");
  mixcomm_bootstrap_destroy(bs);
  mixcomm_bootstrap_destroy(NULL);
  return 0;
}
