/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the node-local fd exchange (fd_exchange.c): the records every rank announces
 * through the bootstrap, and what arrives on a rank's Unix socket from a connecting process
 * (the 16-byte hello and the descriptors passed with it).
 *
 * The input is [layout bytes][record bytes][chunks]. The records of the node are built from the
 * input (fields optionally forced valid so that deeper checks are reached) and checked with
 * mixcomm__fdx_check_node. The chunks {length, descriptor count, bytes} are really sent over a
 * socketpair with that many descriptors attached (SCM_RIGHTS, up to 12 at once, more than one
 * read takes), then read with mixcomm__fdx_recv_hello and judged with mixcomm__fdx_check_hello,
 * as a rank's exchange loop does. Properties:
 *   - no descriptor ever leaks, whatever arrives (the lowest free descriptor number is the same
 *     after the input as before it);
 *   - a hello is accepted only from another local rank of this node, with its world rank, its
 *     announced pid (where known), once, and with a descriptor;
 *   - accepted records are consistent and the directory is a NUL-terminated string;
 *   - every error message is printable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bootstrap/fd_exchange_msg.h"
#include "fuzz_common.h"

#define MAX_LOCAL 8
#define MAX_FIRST 4
#define MAX_CHUNKS 8
#define MAX_SEND_FDS 12

static int devnull = -1;

static int probe_lowest_free(void) {
  int fd = dup(devnull);
  FUZZ_CHECK(fd >= 0, "dup failed: %s", strerror(errno));
  close(fd);
  return fd;
}

static void check_message(void) {
  const char* msg = mixcomm_last_error();
  FUZZ_CHECK(msg[0] != '\0' && fuzz_printable(msg, 1024), "message not printable: %s", msg);
}

