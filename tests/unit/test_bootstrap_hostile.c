/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap against peers that are not well-behaved ranks: the verdicts on crafted
 * hellos and messages (tcp_internal.h, the functions the fuzz targets of tests/fuzz run), a
 * flood of connections without the job token while the real ranks join, and a fake rank 0
 * that answers with crafted messages. Regression tests of what fuzzing and its review found
 * (docs/reliability.md, "Fuzzing").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/tcp_internal.h"
#include "bootstrap_test.h"
#include "common/spawn.h"

#define HELLO MIXCOMM__TCP_HELLO_SIZE
#define HDR MIXCOMM__TCP_HDR_SIZE

static void make_token(unsigned char* t, const char* text) {
  memset(t, 0, MIXCOMM__TCP_TOKEN_SIZE);
  memcpy(t, text, strlen(text));
}

static void make_hello(unsigned char* buf, uint32_t rank, uint32_t size, const char* token) {
  mixcomm__tcp_encode_hdr(buf, MIXCOMM__MSG_HELLO, rank, size, 0, MIXCOMM__TCP_TOKEN_SIZE);
  make_token(buf + HDR, token);
}

/* ------------------------------------------------------------------------------------------ */
/* Verdicts on hellos and messages                                                            */
/* ------------------------------------------------------------------------------------------ */

