/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the autotune cache file reader (src/tune/cache.c), on files another job, an
 * older build or a crash may have left.
 *
 * The input is [configuration byte][valid ops byte][file text]. With bit 7 of the ops byte
 * the text is sealed first: a correct checksum line is appended (as a writer would), so that
 * mutations reach the line checks behind the checksum. The file is parsed by
 * mixcomm__tune_cache_parse from a buffer of exactly its length (so any read past the end is
 * caught), and for one input in sixteen also written to a file and read by
 * mixcomm__tune_cache_load, the library's entry point. Properties:
 *   - a file is accepted only if it is complete and intact: then it has exactly the header,
 *     one line per valid op and bucket, and the checksum; every entry is a fused or NCCL mode
 *     valid here; what it says is what the writer would write (format, parse again: same
 *     table); and any truncation or any one changed byte of it is refused;
 *   - a refused file leaves the caller's table untouched and gives a reason that is a
 *     printable line (it goes to the log), never empty;
 *   - parsing allocates nothing; load and parse agree.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "tune/tune.h"

#define KEY_TEXT                                                                          \
  "v=1;world=8;local=8;inter=1;ltp=4;ldp=2;itp=1;idp=1;dtype=bfloat16;gpu=NVIDIA H100 80GB " \
  "HBM3;driver=12040;lib=100;grid=132;maxblock=0;minblock=256;minsteps=1;share=0;"         \
  "modes=0x1ff;"
#define SENTINEL ((mixcomm_mode_t)0x5a5a5a5a)
#define MAX_FILE (64 * 1024)

static const uint32_t modes_masks[4] = {
    0xffu,                                  /* every mode but AUTOTUNE */
    (1u << MIXCOMM_MODE_FUSED_OPT_WAITS_UC) | (1u << MIXCOMM_MODE_FUSED_OPT_BYTES1_UC) |
        (1u << MIXCOMM_MODE_NCCL_ONE) | (1u << MIXCOMM_MODE_NCCL_TP_DP),
    0x1ffu, /* AUTOTUNE too: still never accepted as an entry */
    1u << MIXCOMM_MODE_NCCL_ONE};

static char tmp_path[64];
static int tmp_registered;

static void remove_tmp(void) { unlink(tmp_path); }

static void fill_sentinel(mixcomm__tune_table_t t) {
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    for (int b = 0; b < MIXCOMM_TUNE_BUCKETS; b++)
      t[op][b] = SENTINEL;
}

/* Parse a copy of text[0..len) held in a buffer of exactly len bytes. */
static int parse(const char* text, size_t len, const mixcomm__tune_key_t* key, uint32_t ops,
                 uint32_t modes, int nb, mixcomm__tune_table_t out, char* why, size_t why_size) {
  char* copy = malloc(len > 0 ? len : 1);
  FUZZ_CHECK(copy != NULL, "out of memory");
  memcpy(copy, text, len);
  fuzz_count_start();
  int ok = mixcomm__tune_cache_parse(copy, len, key, ops, modes, nb, out, why, why_size);
  fuzz_count_stop();
  FUZZ_CHECK(fuzz_alloc_calls == 0, "parsing allocated %zu times", fuzz_alloc_calls);
  free(copy);
  if (!ok)
    FUZZ_CHECK(why[0] != '\0' && fuzz_printable(why, why_size), "bad reason: '%s'", why);
  return ok;
}

