/* SPDX-License-Identifier: Apache-2.0
 * The node-local file descriptor exchange (mixcomm__fd_exchange): memfds passed between forked
 * "local ranks" on one or several "nodes", the socket directory's mode and clean-up, no
 * descriptor leaked, a rank that never calls the exchange or dies in it, and invalid
 * arguments. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap_test.h"

/* Counts the bootstrap calls the exchange makes, and can act after the k-th one:
 * fd_exchange makes three (records, "listening", "done"); after the second every local socket
 * exists. */
typedef struct {
  mixcomm_bootstrap_t* inner;
  int calls;
  int die_after;   /* _exit after this call (0: never) */
  int check_after; /* inspect the socket directory after this call (0: never) */
  const char* base;
  int local_size, nodes;
  int checked;
} wrap_t;

static void wrap_after(wrap_t* w) {
  if (w->calls == w->die_after)
    _exit(0);
  if (w->calls != w->check_after)
    return;
  DIR* d = opendir(w->base);
  ASSERT(d != NULL);
  struct dirent* e;
  int dirs = 0, complete = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", w->base, e->d_name);
    ASSERT(lstat(path, &sb) == 0);
    ASSERT(S_ISDIR(sb.st_mode));
    if ((sb.st_mode & 0777) != 0700)
      FAIL("socket directory %s has mode %04o, expected 0700", path, sb.st_mode & 0777);
    ASSERT_EQ(sb.st_uid, getuid());
    /* Rank 0's node cannot finish before rank 0 sends its fd, so all its sockets exist now;
     * other nodes may already have finished and removed theirs. */
    int socks = 0;
    for (int i = 0; i < w->local_size; i++) {
      char sock[600];
      snprintf(sock, sizeof sock, "%s/r%d", path, i);
      if (lstat(sock, &sb) == 0 && S_ISSOCK(sb.st_mode))
        socks++;
    }
    complete += socks == w->local_size;
    dirs++;
  }
  closedir(d);
  ASSERT_EQ(dirs, w->nodes);
  ASSERT(complete >= 1);
  w->checked = 1;
}

static int wrap_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  wrap_t* w = (wrap_t*)ctx;
  int rc = w->inner->allgather(w->inner->ctx, send, recv, bytes);
  w->calls++;
  if (rc == 0)
    wrap_after(w);
  return rc;
}

static int wrap_barrier(void* ctx) {
  wrap_t* w = (wrap_t*)ctx;
  int rc = w->inner->barrier(w->inner->ctx);
  w->calls++;
  if (rc == 0)
    wrap_after(w);
  return rc;
}

typedef struct {
  int port;
  int local_size;
  int bs_timeout_ms, fdx_timeout_ms;
  int bad_rank;   /* world rank that misbehaves (-1: none) */
  int bad_mode;   /* 1: never calls the exchange, 2: dies after the listening step */
  char base[256]; /* MIXCOMM_SOCKET_DIR */
  uint64_t seed;
} fdx_arg_t;

static int make_memfd(int world_rank, uint64_t seed, char* text, size_t cap) {
  snprintf(text, cap, "world rank %d says %llx", world_rank, (unsigned long long)seed);
  int fd = memfd_create("mixcomm-test", MFD_CLOEXEC);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
  return fd;
}

static int fdx_rank(int rank, int n, void* varg) {
  const fdx_arg_t* a = (const fdx_arg_t*)varg;
  const int local_size = a->local_size, local_rank = rank % local_size;
  const int first = rank - local_rank;
  mixcomm_bootstrap_t* tcp = tcp_bs(rank, n, a->port, a->bs_timeout_ms, NULL);
  if (rank == a->bad_rank && a->bad_mode == 1) {
    sleep_ms(a->bs_timeout_ms + 1000); /* never calls the exchange */
    mixcomm_bootstrap_destroy(tcp);
    return 0;
  }
  wrap_t w;
  memset(&w, 0, sizeof w);
  w.inner = tcp;
  w.die_after = rank == a->bad_rank && a->bad_mode == 2 ? 2 : 0;
  w.check_after = rank == 0 && a->bad_rank < 0 ? 2 : 0;
  w.base = a->base;
  w.local_size = local_size;
  w.nodes = n / local_size;
  mixcomm_bootstrap_t bs = {&w, wrap_allgather, wrap_barrier, NULL, rank, n};

  char mine[128];
  int fd = make_memfd(rank, a->seed, mine, sizeof mine);
  int peer_fds[MIXCOMM_MAX_LOCAL_SIZE];
  const int fds_before = count_open_fds();
  long long t0 = ms_now();
  mixcomm_status_t st =
      mixcomm__fd_exchange(&bs, local_rank, local_size, fd, a->fdx_timeout_ms, peer_fds);
  long long took = ms_now() - t0;
  if (a->bad_rank >= 0) {
    char name[64];
    const int bad_first = a->bad_rank - a->bad_rank % local_size;
    if (a->bad_mode == 2 && first == bad_first) {
      /* Its node peers time out in the exchange itself. */
      ASSERT_EQ(st, MIXCOMM_ERR_TIMEOUT);
      snprintf(name, sizeof name, "local rank %d (world rank %d)", a->bad_rank % local_size,
               a->bad_rank);
    } else if (a->bad_mode == 2) {
      /* Other nodes learn it in the final step, from the bootstrap. */
      ASSERT(st == MIXCOMM_ERR_TIMEOUT || st == MIXCOMM_ERR_BOOTSTRAP);
      snprintf(name, sizeof name, "rank %d", a->bad_rank);
    } else {
      ASSERT_EQ(st, MIXCOMM_ERR_TIMEOUT);
      snprintf(name, sizeof name, "rank %d", a->bad_rank);
    }
    ASSERT_CONTAINS(mixcomm_last_error(), name);
    for (int i = 0; i < local_size; i++)
      ASSERT_EQ(peer_fds[i], -1);
    ASSERT_EQ(count_open_fds(), fds_before); /* nothing leaked */
    if (took > a->fdx_timeout_ms + a->bs_timeout_ms + 3000)
      FAIL("rank %d needed %lld ms to fail", rank, took);
  } else {
    ASSERT_OK(st);
    ASSERT_EQ(w.calls, 3);
    ASSERT(w.checked || rank != 0);
    for (int i = 0; i < local_size; i++) {
      char want[128], got[128];
      ASSERT(peer_fds[i] >= 0);
      snprintf(want, sizeof want, "world rank %d says %llx", first + i,
               (unsigned long long)a->seed);
      memset(got, 0, sizeof got);
      ssize_t r = pread(peer_fds[i], got, sizeof got - 1, 0);
      ASSERT_EQ(r, (long long)strlen(want));
      if (strcmp(got, want) != 0)
        FAIL("rank %d: the fd from local rank %d holds \"%s\", expected \"%s\"", rank, i, got,
             want);
      if (i != local_rank)
        ASSERT_NE(peer_fds[i], fd);
    }
    ASSERT_NE(peer_fds[local_rank], fd); /* a dup, owned by the caller */
    for (int i = 0; i < local_size; i++)
      close(peer_fds[i]);
    ASSERT_EQ(count_open_fds(), fds_before);
  }
  /* Every rank is past the final step: the directories are gone. (Rank 0 waits for the
   * leaders through one more barrier.) */
  if (a->bad_rank < 0) {
    ASSERT_OK(mixcomm__bs_barrier(tcp, "after exchange"));
    ASSERT_EQ(count_entries(a->base), 0);
  }
  close(fd);
  mixcomm_bootstrap_destroy(tcp);
  return 0;
}