TEST_IMPL(bootstrap_tcp_judge_hello) {
  unsigned char token[MIXCOMM__TCP_TOKEN_SIZE], buf[HELLO];
  make_token(token, "job-A");
  int joined[4] = {5, -1, 7, -1}; /* rank 2 already joined */
  mixcomm__tcp_hello_t v;

  make_hello(buf, 1, 4, "job-A");
  for (size_t got = 0; got < HELLO; got++) { /* every prefix of a good hello: read more */
    mixcomm__tcp_judge_hello(buf, got, token, 4, joined, &v);
    ASSERT_EQ(v.verdict, MIXCOMM__HELLO_MORE);
    ASSERT_EQ(v.want, HELLO - got);
  }
  mixcomm__tcp_judge_hello(buf, HELLO, token, 4, joined, &v);
  ASSERT_EQ(v.verdict, MIXCOMM__HELLO_ADMIT);
  ASSERT_EQ(v.rank, 1);
  /* Bytes beyond one hello are never looked at. */
  mixcomm__tcp_judge_hello(buf, HELLO + 1000, token, 4, joined, &v);
  ASSERT_EQ(v.verdict, MIXCOMM__HELLO_ADMIT);

  /* The token must match in every byte, the padding included. */
  const size_t positions[] = {HDR, HDR + 4, HDR + 5, HELLO - 1};
  for (size_t i = 0; i < sizeof positions / sizeof positions[0]; i++) {
    make_hello(buf, 1, 4, "job-A");
    buf[positions[i]] ^= 0x20;
    mixcomm__tcp_judge_hello(buf, HELLO, token, 4, joined, &v);
    ASSERT_EQ(v.verdict, MIXCOMM__HELLO_REFUSE);
    ASSERT_EQ(v.status, MIXCOMM_ERR_BOOTSTRAP);
    ASSERT_CONTAINS(v.reason, "wrong job token");
    ASSERT(strstr(v.reason, "job-A") == NULL);
  }
  /* A process of another job is refused before anything else about it is considered. */
  make_hello(buf, 9, 99, "job-B");
  mixcomm__tcp_judge_hello(buf, HELLO, token, 4, joined, &v);
  ASSERT_CONTAINS(v.reason, "wrong job token");

  struct {
    uint32_t type, rank, size;
    uint64_t len;
    uint32_t magic, version;
    mixcomm__tcp_hello_verdict_t verdict;
    const char* reason;
  } cases[] = {
      {MIXCOMM__MSG_HELLO, 2, 4, 128, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "rank 2 already joined"},
      {MIXCOMM__MSG_HELLO, 0, 4, 128, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "rank 0 is not a non-root rank"},
      {MIXCOMM__MSG_HELLO, 4, 4, 128, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "rank 4 is not"},
      {MIXCOMM__MSG_HELLO, 0xffffffffu, 4, 128, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "rank 4294967295 is not"},
      {MIXCOMM__MSG_HELLO, 1, 5, 128, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "size mismatch"},
      {MIXCOMM__MSG_HELLO, 1, 4, 127, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "protocol mismatch"},
      {MIXCOMM__MSG_HELLO, 1, 4, 1ull << 62, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "protocol mismatch"},
      {MIXCOMM__MSG_DATA, 1, 4, 128, MIXCOMM__TCP_MAGIC, 1, MIXCOMM__HELLO_REFUSE,
       "protocol mismatch"},
      {MIXCOMM__MSG_HELLO, 1, 4, 128, MIXCOMM__TCP_MAGIC, 2, MIXCOMM__HELLO_REFUSE,
       "version 2"},
      {MIXCOMM__MSG_HELLO, 1, 4, 128, 0x47455420u /* "GET " */, 1, MIXCOMM__HELLO_DROP,
       "not mixcomm"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mixcomm__tcp_encode_hdr(buf, cases[i].type, cases[i].rank, cases[i].size, 0, cases[i].len);
    buf[0] = (unsigned char)(cases[i].magic >> 24);
    buf[1] = (unsigned char)(cases[i].magic >> 16);
    buf[2] = (unsigned char)(cases[i].magic >> 8);
    buf[3] = (unsigned char)cases[i].magic;
    buf[7] = (unsigned char)cases[i].version;
    make_token(buf + HDR, "job-A");
    mixcomm__tcp_judge_hello(buf, HELLO, token, 4, joined, &v);
    if (v.verdict != cases[i].verdict)
      FAIL("case %zu: verdict %d, expected %d (%s)", i, (int)v.verdict, (int)cases[i].verdict,
           v.reason);
    ASSERT_CONTAINS(v.reason, cases[i].reason);
    /* A broken header is judged as soon as the header is there, before any token bytes. */
    if (cases[i].type != MIXCOMM__MSG_HELLO || cases[i].version != 1 || cases[i].len != 128 ||
        cases[i].magic != MIXCOMM__TCP_MAGIC) {
      mixcomm__tcp_hello_t early;
      mixcomm__tcp_judge_hello(buf, HDR, token, 4, joined, &early);
      ASSERT_EQ(early.verdict, v.verdict);
    }
  }
  return 0;
}

TEST_IMPL(bootstrap_tcp_wire_messages) {
  unsigned char m[HDR + 64];
  mixcomm__tcp_hdr_t h;
  int wait = -1;
  /* ACCEPTED: rank 0's remaining time, never more than any rank 0 can have. */
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ACCEPTED, 59000, 0, 0, 0);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_ACCEPTED);
  ASSERT_EQ(wait, 59000);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ACCEPTED, MIXCOMM__TCP_MAX_TIMEOUT_MS + 1u, 0, 0, 0);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_BAD);
  ASSERT_EQ(wait, 0);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ACCEPTED, 10, 0, 0, 5); /* a body nobody reads */
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_BAD);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_OK, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_OK);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_REJECT, 4, 0, 0, MIXCOMM__TCP_MAX_TEXT - 1);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_TEXT);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ABORT, 4, 0, 0, MIXCOMM__TCP_MAX_TEXT);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_BAD);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_DATA, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_BAD);
  memcpy(m, "HTTP/1.1 400", 12);
  ASSERT_EQ(mixcomm__tcp_classify_setup(m, &h, &wait), MIXCOMM__SETUP_FOREIGN);

  /* A collective's answer must be exactly the expected result, or a readable error. */
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_RESULT, 0, 0, 7, 256);
  ASSERT_EQ(mixcomm__tcp_classify_answer(m, 7, 256, &h), MIXCOMM__ANSWER_RESULT);
  ASSERT_EQ(mixcomm__tcp_classify_answer(m, 8, 256, &h), MIXCOMM__ANSWER_BAD);
  ASSERT_EQ(mixcomm__tcp_classify_answer(m, 7, 255, &h), MIXCOMM__ANSWER_BAD);
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ERROR, 5, 0, 7, 1ull << 40);
  ASSERT_EQ(mixcomm__tcp_classify_answer(m, 7, 256, &h), MIXCOMM__ANSWER_BAD);

  /* Rank 0's DATA check names the rank and what differs. */
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_DATA, 0, 0, 3, 100);
  ASSERT_OK(mixcomm__tcp_check_data(m, 2, 3, 100, "test"));
  ASSERT_ERR(mixcomm__tcp_check_data(m, 2, 4, 100, "test"), MIXCOMM_ERR_MISMATCH, "rank 2");
  ASSERT_ERR(mixcomm__tcp_check_data(m, 2, 3, 99, "test"), MIXCOMM_ERR_MISMATCH, "100 bytes");
  mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_HELLO, 0, 0, 3, 100);
  ASSERT_ERR(mixcomm__tcp_check_data(m, 2, 3, 100, "test"), MIXCOMM_ERR_BOOTSTRAP, "type 1");

  /* Text from the wire: control characters, escapes, NULs and non-ASCII become '?'. */
  char text[32] = "ok \x1b[2J\a\x00x\xc3\xa9\n"; /* 13 bytes */
  mixcomm__tcp_text_from_wire(text, 13);
  ASSERT_STR_EQ(text, "ok ?[2J??x???");
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* A flood of strangers while the ranks join                                                  */
/* ------------------------------------------------------------------------------------------ */

