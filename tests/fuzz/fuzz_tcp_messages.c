/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the TCP bootstrap's messages after the hello, on both sides: rank 0's check of a
 * rank's DATA header in a collective, a rank's view of rank 0's answer (RESULT or ERROR), of
 * rank 0's setup messages (ACCEPTED, OK, REJECT, ABORT), the peek at a pending ERROR notice,
 * and the cleaning of text bodies.
 *
 * The input is [kind byte][seq u32][bytes u32][rank byte][message bytes]. Properties:
 *   - a header is accepted only when every field is exactly what the call expects (type,
 *     sequence number, length); a payload length is never taken from the peer unchecked;
 *   - ACCEPTED's wait and every text length stay within what a rank 0 of this build sends;
 *   - text from the wire always ends up NUL-terminated printable ASCII of the announced length;
 *   - error messages are printable and name the rank at fault;
 *   - decoding then encoding a header gives the same bytes (reserved field aside);
 *   - none of this allocates.
 */
#include <stdint.h>
#include <string.h>

#include "bootstrap/tcp_internal.h"
#include "fuzz_common.h"

#define KINDS 5

static void check_error_message(mixcomm_status_t st, const char* needle) {
  const char* msg = mixcomm_last_error();
  FUZZ_CHECK(st != MIXCOMM_SUCCESS, "no status");
  FUZZ_CHECK(fuzz_printable(msg, 1024) && msg[0] != '\0', "message not printable: %s", msg);
  if (needle != NULL)
    FUZZ_CHECK(strstr(msg, needle) != NULL, "message '%s' does not name '%s'", msg, needle);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size_in) {
  fuzz_in_t in = {data, size_in};
  const int kind = fuzz_u8(&in) % KINDS;
  const uint64_t seq = fuzz_u32(&in);
  const size_t bytes = fuzz_u32(&in);
  const int rank = 1 + fuzz_u8(&in) % 64;
  unsigned char msg[MIXCOMM__TCP_HDR_SIZE + MIXCOMM__TCP_MAX_TEXT + 64];
  memset(msg, 0, sizeof msg);
  const size_t got = fuzz_bytes(&in, msg, sizeof msg);
  mixcomm__tcp_hdr_t h;
  mixcomm__tcp_decode_hdr(msg, &h);

  /* Round trip of the header. */
  {
    unsigned char again[MIXCOMM__TCP_HDR_SIZE];
    mixcomm__tcp_encode_hdr(again, h.type, h.a, h.b, h.seq, h.len);
    memcpy(again, msg, 8);        /* magic and version are the build's own when encoding */
    memcpy(again + 20, msg + 20, 4); /* reserved: always 0 when encoding */
    FUZZ_CHECK(memcmp(again, msg, sizeof again) == 0, "header does not round-trip");
  }

  char rank_name[32];
  snprintf(rank_name, sizeof rank_name, "rank %d", rank);
  fuzz_count_start();
  switch (kind) {
    case 0: { /* rank 0 checks a DATA header */
      mixcomm_status_t st = mixcomm__tcp_check_data(msg, rank, seq, bytes, "fuzz allgather");
      fuzz_count_stop();
      if (st == MIXCOMM_SUCCESS)
        FUZZ_CHECK(h.magic == MIXCOMM__TCP_MAGIC && h.version == MIXCOMM__TCP_VERSION &&
                       h.type == MIXCOMM__MSG_DATA && h.seq == seq && h.len == bytes,
                   "accepted a DATA header that does not match the call");
      else
        check_error_message(st, rank_name);
      break;
    }
    case 1: { /* a rank reads rank 0's answer to its collective */
      const uint64_t total = (uint64_t)bytes * (uint64_t)(1 + rank % 8);
      mixcomm__tcp_hdr_t hh;
      mixcomm__tcp_answer_t a = mixcomm__tcp_classify_answer(msg, seq, total, &hh);
      fuzz_count_stop();
      FUZZ_CHECK(memcmp(&hh, &h, sizeof h) == 0, "classify decoded another header");
      if (a == MIXCOMM__ANSWER_RESULT)
        FUZZ_CHECK(mixcomm__tcp_hdr_ours(&h) && h.type == MIXCOMM__MSG_RESULT && h.seq == seq &&
                       h.len == total,
                   "accepted a RESULT of another call or size");
      else if (a == MIXCOMM__ANSWER_ERROR)
        FUZZ_CHECK(mixcomm__tcp_hdr_ours(&h) && h.type == MIXCOMM__MSG_ERROR &&
                       h.len < MIXCOMM__TCP_MAX_TEXT,
                   "an ERROR whose text cannot be read");
      break;
    }
    case 2: { /* a rank reads rank 0's setup message */
      mixcomm__tcp_hdr_t hh;
      int wait_ms = -1;
      mixcomm__tcp_setup_answer_t a = mixcomm__tcp_classify_setup(msg, &hh, &wait_ms);
      fuzz_count_stop();
      FUZZ_CHECK(wait_ms >= 0 && wait_ms <= MIXCOMM__TCP_MAX_TIMEOUT_MS, "wait %d ms", wait_ms);
      if (a == MIXCOMM__SETUP_ACCEPTED)
        FUZZ_CHECK(h.type == MIXCOMM__MSG_ACCEPTED && h.len == 0 && (uint32_t)wait_ms == h.a,
                   "bad ACCEPTED taken");
      else if (a == MIXCOMM__SETUP_OK)
        FUZZ_CHECK(h.type == MIXCOMM__MSG_OK && h.len == 0, "bad OK taken");
      else if (a == MIXCOMM__SETUP_TEXT)
        FUZZ_CHECK((h.type == MIXCOMM__MSG_REJECT || h.type == MIXCOMM__MSG_ABORT) &&
                       h.len < MIXCOMM__TCP_MAX_TEXT,
                   "a text message whose text cannot be read");
      if (a != MIXCOMM__SETUP_FOREIGN)
        FUZZ_CHECK(mixcomm__tcp_hdr_ours(&h), "a foreign header taken as ours");
      break;
    }
    case 3: { /* a rank peeks at what is waiting on its socket */
      char text[MIXCOMM__TCP_MAX_TEXT];
      memset(text, 'x', sizeof text);
      mixcomm__tcp_hdr_t hh;
      const size_t n = mixcomm__tcp_parse_error_notice(msg, got, &hh, text, sizeof text);
      fuzz_count_stop();
      if (n > 0) {
        FUZZ_CHECK(n <= got && n == MIXCOMM__TCP_HDR_SIZE + h.len, "notice of %zu bytes", n);
        FUZZ_CHECK(h.type == MIXCOMM__MSG_ERROR && mixcomm__tcp_hdr_ours(&h), "not an ERROR");
        FUZZ_CHECK(fuzz_printable(text, sizeof text) && strlen(text) == h.len,
                   "notice text not cleaned (%zu of %llu bytes)", strlen(text),
                   (unsigned long long)h.len);
      }
      break;
    }
    default: { /* a text body as received */
      char text[MIXCOMM__TCP_MAX_TEXT + 1];
      const size_t len = got < MIXCOMM__TCP_MAX_TEXT ? got : MIXCOMM__TCP_MAX_TEXT;
      memcpy(text, msg, len);
      mixcomm__tcp_text_from_wire(text, len);
      fuzz_count_stop();
      FUZZ_CHECK(strlen(text) == len && fuzz_printable(text, sizeof text), "text not cleaned");
      for (size_t i = 0; i < len; i++)
        if (msg[i] >= 0x20 && msg[i] < 0x7f)
          FUZZ_CHECK(text[i] == (char)msg[i], "printable byte %zu changed", i);
      break;
    }
  }
  fuzz_count_stop();
  FUZZ_CHECK(fuzz_alloc_calls == 0, "kind %d allocated %zu times", kind, fuzz_alloc_calls);
  return 0;
}