static void fdx_setup(fdx_arg_t* a, int local_size, int bad_rank, int bad_mode, int bs_timeout_ms,
                      int fdx_timeout_ms) {
  memset(a, 0, sizeof *a);
  a->port = free_tcp_port();
  ASSERT(a->port > 0);
  a->local_size = local_size;
  a->bs_timeout_ms = bs_timeout_ms;
  a->fdx_timeout_ms = fdx_timeout_ms;
  a->bad_rank = bad_rank;
  a->bad_mode = bad_mode;
  a->seed = random_seed();
  snprintf(a->base, sizeof a->base, "/tmp/mixcomm-test-XXXXXX");
  ASSERT(mkdtemp(a->base) != NULL);
  setenv("MIXCOMM_SOCKET_DIR", a->base, 1);
}

static int fdx_finish(fdx_arg_t* a) {
  int left = count_entries(a->base);
  if (left != 0)
    FAIL("%d entries left behind in %s", left, a->base);
  ASSERT(rmdir(a->base) == 0);
  return 0;
}

/* `world` ranks in nodes of local_size; bad_rank (-1: none) misbehaves as bad_mode says. */
static int run_fdx_case(int world, int local_size, int bad_rank, int bad_mode, int bs_timeout_ms,
                        int fdx_timeout_ms) {
  fdx_arg_t a;
  fdx_setup(&a, local_size, bad_rank, bad_mode, bs_timeout_ms, fdx_timeout_ms);
  ASSERT_EQ(run_ranks(world, fdx_rank, &a, 10000, NULL), 0);
  return fdx_finish(&a);
}

static int run_fdx(int world, int local_size) {
  return run_fdx_case(world, local_size, -1, 0, 5000, 5000);
}

TEST_IMPL(bootstrap_fd_exchange_2) {
  return run_fdx(2, 2);
}
TEST_IMPL(bootstrap_fd_exchange_3) {
  return run_fdx(3, 3);
}
TEST_IMPL(bootstrap_fd_exchange_4) {
  return run_fdx(4, 4);
}
TEST_IMPL(bootstrap_fd_exchange_two_nodes) {
  return run_fdx(4, 2);
}
TEST_IMPL(bootstrap_fd_exchange_one_per_node) {
  return run_fdx(3, 1);
}

TEST_IMPL(bootstrap_fd_exchange_rank_missing) {
  /* Rank 2 joins the bootstrap but never calls the exchange: the first collective of the
   * exchange times out naming it. */
  return run_fdx_case(4, 4, 2, 1, 1500, 1500);
}

TEST_IMPL(bootstrap_fd_exchange_rank_dies) {
  /* Local rank 1 of node 1 (world rank 3) dies once its socket exists: its node peer times out
   * naming it; node 0, whose exchange went fine, hears about it in the final step. */
  return run_fdx_case(4, 2, 3, 2, 2000, 1000);
}

TEST_IMPL(bootstrap_fd_exchange_invalid_args) {
  fake_ctx_t f = {0, 0, 0};
  mixcomm_bootstrap_t bs = {&f, fake_allgather, NULL, NULL, 1, 3};
  int fds[4] = {7, 7, 7, 7};
  ASSERT_ERR(mixcomm__fd_exchange(NULL, 0, 1, 0, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "bootstrap");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 0, 1, 0, 1000, NULL), MIXCOMM_ERR_INVALID_ARGUMENT,
             "peer_fds");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 2, 2, 0, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "local rank 2 of local size 2");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 0, 3, 0, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "consecutive");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 1, 2, -1, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT, "my_fd");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 1, 2, 0, 0, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "timeout_ms");
  ASSERT_EQ(fds[0], -1);
  ASSERT_EQ(fds[1], -1);
  ASSERT_EQ(f.gathers, 0); /* nothing collective started */
  return 0;
}
