/* SPDX-License-Identifier: Apache-2.0
 * The messages of the node-local fd exchange (fd_exchange.c describes the protocol) and the
 * checks applied to them, apart from the socket loop so that they can be tested and fuzzed on
 * their own. Nothing here allocates; the checks are pure, mixcomm__fdx_recv_hello only reads
 * one connection. */
#ifndef MIXCOMM_BOOTSTRAP_FD_EXCHANGE_MSG_H_
#define MIXCOMM_BOOTSTRAP_FD_EXCHANGE_MSG_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIXCOMM__FDX_MAGIC 0x4d584644u /* "MXFD" */
#define MIXCOMM__FDX_DIR_CAP 100
#define MIXCOMM__FDX_HELLO_SIZE 16
#define MIXCOMM__FDX_MAX_FDS 8 /* descriptors one read takes at most; more is an error */
#define MIXCOMM__FDX_SEND_FDS_MAX 16 /* descriptors mixcomm__fdx_send_with_fds attaches at most */

/* What every rank announces through the bootstrap (step 1). */
typedef struct mixcomm__fdx_record {
  uint32_t magic;
  int32_t pid;
  uint32_t uid;
  int32_t local_rank, local_size;
  int32_t status;
  char dir[MIXCOMM__FDX_DIR_CAP];
} mixcomm__fdx_record_t;

/* This rank's place: local rank `local_rank` of `local_size` on the node whose ranks are world
 * ranks first .. first + local_size - 1; recs holds every world rank's record. */
typedef struct mixcomm__fdx_node {
  int local_rank, local_size, first, world_rank;
  const mixcomm__fdx_record_t* recs;
} mixcomm__fdx_node_t;

/* Step 2's check of the node's records: each says the local rank and size this rank expects,
 * runs as uid, and the leader (local rank 0) announced a NUL-terminated, non-empty directory,
 * copied to dir (cap >= MIXCOMM__FDX_DIR_CAP). MIXCOMM_ERR_MISMATCH / MIXCOMM_ERR_BOOTSTRAP
 * naming the world rank at fault otherwise. */
mixcomm_status_t mixcomm__fdx_check_node(const mixcomm__fdx_node_t* n, uint32_t uid, char* dir,
                                         size_t cap);

/* The leader's mkdtemp template "<base>/mixcomm-XXXXXX" in tmpl (cap >= MIXCOMM__FDX_DIR_CAP):
 * 0, or -1 when the directory name or the socket path "<dir>/r<local_size - 1>" of the last
 * local rank would not fit (in the record, in sun_path). */
int mixcomm__fdx_dir_template(const char* base, int local_size, char* tmpl, size_t cap);

/* The 16-byte hello {magic, local rank, world rank, pid}, big-endian. */
void mixcomm__fdx_encode_hello(unsigned char* hdr, int local_rank, int world_rank, int pid);

/* A complete hello from a connection whose peer credentials say cred_pid (0: unknown) and that
 * brought descriptor rfd (-1: none). Accepts it only from another local rank of this node,
 * with its matching world rank, the pid that rank announced (where both are known), that has
 * not yet sent one (peer_fds[lr] < 0), with a descriptor: then *lr = its local rank. */
mixcomm_status_t mixcomm__fdx_check_hello(const mixcomm__fdx_node_t* n, const unsigned char* hdr,
                                          int cred_pid, int rfd, const int* peer_fds, int* lr);

/* One sendmsg() of len bytes of p on socket fd with nfds copies of descriptor `attach` passed
 * along (SCM_RIGHTS, 0 <= nfds <= MIXCOMM__FDX_SEND_FDS_MAX; none when 0). Returns what
 * sendmsg() returns, with its errno; -1 with EINVAL for a count out of range. The exchange
 * attaches its one descriptor to the first bytes of its hello; tests attach more, as a
 * misbehaving peer could. */
ssize_t mixcomm__fdx_send_with_fds(int fd, const void* p, size_t len, int attach, int nfds,
                                   int flags);

/* Read what is available of a hello on non-blocking socket fd into hdr[*got..16), taking the
 * first descriptor that comes with it into *rfd (which must start at -1) and closing any other.
 * Returns 1 when the hello is complete, 0 when the socket would block, -1 with *st set on an
 * error (a peer that closed early or sent more than MIXCOMM__FDX_MAX_FDS descriptors at once).
 * `me` and cred_pid only serve the messages. */
int mixcomm__fdx_recv_hello(int fd, unsigned char* hdr, size_t* got, int* rfd, const char* me,
                            int cred_pid, mixcomm_status_t* st);

#ifdef __cplusplus
}
#endif

#endif
