/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's wire format and the decisions it takes on bytes from the network, kept
 * apart from the socket code (tcp_ctx.h) so that they can be tested and fuzzed on their own:
 * every function here is pure (no I/O, no allocation). The protocol is described in tcp.c. */
#ifndef MIXCOMM_BOOTSTRAP_TCP_INTERNAL_H_
#define MIXCOMM_BOOTSTRAP_TCP_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIXCOMM__TCP_MAGIC 0x4d584342u /* "MXCB" */
#define MIXCOMM__TCP_VERSION 1u
#define MIXCOMM__TCP_HDR_SIZE 40
#define MIXCOMM__TCP_TOKEN_SIZE 128
#define MIXCOMM__TCP_HELLO_SIZE (MIXCOMM__TCP_HDR_SIZE + MIXCOMM__TCP_TOKEN_SIZE)
#define MIXCOMM__TCP_MAX_TEXT 4096 /* text bodies are shorter than this */
#define MIXCOMM__TCP_DEFAULT_TIMEOUT_MS 60000
#define MIXCOMM__TCP_MAX_TIMEOUT_MS (INT32_MAX / 2)

enum mixcomm__tcp_msg_type {
  MIXCOMM__MSG_HELLO = 1,
  MIXCOMM__MSG_ACCEPTED = 2,
  MIXCOMM__MSG_OK = 3,
  MIXCOMM__MSG_REJECT = 4,
  MIXCOMM__MSG_ABORT = 5,
  MIXCOMM__MSG_DATA = 6,
  MIXCOMM__MSG_RESULT = 7,
  MIXCOMM__MSG_ERROR = 8
};

typedef struct mixcomm__tcp_hdr {
  uint32_t magic, version, type, a, b, reserved;
  uint64_t seq, len;
} mixcomm__tcp_hdr_t;

void mixcomm__tcp_encode_hdr(unsigned char* p, uint32_t type, uint32_t a, uint32_t b,
                             uint64_t seq, uint64_t len);
void mixcomm__tcp_decode_hdr(const unsigned char* p, mixcomm__tcp_hdr_t* h);
/* 1 if h carries this build's magic and version. */
int mixcomm__tcp_hdr_ours(const mixcomm__tcp_hdr_t* h);
/* A status sent over the wire, or MIXCOMM_ERR_BOOTSTRAP for one this build does not know. */
mixcomm_status_t mixcomm__tcp_status_from_wire(uint32_t a);

/* Rank 0's verdict on the first `got` bytes a connecting process sent (only the first
 * MIXCOMM__TCP_HELLO_SIZE are looked at; rank 0 never reads more before a verdict). */
typedef enum mixcomm__tcp_hello_verdict {
  MIXCOMM__HELLO_MORE,   /* read up to `want` more bytes */
  MIXCOMM__HELLO_DROP,   /* not a mixcomm process: close without an answer */
  MIXCOMM__HELLO_REFUSE, /* answer REJECT (status, reason) and close */
  MIXCOMM__HELLO_ADMIT   /* `rank` joins */
} mixcomm__tcp_hello_verdict_t;

typedef struct mixcomm__tcp_hello {
  mixcomm__tcp_hello_verdict_t verdict;
  size_t want;             /* MORE */
  int rank;                /* ADMIT */
  mixcomm_status_t status; /* REFUSE */
  char reason[320];        /* DROP, REFUSE: for the log and the REJECT body */
} mixcomm__tcp_hello_t;

/* Judge a hello for a world of `size` ranks whose job token is token[0..TOKEN_SIZE), where
 * joined[r] >= 0 marks rank r as already joined. Admits only a complete hello of this version
 * with exactly this token (compared in constant time), this size, a rank in [1, size) that has
 * not joined. The reason never contains the expected token. */
void mixcomm__tcp_judge_hello(const unsigned char* buf, size_t got, const unsigned char* token,
                              int size, const int* joined, mixcomm__tcp_hello_t* out);

/* Rank 0, collective `what` number `seq` of `bytes` bytes: check rank `rank`'s DATA header.
 * MIXCOMM_SUCCESS, or MIXCOMM_ERR_BOOTSTRAP (not a DATA message) / MIXCOMM_ERR_MISMATCH
 * (another call or size) with a message naming the rank. */
mixcomm_status_t mixcomm__tcp_check_data(const unsigned char* hdr, int rank, uint64_t seq,
                                         size_t bytes, const char* what);

/* A non-root's view of rank 0's answer to collective number `seq` (total = size * bytes).
 * RESULT: the answer is the expected result (the body of `total` bytes follows). ERROR: rank 0
 * reports a failure, whose text of h.len bytes follows (h.len < MAX_TEXT). BAD: anything else
 * (the caller reports it as out of step). */
typedef enum mixcomm__tcp_answer {
  MIXCOMM__ANSWER_RESULT,
  MIXCOMM__ANSWER_ERROR,
  MIXCOMM__ANSWER_BAD
} mixcomm__tcp_answer_t;
mixcomm__tcp_answer_t mixcomm__tcp_classify_answer(const unsigned char* hdr, uint64_t seq,
                                                   uint64_t total, mixcomm__tcp_hdr_t* h);

/* A non-root's view of rank 0's message during setup. ACCEPTED: *wait_ms = the time rank 0
 * will still wait for the others. OK: setup is done. TEXT: REJECT or ABORT, whose text of
 * h.len bytes (< MAX_TEXT) follows. FOREIGN: not this protocol or version. BAD: a message of
 * this protocol that makes no sense here (another type, or a wait or text length no rank 0
 * sends). */
typedef enum mixcomm__tcp_setup_answer {
  MIXCOMM__SETUP_ACCEPTED,
  MIXCOMM__SETUP_OK,
  MIXCOMM__SETUP_TEXT,
  MIXCOMM__SETUP_FOREIGN,
  MIXCOMM__SETUP_BAD
} mixcomm__tcp_setup_answer_t;
mixcomm__tcp_setup_answer_t mixcomm__tcp_classify_setup(const unsigned char* hdr,
                                                        mixcomm__tcp_hdr_t* h, int* wait_ms);

/* A complete ERROR notice at the start of buf[0..got)? Returns its size in bytes (header and
 * text) with *h and text (cap >= MAX_TEXT, printable, NUL-terminated) filled, or 0. */
size_t mixcomm__tcp_parse_error_notice(const unsigned char* buf, size_t got,
                                       mixcomm__tcp_hdr_t* h, char* text, size_t cap);

/* Make a text body of len bytes (already in text, which holds len + 1 bytes) safe to print:
 * NUL-terminated at len, and every byte outside printable ASCII (a NUL, a control character
 * or escape sequence, non-ASCII) replaced by '?'. */
void mixcomm__tcp_text_from_wire(char* text, size_t len);

/* The bootstrap's settings, from options (fields that are set) and the environment (tcp.c
 * lists the order). addr gets at most addr_cap - 1 bytes; token gets TOKEN_SIZE bytes (zero
 * padded). Any present but invalid value is MIXCOMM_ERR_INVALID_ARGUMENT naming its source. */
mixcomm_status_t mixcomm__tcp_resolve_options(const mixcomm_tcp_options_t* o, int size,
                                              char* addr, size_t addr_cap, int* port,
                                              unsigned char* token, int* timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
