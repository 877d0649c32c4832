/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's wire format and its verdicts on received bytes (tcp_internal.h). Nothing
 * here trusts a length or a rank it did not check: everything a peer sends is judged against
 * fixed-size buffers, and a verdict never needs memory. */
#include <stdio.h>
#include <string.h>

#include "bootstrap/byte_order.h"
#include "bootstrap/tcp_internal.h"
#include "core/error.h"

void mixcomm__tcp_encode_hdr(unsigned char* p, uint32_t type, uint32_t a, uint32_t b,
                             uint64_t seq, uint64_t len) {
  mixcomm__put_be32(p, MIXCOMM__TCP_MAGIC);
  mixcomm__put_be32(p + 4, MIXCOMM__TCP_VERSION);
  mixcomm__put_be32(p + 8, type);
  mixcomm__put_be32(p + 12, a);
  mixcomm__put_be32(p + 16, b);
  mixcomm__put_be32(p + 20, 0);
  mixcomm__put_be64(p + 24, seq);
  mixcomm__put_be64(p + 32, len);
}

void mixcomm__tcp_decode_hdr(const unsigned char* p, mixcomm__tcp_hdr_t* h) {
  h->magic = mixcomm__get_be32(p);
  h->version = mixcomm__get_be32(p + 4);
  h->type = mixcomm__get_be32(p + 8);
  h->a = mixcomm__get_be32(p + 12);
  h->b = mixcomm__get_be32(p + 16);
  h->reserved = mixcomm__get_be32(p + 20);
  h->seq = mixcomm__get_be64(p + 24);
  h->len = mixcomm__get_be64(p + 32);
}

int mixcomm__tcp_hdr_ours(const mixcomm__tcp_hdr_t* h) {
  return h->magic == MIXCOMM__TCP_MAGIC && h->version == MIXCOMM__TCP_VERSION;
}

mixcomm_status_t mixcomm__tcp_status_from_wire(uint32_t a) {
  if (a > 0 && a < MIXCOMM_NUM_STATUS)
    return (mixcomm_status_t)a;
  return MIXCOMM_ERR_BOOTSTRAP;
}

/* Equal tokens, in time independent of where they differ (a stranger learns nothing about
 * the token from how fast it is refused). */
static int tokens_equal(const unsigned char* a, const unsigned char* b) {
  unsigned diff = 0;
  for (int i = 0; i < MIXCOMM__TCP_TOKEN_SIZE; i++)
    diff |= (unsigned)(a[i] ^ b[i]);
  return diff == 0;
}

static void verdict(mixcomm__tcp_hello_t* out, mixcomm__tcp_hello_verdict_t v,
                    mixcomm_status_t st) {
  out->verdict = v;
  out->status = st;
}

void mixcomm__tcp_judge_hello(const unsigned char* buf, size_t got, const unsigned char* token,
                              int size, const int* joined, mixcomm__tcp_hello_t* out) {
  memset(out, 0, sizeof *out);
  out->rank = -1;
  out->status = MIXCOMM_SUCCESS;
  if (got > MIXCOMM__TCP_HELLO_SIZE)
    got = MIXCOMM__TCP_HELLO_SIZE;
  if (got < MIXCOMM__TCP_HDR_SIZE) {
    out->verdict = MIXCOMM__HELLO_MORE;
    out->want = MIXCOMM__TCP_HELLO_SIZE - got;
    return;
  }
  mixcomm__tcp_hdr_t h;
  mixcomm__tcp_decode_hdr(buf, &h);
  if (h.magic != MIXCOMM__TCP_MAGIC) {
    verdict(out, MIXCOMM__HELLO_DROP, MIXCOMM_SUCCESS);
    snprintf(out->reason, sizeof out->reason, "not mixcomm");
    return;
  }
  if (h.version != MIXCOMM__TCP_VERSION || h.type != MIXCOMM__MSG_HELLO ||
      h.len != MIXCOMM__TCP_TOKEN_SIZE) {
    verdict(out, MIXCOMM__HELLO_REFUSE, MIXCOMM_ERR_MISMATCH);
    snprintf(out->reason, sizeof out->reason,
             "protocol mismatch: version %u / message %u, rank 0 speaks version %u; use the "
             "same mixcomm build on every rank",
             h.version, h.type, MIXCOMM__TCP_VERSION);
    return;
  }
  if (got < MIXCOMM__TCP_HELLO_SIZE) {
    out->verdict = MIXCOMM__HELLO_MORE;
    out->want = MIXCOMM__TCP_HELLO_SIZE - got;
    return;
  }
  /* The token first: a process of another job learns nothing else about this one. */
  if (!tokens_equal(buf + MIXCOMM__TCP_HDR_SIZE, token)) {
    verdict(out, MIXCOMM__HELLO_REFUSE, MIXCOMM_ERR_BOOTSTRAP);
    snprintf(out->reason, sizeof out->reason,
             "wrong job token: this process's MIXCOMM_JOB_TOKEN / TORCHELASTIC_RUN_ID differs "
             "from rank 0's, so it belongs to another job");
    return;
  }
  if (size < 1 || h.b != (uint32_t)size) {
    verdict(out, MIXCOMM__HELLO_REFUSE, MIXCOMM_ERR_MISMATCH);
    snprintf(out->reason, sizeof out->reason,
             "size mismatch: this process says the world has %u ranks, rank 0 says %d", h.b,
             size);
    return;
  }
  if (h.a == 0 || h.a >= (uint32_t)size) {
    verdict(out, MIXCOMM__HELLO_REFUSE, MIXCOMM_ERR_INVALID_ARGUMENT);
    snprintf(out->reason, sizeof out->reason,
             "rank %u is not a non-root rank of a world of %d ranks", h.a, size);
    return;
  }
  const int r = (int)h.a;
  if (joined[r] >= 0) {
    verdict(out, MIXCOMM__HELLO_REFUSE, MIXCOMM_ERR_BOOTSTRAP);
    snprintf(out->reason, sizeof out->reason,
             "rank %d already joined; two processes were started with the same rank", r);
    return;
  }
  out->verdict = MIXCOMM__HELLO_ADMIT;
  out->rank = r;
}

