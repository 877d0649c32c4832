/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: what rank 0 of the TCP bootstrap does with the bytes a connecting process sends
 * before it is admitted (the hello: header, job token, rank and size claims).
 *
 * The input is [size byte][joined byte][chunking byte][the bytes the process sends]. They are
 * fed to mixcomm__tcp_judge_hello exactly as rank 0's loop does (tcp_accept.c): appended
 * in chunks of arbitrary sizes to the connection's fixed buffer, judged after every chunk,
 * until a verdict. Properties checked on every input:
 *   - a process without the job token never joins: ADMIT only for a complete hello of this
 *     version with exactly the token, the world size, a free rank in [1, size);
 *   - rank 0 never reads more than one hello, and judging allocates nothing (the listener's
 *     memory does not depend on what strangers send);
 *   - how the bytes are split across reads never changes the verdict;
 *   - every refusal has a printable reason that does not reveal the token.
 */
#include <stdint.h>
#include <string.h>

#include "bootstrap/tcp_internal.h"
#include "fuzz_common.h"

#define TOKEN_TEXT "fuzz-job-7f3a9c"
#define MAX_SIZE 17

static const char* verdict_name(mixcomm__tcp_hello_verdict_t v) {
  switch (v) {
    case MIXCOMM__HELLO_MORE:
      return "MORE";
    case MIXCOMM__HELLO_DROP:
      return "DROP";
    case MIXCOMM__HELLO_REFUSE:
      return "REFUSE";
    default:
      return "ADMIT";
  }
}

static void judge(const unsigned char* buf, size_t got, const unsigned char* token, int size,
                  const int* joined, mixcomm__tcp_hello_t* v) {
  fuzz_count_start();
  mixcomm__tcp_judge_hello(buf, got, token, size, joined, v);
  fuzz_count_stop();
  FUZZ_CHECK(fuzz_alloc_calls == 0, "judging a hello allocated %zu times", fuzz_alloc_calls);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size_in) {
  fuzz_in_t in = {data, size_in};
  const int size = 2 + fuzz_u8(&in) % (MAX_SIZE - 1);
  const uint8_t joined_bits = fuzz_u8(&in);
  uint8_t chunk_seed = fuzz_u8(&in);
  int joined[MAX_SIZE];
  for (int r = 0; r < MAX_SIZE; r++)
    joined[r] = (r >= 1 && r <= 8 && (joined_bits >> (r - 1) & 1)) ? 100 + r : -1;
  unsigned char token[MIXCOMM__TCP_TOKEN_SIZE];
  memset(token, 0, sizeof token);
  memcpy(token, TOKEN_TEXT, strlen(TOKEN_TEXT));

  /* Rank 0's buffer for one connection, filled read by read. */
  unsigned char buf[MIXCOMM__TCP_HELLO_SIZE];
  size_t got = 0;
  mixcomm__tcp_hello_t v;
  judge(buf, got, token, size, joined, &v); /* nothing read yet: MORE */
  FUZZ_CHECK(v.verdict == MIXCOMM__HELLO_MORE, "a verdict before any byte");
  while (in.n > 0) {
    const size_t room = sizeof buf - got;
    FUZZ_CHECK(room > 0, "a full buffer was left undecided");
    size_t chunk = 1 + chunk_seed % 64;
    chunk_seed = (uint8_t)(chunk_seed * 37 + 11);
    if (chunk > room)
      chunk = room; /* recv is never asked for more than the buffer holds */
    got += fuzz_bytes(&in, buf + got, chunk);
    judge(buf, got, token, size, joined, &v);
    if (v.verdict != MIXCOMM__HELLO_MORE)
      break;
    FUZZ_CHECK(v.want > 0 && v.want == sizeof buf - got, "want %zu after %zu bytes", v.want, got);
  }
  FUZZ_CHECK(got <= MIXCOMM__TCP_HELLO_SIZE, "read %zu bytes", got);
  if (got == MIXCOMM__TCP_HELLO_SIZE)
    FUZZ_CHECK(v.verdict != MIXCOMM__HELLO_MORE, "a complete hello is undecided");

  /* The same bytes in one read give the same verdict. */
  mixcomm__tcp_hello_t once;
  judge(buf, got, token, size, joined, &once);
  FUZZ_CHECK(once.verdict == v.verdict && once.rank == v.rank && once.status == v.status,
             "chunked verdict %s (rank %d) but %s (rank %d) in one read",
             verdict_name(v.verdict), v.rank, verdict_name(once.verdict), once.rank);

  mixcomm__tcp_hdr_t h;
  memset(&h, 0, sizeof h);
  if (got >= MIXCOMM__TCP_HDR_SIZE)
    mixcomm__tcp_decode_hdr(buf, &h);
  switch (v.verdict) {
    case MIXCOMM__HELLO_ADMIT:
      FUZZ_CHECK(got == MIXCOMM__TCP_HELLO_SIZE, "admitted after %zu bytes", got);
      FUZZ_CHECK(h.magic == MIXCOMM__TCP_MAGIC && h.version == MIXCOMM__TCP_VERSION &&
                     h.type == MIXCOMM__MSG_HELLO && h.len == MIXCOMM__TCP_TOKEN_SIZE,
                 "admitted a message that is not a hello of this version");
      FUZZ_CHECK(memcmp(buf + MIXCOMM__TCP_HDR_SIZE, token, sizeof token) == 0,
                 "admitted a process without the job token");
      FUZZ_CHECK(h.b == (uint32_t)size, "admitted a process of a world of %u ranks", h.b);
      FUZZ_CHECK(v.rank >= 1 && v.rank < size && (uint32_t)v.rank == h.a,
                 "admitted rank %d (claimed %u) in a world of %d", v.rank, h.a, size);
      FUZZ_CHECK(joined[v.rank] < 0, "admitted rank %d twice", v.rank);
      break;
    case MIXCOMM__HELLO_REFUSE:
      FUZZ_CHECK(v.status != MIXCOMM_SUCCESS, "a refusal without a status");
      /* fall through */
    case MIXCOMM__HELLO_DROP:
      FUZZ_CHECK(v.reason[0] != '\0' && fuzz_printable(v.reason, sizeof v.reason),
                 "reason not printable");
      FUZZ_CHECK(strstr(v.reason, TOKEN_TEXT) == NULL, "the reason reveals the token");
      break;
    case MIXCOMM__HELLO_MORE:
      FUZZ_CHECK(in.n == 0, "undecided with input left");
      break;
  }
  return 0;
}