#define FLOOD_CONNECTIONS 150 /* most silent: more than rank 0 holds without a hello */
#define FLOOD_HOLD_MS 9000      /* longer than the ranks' timeout */

static int connect_loopback(int port, int timeout_ms) {
  const long long deadline = ms_now() + timeout_ms;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
      return -1;
    struct sockaddr_in a;
    spawn_loopback_address(&a, port);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) == 0)
      return fd;
    close(fd);
    if (ms_now() > deadline)
      return -1;
    usleep(10000);
  }
}

static void send_all(int fd, const void* p, size_t n) {
  const unsigned char* b = p;
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w <= 0)
      return; /* rank 0 may close us first: that is fine */
    b += w;
    n -= (size_t)w;
  }
}

static long maxrss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* The stranger: many connections, most silent or stopping after the header (rank 0 holds at
 * most size + 64 of those), the others sending another job's token, lengths of 2^62, a DATA
 * message or megabytes of noise. It keeps them until rank 0 closes them all (or longer than the
 * ranks wait), so the ranks must get in while the flood is in place. */
static void flood(int port) {
  static int fds[FLOOD_CONNECTIONS];
  unsigned char hello[HELLO], noise[65536];
  for (size_t i = 0; i < sizeof noise; i++)
    noise[i] = (unsigned char)(i * 131 + 7);
  for (int i = 0; i < FLOOD_CONNECTIONS; i++) {
    fds[i] = connect_loopback(port, 5000);
    ASSERT(fds[i] >= 0);
    const int kind = i % 5 != 0 ? (i % 2) : 2 + (i / 5) % 4;
    switch (kind) {
      case 0: /* silent */
        break;
      case 1: /* a header of this version, then nothing */
        make_hello(hello, 2, 3, "job-A");
        send_all(fds[i], hello, HDR);
        break;
      case 2: /* another job's token, claiming rank 1 */
        make_hello(hello, 1, 3, "job-B");
        send_all(fds[i], hello, sizeof hello);
        break;
      case 3: /* a hello announcing a huge body */
        mixcomm__tcp_encode_hdr(hello, MIXCOMM__MSG_HELLO, 1, 3, 0, 1ull << 62);
        send_all(fds[i], hello, HDR);
        break;
      case 4: /* a DATA message instead of a hello */
        mixcomm__tcp_encode_hdr(hello, MIXCOMM__MSG_DATA, 1, 3, 1, 1ull << 40);
        send_all(fds[i], hello, HDR);
        break;
      default: /* noise */
        for (int k = 0; k < 16; k++)
          send_all(fds[i], noise, sizeof noise);
        break;
    }
  }
  const long long until = ms_now() + FLOOD_HOLD_MS;
  int open_fds = FLOOD_CONNECTIONS;
  while (open_fds > 0 && ms_now() < until) {
    for (int i = 0; i < FLOOD_CONNECTIONS; i++) {
      if (fds[i] < 0)
        continue;
      char c;
      ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        close(fds[i]);
        fds[i] = -1;
        open_fds--;
      }
    }
    usleep(20000);
  }
  for (int i = 0; i < FLOOD_CONNECTIONS; i++)
    if (fds[i] >= 0)
      close(fds[i]);
}

static int flood_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = varg;
  (void)n;
  if (rank == 3) {
    flood(a->port);
    return 0;
  }
  mixcomm_tcp_options_t o;
  set_options(&o, "127.0.0.1", a->port, a->timeout_ms, "job-A");
  if (rank != 0)
    usleep(1000 * 1000); /* the flood is in place before the ranks come */
  const long before = maxrss_kib();
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, rank, 3, &bs));
  const long grew = maxrss_kib() - before;
  if (rank == 0 && grew > 16 * 1024)
    FAIL("rank 0 grew by %ld KiB while strangers flooded it", grew);
  int v = 40 + rank, all[3];
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, all, sizeof v, "after the flood"));
  for (int r = 0; r < 3; r++)
    ASSERT_EQ(all[r], 40 + r);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_connection_flood) {
  return run_tcp_ranks(4, flood_rank, 8000, 0, 20000);
}