/* Send one chunk with nfds descriptors of /dev/null attached. */
static void send_chunk(int fd, const uint8_t* p, size_t n, int nfds) {
  ssize_t r;
  do {
    r = mixcomm__fdx_send_with_fds(fd, p, n, devnull, nfds, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  FUZZ_CHECK(r == (ssize_t)n, "sendmsg of %zu bytes: %zd (%s)", n, r, strerror(errno));
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size_in) {
  if (devnull < 0) {
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    FUZZ_CHECK(devnull >= 0, "cannot open /dev/null");
  }
  /* Per input: libFuzzer itself may open descriptors between inputs (its symbolizer). */
  const int lowest_free = probe_lowest_free();
  fuzz_in_t in = {data, size_in};
  const int local_size = 1 + fuzz_u8(&in) % MAX_LOCAL;
  const int local_rank = fuzz_u8(&in) % local_size;
  const int first = fuzz_u8(&in) % MAX_FIRST;
  const uint8_t force = fuzz_u8(&in); /* bit 0: valid layout, 1: valid dir, 2: no pids */
  const uint8_t taken = fuzz_u8(&in); /* local ranks whose descriptor already arrived */
  const uint8_t cred = fuzz_u8(&in);  /* the peer's pid as SO_PEERCRED would say */
  const uint32_t uid = 1000;

  mixcomm__fdx_record_t recs[MAX_FIRST + MAX_LOCAL + 1];
  memset(recs, 0, sizeof recs);
  for (int i = 0; i < local_size; i++) {
    mixcomm__fdx_record_t* r = &recs[first + i];
    fuzz_bytes(&in, r, sizeof *r);
    if (force & 1) {
      r->magic = MIXCOMM__FDX_MAGIC;
      r->local_rank = i;
      r->local_size = local_size;
      r->uid = uid;
      r->status = 0;
    }
    if (force & 4)
      r->pid = 0;
  }
  if (force & 2)
    snprintf(recs[first].dir, sizeof recs[first].dir, "/tmp/mixcomm-fuzz01");
  const mixcomm__fdx_node_t node = {local_rank, local_size, first, first + local_rank, recs};
  char me[64];
  snprintf(me, sizeof me, "local rank %d (world rank %d)", local_rank, first + local_rank);

  fuzz_count_start();
  char dir[MIXCOMM__FDX_DIR_CAP];
  memset(dir, 'x', sizeof dir);
  mixcomm_status_t st = mixcomm__fdx_check_node(&node, uid, dir, sizeof dir);
  fuzz_count_stop();
  FUZZ_CHECK(fuzz_alloc_calls == 0, "checking records allocated");
  if (st == MIXCOMM_SUCCESS) {
    FUZZ_CHECK(memchr(dir, '\0', sizeof dir) != NULL && dir[0] != '\0', "bad directory");
    FUZZ_CHECK(strcmp(dir, recs[first].dir) == 0, "directory is not the leader's");
    for (int i = 0; i < local_size; i++)
      FUZZ_CHECK(recs[first + i].magic == MIXCOMM__FDX_MAGIC &&
                     recs[first + i].local_rank == i && recs[first + i].local_size == local_size &&
                     recs[first + i].uid == uid,
                 "inconsistent record %d accepted", i);
  } else {
    check_message();
    /* The exchange stops here on a real rank; go on anyway to reach the hello checks. */
  }

  /* One connection: the chunks, then the end of the connection. */
  int sv[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  FUZZ_CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
  for (int c = 0; c < MAX_CHUNKS && in.n > 0; c++) {
    const size_t len = fuzz_u8(&in) % 24;
    const int nfds = fuzz_u8(&in) % (MAX_SEND_FDS + 1);
    uint8_t bytes[24];
    const size_t k = fuzz_bytes(&in, bytes, len);
    if (k == 0 && nfds == 0)
      continue;
    if (k == 0) { /* descriptors need at least one byte to travel with */
      bytes[0] = 0;
      send_chunk(sv[1], bytes, 1, nfds);
    } else {
      send_chunk(sv[1], bytes, k, nfds);
    }
  }
  if (!(force & 8))
    shutdown(sv[1], SHUT_WR);

  unsigned char hdr[MIXCOMM__FDX_HELLO_SIZE];
  size_t got = 0;
  int rfd = -1;
  const int cred_pid = cred % 4 == 0 ? 0 : (int)recs[first + cred % local_size].pid;
  int r = mixcomm__fdx_recv_hello(sv[0], hdr, &got, &rfd, me, cred_pid, &st);
  FUZZ_CHECK(got <= MIXCOMM__FDX_HELLO_SIZE, "read %zu header bytes", got);
  if (r < 0)
    check_message();
  if (r == 0)
    FUZZ_CHECK(force & 8, "would block on a closed connection");
  if (r == 1) {
    FUZZ_CHECK(got == MIXCOMM__FDX_HELLO_SIZE, "complete after %zu bytes", got);
    int peer_fds[MAX_LOCAL];
    for (int i = 0; i < MAX_LOCAL; i++)
      peer_fds[i] = (taken >> i & 1) ? 1000 + i : -1; /* markers only, never closed */
    int lr = -1;
    fuzz_count_start();
    st = mixcomm__fdx_check_hello(&node, hdr, cred_pid, rfd, peer_fds, &lr);
    fuzz_count_stop();
    FUZZ_CHECK(fuzz_alloc_calls == 0, "checking a hello allocated");
    if (st == MIXCOMM_SUCCESS) {
      const uint32_t magic = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
      const uint32_t claimed_lr = (uint32_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7];
      const uint32_t claimed_wr = (uint32_t)hdr[8] << 24 | hdr[9] << 16 | hdr[10] << 8 | hdr[11];
      const uint32_t pid = (uint32_t)hdr[12] << 24 | hdr[13] << 16 | hdr[14] << 8 | hdr[15];
      const int announced = recs[first + lr].pid;
      FUZZ_CHECK(magic == MIXCOMM__FDX_MAGIC, "wrong magic accepted");
      FUZZ_CHECK(lr >= 0 && lr < local_size && lr != local_rank && (uint32_t)lr == claimed_lr,
                 "accepted local rank %d (claimed %u) on local rank %d of %d", lr, claimed_lr,
                 local_rank, local_size);
      FUZZ_CHECK(claimed_wr == (uint32_t)(first + lr), "accepted world rank %u", claimed_wr);
      FUZZ_CHECK(announced == 0 || ((cred_pid == 0 || cred_pid == announced) &&
                                    (pid == 0 || (int)pid == announced)),
                 "accepted pid %u / %d for a rank that announced %d", pid, cred_pid, announced);
      FUZZ_CHECK(peer_fds[lr] < 0 && rfd >= 0, "accepted a second or missing descriptor");
    } else {
      check_message();
    }
  }
  if (rfd >= 0)
    close(rfd);
  close(sv[0]); /* descriptors still queued in the socket are released with it */
  close(sv[1]);
  const int now_free = probe_lowest_free();
  if (now_free != lowest_free) {
    char link[64], target[256] = "?";
    snprintf(link, sizeof link, "/proc/self/fd/%d", lowest_free);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    FUZZ_CHECK(0, "a descriptor leaked: %d is %s", lowest_free, target);
  }
  return 0;
}