mixcomm_status_t mixcomm__tcp_check_data(const unsigned char* hdr, int rank, uint64_t seq,
                                         size_t bytes, const char* what) {
  mixcomm__tcp_hdr_t h;
  mixcomm__tcp_decode_hdr(hdr, &h);
  if (!mixcomm__tcp_hdr_ours(&h) || h.type != MIXCOMM__MSG_DATA)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "%s: rank %d sent an unexpected message (type %u); the connection is "
                          "out of step",
                          what, rank, h.type);
  if (h.seq != seq)
    return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                          "%s: rank %d is at bootstrap call #%llu while rank 0 is at #%llu; every "
                          "rank must make the same sequence of bootstrap calls",
                          what, rank, (unsigned long long)h.seq, (unsigned long long)seq);
  if (h.len != (uint64_t)bytes)
    return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                          "%s: rank %d contributes %llu bytes but rank 0 contributes %zu; every "
                          "rank must pass the same size",
                          what, rank, (unsigned long long)h.len, bytes);
  return MIXCOMM_SUCCESS;
}

mixcomm__tcp_answer_t mixcomm__tcp_classify_answer(const unsigned char* hdr, uint64_t seq,
                                                   uint64_t total, mixcomm__tcp_hdr_t* h) {
  mixcomm__tcp_decode_hdr(hdr, h);
  if (!mixcomm__tcp_hdr_ours(h))
    return MIXCOMM__ANSWER_BAD;
  if (h->type == MIXCOMM__MSG_ERROR)
    return h->len < MIXCOMM__TCP_MAX_TEXT ? MIXCOMM__ANSWER_ERROR : MIXCOMM__ANSWER_BAD;
  if (h->type == MIXCOMM__MSG_RESULT && h->seq == seq && h->len == total)
    return MIXCOMM__ANSWER_RESULT;
  return MIXCOMM__ANSWER_BAD;
}

mixcomm__tcp_setup_answer_t mixcomm__tcp_classify_setup(const unsigned char* hdr,
                                                        mixcomm__tcp_hdr_t* h, int* wait_ms) {
  mixcomm__tcp_decode_hdr(hdr, h);
  *wait_ms = 0;
  if (!mixcomm__tcp_hdr_ours(h))
    return MIXCOMM__SETUP_FOREIGN;
  switch (h->type) {
    case MIXCOMM__MSG_ACCEPTED:
      /* Rank 0 announces what is left of its own timeout, which is never more than this. */
      if (h->len != 0 || h->a > (uint32_t)MIXCOMM__TCP_MAX_TIMEOUT_MS)
        return MIXCOMM__SETUP_BAD;
      *wait_ms = (int)h->a;
      return MIXCOMM__SETUP_ACCEPTED;
    case MIXCOMM__MSG_OK:
      return h->len == 0 ? MIXCOMM__SETUP_OK : MIXCOMM__SETUP_BAD;
    case MIXCOMM__MSG_REJECT:
    case MIXCOMM__MSG_ABORT:
      return h->len < MIXCOMM__TCP_MAX_TEXT ? MIXCOMM__SETUP_TEXT : MIXCOMM__SETUP_BAD;
    default:
      return MIXCOMM__SETUP_BAD;
  }
}

void mixcomm__tcp_text_from_wire(char* text, size_t len) {
  for (size_t i = 0; i < len; i++) {
    const unsigned char ch = (unsigned char)text[i];
    if (ch < 0x20 || ch >= 0x7f)
      text[i] = '?';
  }
  text[len] = '\0';
}

size_t mixcomm__tcp_parse_error_notice(const unsigned char* buf, size_t got,
                                       mixcomm__tcp_hdr_t* h, char* text, size_t cap) {
  if (got < MIXCOMM__TCP_HDR_SIZE || cap < MIXCOMM__TCP_MAX_TEXT)
    return 0;
  mixcomm__tcp_decode_hdr(buf, h);
  if (!mixcomm__tcp_hdr_ours(h) || h->type != MIXCOMM__MSG_ERROR ||
      h->len >= MIXCOMM__TCP_MAX_TEXT || got - MIXCOMM__TCP_HDR_SIZE < h->len)
    return 0;
  memcpy(text, buf + MIXCOMM__TCP_HDR_SIZE, (size_t)h->len);
  mixcomm__tcp_text_from_wire(text, (size_t)h->len);
  return MIXCOMM__TCP_HDR_SIZE + (size_t)h->len;
}