/* ------------------------------------------------------------------------------------------ */
/* A fake rank 0                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* Read exactly n bytes or fail the test. */
static void recv_all(int fd, void* p, size_t n) {
  unsigned char* b = p;
  while (n > 0) {
    struct pollfd pf = {fd, POLLIN, 0};
    ASSERT(poll(&pf, 1, 5000) == 1);
    ssize_t r = recv(fd, b, n, 0);
    ASSERT(r > 0);
    b += r;
    n -= (size_t)r;
  }
}

static int accept_one(int lfd) {
  struct pollfd pf = {lfd, POLLIN, 0};
  ASSERT(poll(&pf, 1, 8000) == 1);
  int fd = accept(lfd, NULL, NULL);
  ASSERT(fd >= 0);
  return fd;
}

/* Scenarios, in order: what the fake rank 0 answers to the hello. */
enum { DROP_THEN_OK, HUGE_WAIT, ESCAPES, HUGE_TEXT, FOREIGN, NUM_SCENARIOS };

static int fake_root_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = varg;
  (void)n;
  if (rank == 0) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(lfd >= 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    spawn_loopback_address(&sa, a->port);
    ASSERT(bind(lfd, (struct sockaddr*)&sa, sizeof sa) == 0);
    ASSERT(listen(lfd, 16) == 0);
    unsigned char hello[HELLO], want[HELLO], m[HDR + 64];
    make_hello(want, 1, 2, "tok");
    for (int s = 0; s < NUM_SCENARIOS; s++) {
      int fd = accept_one(lfd);
      recv_all(fd, hello, sizeof hello);
      ASSERT(memcmp(hello, want, sizeof want) == 0);
      switch (s) {
        case DROP_THEN_OK: /* closed unanswered (as when rank 0 is flooded): it comes back */
          close(fd);
          fd = accept_one(lfd);
          recv_all(fd, hello, sizeof hello);
          ASSERT(memcmp(hello, want, sizeof want) == 0);
          mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ACCEPTED, 1000, 0, 0, 0);
          mixcomm__tcp_encode_hdr(m + HDR, MIXCOMM__MSG_OK, 0, 0, 0, 0);
          send_all(fd, m, 2 * HDR);
          break;
        case HUGE_WAIT: /* 49 days of "wait for me" */
          mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ACCEPTED, 0xffffffffu, 0, 0, 0);
          send_all(fd, m, HDR);
          break;
        case ESCAPES: {
          const char text[] = "go away\x1b[2J\a now";
          mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_REJECT, MIXCOMM_ERR_BOOTSTRAP, 0, 0,
                                  sizeof text - 1);
          memcpy(m + HDR, text, sizeof text - 1);
          send_all(fd, m, HDR + sizeof text - 1);
          break;
        }
        case HUGE_TEXT: /* a text of 2^40 bytes announced */
          mixcomm__tcp_encode_hdr(m, MIXCOMM__MSG_ABORT, MIXCOMM_ERR_TIMEOUT, 0, 0, 1ull << 40);
          send_all(fd, m, HDR);
          break;
        default: { /* another protocol's greeting */
          char banner[HDR];
          memset(banner, '\n', sizeof banner);
          memcpy(banner, "SSH-2.0-OpenSSH_9.2\r", 20);
          send_all(fd, banner, sizeof banner);
          break;
        }
      }
      usleep(300 * 1000); /* let the rank read before the close */
      close(fd);
    }
    close(lfd);
    return 0;
  }
  mixcomm_tcp_options_t o;
  set_options(&o, "127.0.0.1", a->port, a->timeout_ms, "tok");
  mixcomm_bootstrap_t* bs = NULL;
  /* Dropped unanswered, then accepted: it reconnected on its own. */
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, 1, 2, &bs));
  mixcomm_bootstrap_destroy(bs);
  long long t0 = ms_now();
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 1, 2, &bs), MIXCOMM_ERR_BOOTSTRAP,
             "no rank 0 of this version sends");
  ASSERT(ms_now() - t0 < 3000); /* refused at once, not waited for */
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 1, 2, &bs), MIXCOMM_ERR_BOOTSTRAP,
             "go away?[2J? now");
  ASSERT(strchr(mixcomm_last_error(), '\x1b') == NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 1, 2, &bs), MIXCOMM_ERR_BOOTSTRAP,
             "1099511627776 bytes");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 1, 2, &bs), MIXCOMM_ERR_BOOTSTRAP,
             "does not speak mixcomm");
  ASSERT(bs == NULL);
  return 0;
}

TEST_IMPL(bootstrap_tcp_fake_root) {
  return run_tcp_ranks(2, fake_root_rank, 4000, 0, 30000);
}