static int count_lines(const char* text, size_t len) {
  int n = 0;
  for (size_t i = 0; i < len; i++)
    n += text[i] == '\n';
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size_in) {
  if (tmp_path[0] == '\0') /* memory-backed when possible: this runs thousands of times */
    snprintf(tmp_path, sizeof tmp_path, "%s/mixcomm-fuzz-cache-%d.txt",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
  if (tmp_path[0] != '\0' && !tmp_registered) {
    atexit(remove_tmp);
    tmp_registered = 1;
  }
  fuzz_in_t in = {data, size_in};
  const uint8_t config = fuzz_u8(&in);
  const int nb = 1 + (config & 15) % MIXCOMM_TUNE_BUCKETS;
  const uint32_t modes = modes_masks[(config >> 4) & 3];
  const int use_load = (config >> 6) == 3 && (size_in & 3) == 0; /* 1 in 16 */
  const uint8_t ops_byte = fuzz_u8(&in);
  const uint32_t ops = ops_byte & ((1u << MIXCOMM_NUM_OPS) - 1);
  static char sealed[MAX_FILE + 64];
  const char* text = (const char*)in.p;
  size_t len = in.n < MAX_FILE ? in.n : MAX_FILE;
  if (ops_byte & 0x80) {
    memcpy(sealed, text, len);
    if (len == 0 || sealed[len - 1] != '\n')
      sealed[len++] = '\n';
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64, as the format says */
    for (size_t i = 0; i < len; i++) {
      h ^= (unsigned char)sealed[i];
      h *= 1099511628211ull;
    }
    len += (size_t)snprintf(sealed + len, 64, "checksum %016llx\n", (unsigned long long)h);
    text = sealed;
  }

  mixcomm__tune_key_t key;
  snprintf(key.text, sizeof key.text, "%s", KEY_TEXT);
  mixcomm__tune_table_t table;
  fill_sentinel(table);
  char why[800];
  why[0] = '\0';
  const int ok = parse(text, len, &key, ops, modes, nb, table, why, sizeof why);

  if (use_load) {
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "cannot create %s", tmp_path);
    FUZZ_CHECK(write(fd, text, len) == (ssize_t)len, "short write");
    close(fd);
    mixcomm__tune_table_t loaded;
    fill_sentinel(loaded);
    const int lok = mixcomm__tune_cache_load(tmp_path, &key, ops, modes, nb, loaded);
    FUZZ_CHECK(lok == ok, "load says %d, parse says %d", lok, ok);
    if (lok)
      FUZZ_CHECK(memcmp(loaded, table, sizeof loaded) == 0, "load and parse differ");
    else
      for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
        for (int b = 0; b < MIXCOMM_TUNE_BUCKETS; b++)
          FUZZ_CHECK(loaded[op][b] == SENTINEL, "a refused file changed the table");
  }
  if (!ok)
    return 0;

  /* Accepted: complete, valid entries only, nothing else touched. */
  int nops = 0;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    const int valid = ops >> op & 1u;
    nops += valid;
    for (int b = 0; b < MIXCOMM_TUNE_BUCKETS; b++) {
      const mixcomm_mode_t m = table[op][b];
      if (valid && b < nb)
        FUZZ_CHECK(m >= 0 && m < MIXCOMM_MODE_AUTOTUNE && (modes >> m & 1u),
                   "accepted mode %d for op %d bucket %d", (int)m, op, b);
      else
        FUZZ_CHECK(m == SENTINEL, "op %d bucket %d written though not in the file", op, b);
    }
  }
  FUZZ_CHECK(count_lines(text, len) == 3 + nops * nb + 1, "accepted a file of %d lines",
             count_lines(text, len));

  /* What the writer makes of the table reads back the same. */
  char out[4096 + sizeof key.text];
  size_t out_len = 0;
  FUZZ_CHECK(mixcomm__tune_cache_format(&key, ops, nb, table, out, sizeof out, &out_len) == 0,
             "cannot format an accepted table: %s", mixcomm_last_error());
  mixcomm__tune_table_t again;
  fill_sentinel(again);
  FUZZ_CHECK(parse(out, out_len, &key, ops, modes, nb, again, why, sizeof why),
             "the writer's file is refused: %s", why);
  FUZZ_CHECK(memcmp(again, table, sizeof again) == 0, "round trip changed the table");

  /* A truncated or damaged copy is never accepted (a few cuts and flips per input). */
  uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
  for (int k = 0; k < 4 && len > 0; k++) {
    h = h * 6364136223846793005ull + 1442695040888963407ull;
    const size_t pos = (size_t)(h >> 33) % len;
    mixcomm__tune_table_t t;
    fill_sentinel(t);
    FUZZ_CHECK(!parse(text, pos, &key, ops, modes, nb, t, why, sizeof why),
               "a file cut to %zu of %zu bytes is accepted", pos, len);
    char* bad = malloc(len);
    FUZZ_CHECK(bad != NULL, "out of memory");
    memcpy(bad, text, len);
    bad[pos] = (char)(bad[pos] ^ (1 + (h >> 20) % 255));
    FUZZ_CHECK(!parse(bad, len, &key, ops, modes, nb, t, why, sizeof why),
               "a file with byte %zu changed is accepted", pos);
    free(bad);
  }
  return 0;
}
