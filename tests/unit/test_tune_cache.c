/* SPDX-License-Identifier: Apache-2.0
 * Tests of the autotune cache file: a stored table loads back (and only into the ops it
 * holds), stores fail with a status naming the path, and every kind of damaged, edited or
 * foreign file is refused with a warning naming the file and the reason. Edited files are
 * re-sealed with a separate FNV-1a written here, so each refusal is caused by its one edit. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness/task.h"
#include "tune/tune.h"

/* ---------------------------------------------------------------------------------------- */
/* Cache files                                                                               */
/* ---------------------------------------------------------------------------------------- */

static int rm_entry(const char* path, const struct stat* sb, int flag, struct FTW* ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void rm_tree(const char* dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char* slurp(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (f == NULL)
    FAIL("cannot open %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char* buf = malloc(cap + 1);
  ASSERT(buf != NULL);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
    n += r;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
      ASSERT(buf != NULL);
    }
  }
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static void spit(const char* path, const char* data, size_t n) {
  FILE* f = fopen(path, "wb");
  if (f == NULL)
    FAIL("cannot create %s: %s", path, strerror(errno));
  ASSERT_EQ(fwrite(data, 1, n, f), n);
  ASSERT_EQ(fclose(f), 0);
}

/* The format's checksum, written independently: FNV-1a 64 over the bytes before the line. */
static uint64_t test_fnv(const char* s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

#define MAX_LINES 256
typedef struct lines {
  char* v[MAX_LINES];
  int n;
} lines_t;

/* Split a stored file into lines (without '\n'), dropping the checksum line. */
static void split_file(const char* path, lines_t* l) {
  char* text = slurp(path, NULL);
  l->n = 0;
  for (char* s = text; *s;) {
    char* nl = strchr(s, '\n');
    ASSERT(nl != NULL);
    *nl = '\0';
    ASSERT(l->n < MAX_LINES);
    l->v[l->n++] = strdup(s);
    s = nl + 1;
  }
  free(text);
  ASSERT(l->n >= 4);
  ASSERT(strncmp(l->v[l->n - 1], "checksum ", 9) == 0);
  free(l->v[--l->n]);
}

static void free_lines(lines_t* l) {
  for (int i = 0; i < l->n; i++)
    free(l->v[i]);
  l->n = 0;
}

static void set_line(lines_t* l, int i, const char* s) {
  ASSERT(i >= 0 && i < l->n);
  free(l->v[i]);
  l->v[i] = strdup(s);
}

/* Write lines as a file, sealed with a correct checksum line if seal. */
static void write_lines(const char* path, const lines_t* l, int seal) {
  size_t cap = 64;
  for (int i = 0; i < l->n; i++)
    cap += strlen(l->v[i]) + 1;
  char* buf = malloc(cap);
  size_t n = 0;
  for (int i = 0; i < l->n; i++)
    n += (size_t)sprintf(buf + n, "%s\n", l->v[i]);
  uint64_t h = test_fnv(buf, n);
  if (seal)
    n += (size_t)sprintf(buf + n, "checksum %016llx\n", (unsigned long long)h);
  else
    n += (size_t)sprintf(buf + n, "checksum %016llx\n", (unsigned long long)(h ^ 1));
  spit(path, buf, n);
  free(buf);
}

static void copy_lines(lines_t* dst, const lines_t* src) {
  dst->n = src->n;
  for (int i = 0; i < src->n; i++)
    dst->v[i] = strdup(src->v[i]);
}

static mixcomm_mode_t sample_mode(int op, int b) {
  static const mixcomm_mode_t m[] = {MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                                     MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, MIXCOMM_MODE_NCCL_ONE,
                                     MIXCOMM_MODE_NCCL_TP_DP};
  return m[(op + b) % 4];
}

#define SENTINEL_BYTE 0x5a
#define OPS_MIXED \
  ((1u << MIXCOMM_OP_ALLREDUCE_ALLGATHER) | (1u << MIXCOMM_OP_REDUCESCATTER_ALLREDUCE))
#define MODES_OK                                                                             \
  ((1u << MIXCOMM_MODE_FUSED_OPT_WAITS_UC) | (1u << MIXCOMM_MODE_FUSED_OPT_BYTES1_UC) |       \
   (1u << MIXCOMM_MODE_NCCL_ONE) | (1u << MIXCOMM_MODE_NCCL_TP_DP) |                          \
   (1u << MIXCOMM_MODE_AUTOTUNE))

typedef struct cache_fixture {
  char dir[256];
  char log[512];
  char path[512];
  mixcomm__tune_key_t key;
  int nb;
} cache_fixture_t;

/* A temporary directory and, since the log is configured on first use, logging of warnings
 * into a file there (call before anything else in the test). */
static void fixture_init(cache_fixture_t* fx) {
  snprintf(fx->dir, sizeof fx->dir, "/tmp/mixcomm-tune-XXXXXX");
  ASSERT(mkdtemp(fx->dir) != NULL);
  snprintf(fx->log, sizeof fx->log, "%s/log.txt", fx->dir);
  setenv("MIXCOMM_LOG", "WARN", 1);
  setenv("MIXCOMM_LOG_FILE", fx->log, 1);
  key_case_t k;
  base_key_case(&k);
  key_text(&k, &fx->key);
  fx->nb = mixcomm__tune_num_buckets(k.topo.dp_size);
  ASSERT_EQ(fx->nb, 14);
  snprintf(fx->path, sizeof fx->path, "%s/a/b/c/autotune-test.txt", fx->dir);
}

static size_t log_size(const cache_fixture_t* fx) {
  struct stat st;
  return stat(fx->log, &st) == 0 ? (size_t)st.st_size : 0;
}

static void fill_sample(mixcomm__tune_table_t t) {
  memset(t, SENTINEL_BYTE, sizeof(mixcomm__tune_table_t));
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    for (int b = 0; b < MIXCOMM_TUNE_BUCKETS; b++)
      if (OPS_MIXED >> op & 1u)
        t[op][b] = sample_mode(op, b);
}

/* Loading `path` must fail, leave the table as it was and log a warning naming the file and
 * containing `reason`. */
static void expect_rejected(const cache_fixture_t* fx, const char* path,
                            const mixcomm__tune_key_t* key, uint32_t ops, uint32_t modes, int nb,
                            const char* reason, const char* what) {
  mixcomm__tune_table_t t, ref;
  memset(t, SENTINEL_BYTE, sizeof t);
  memset(ref, SENTINEL_BYTE, sizeof ref);
  size_t before = log_size(fx);
  int r = mixcomm__tune_cache_load(path, key, ops, modes, nb, t);
  if (r != 0)
    FAIL("%s: the file was accepted", what);
  if (memcmp(t, ref, sizeof t) != 0)
    FAIL("%s: the table was modified by a refused file", what);
  char* log = slurp(fx->log, NULL);
  const char* fresh = log + before;
  if (strstr(fresh, path) == NULL || strstr(fresh, reason) == NULL)
    FAIL("%s: expected a warning naming %s with \"%s\", log has: %s", what, path, reason, fresh);
  free(log);
}

TEST_IMPL(tune_cache_round_trip) {
  cache_fixture_t fx;
  fixture_init(&fx);
  umask(022);
  mixcomm__tune_table_t stored, loaded, ref;
  fill_sample(stored);

  /* Missing file: refused silently. */
  memset(loaded, SENTINEL_BYTE, sizeof loaded);
  memcpy(ref, loaded, sizeof ref);
  ASSERT_EQ(mixcomm__tune_cache_load(fx.path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, loaded), 0);
  ASSERT(memcmp(loaded, ref, sizeof ref) == 0);
  ASSERT_EQ(log_size(&fx), 0);

  ASSERT_OK(mixcomm__tune_cache_store(fx.path, &fx.key, OPS_MIXED, fx.nb, stored));
  /* Missing directories were created with mode 0700. */
  char d[600];
  const char* subs[] = {"a", "a/b", "a/b/c"};
  for (int i = 0; i < 3; i++) {
    struct stat st;
    snprintf(d, sizeof d, "%s/%s", fx.dir, subs[i]);
    ASSERT_EQ(stat(d, &st), 0);
    ASSERT(S_ISDIR(st.st_mode));
    ASSERT_EQ(st.st_mode & 0777, 0700);
  }
  /* No temporary file is left next to the result. */
  snprintf(d, sizeof d, "%s.tmp.%ld", fx.path, (long)getpid());
  ASSERT(access(d, F_OK) != 0);

  /* The text format. */
  char* text = slurp(fx.path, NULL);
  char expect_head[1200];
  snprintf(expect_head, sizeof expect_head, "mixcomm-autotune 1\nkey %s\nbuckets 14\n",
           fx.key.text);
  ASSERT(strncmp(text, expect_head, strlen(expect_head)) == 0);
  ASSERT_CONTAINS(text, "\nALLREDUCE_ALLGATHER 0 NCCL_TP_DP\n");
  ASSERT_CONTAINS(text, "\nALLREDUCE_ALLGATHER 1 FUSED_OPT_WAITS_UC\n");
  ASSERT_CONTAINS(text, "\nREDUCESCATTER_ALLREDUCE 13 FUSED_OPT_BYTES1_UC\n");
  ASSERT(strstr(text, "\nALLREDUCE ") == NULL);
  char* last = strstr(text, "\nchecksum ");
  ASSERT(last != NULL);
  char sum[40];
  snprintf(sum, sizeof sum, "\nchecksum %016llx\n",
           (unsigned long long)test_fnv(text, (size_t)(last - text + 1)));
  ASSERT_STR_EQ(last, sum);
  free(text);

  /* Load: valid ops filled, everything else untouched. */
  memset(loaded, SENTINEL_BYTE, sizeof loaded);
  ASSERT_EQ(mixcomm__tune_cache_load(fx.path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, loaded), 1);
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    for (int b = 0; b < MIXCOMM_TUNE_BUCKETS; b++) {
      int in_file = (OPS_MIXED >> op & 1u) && b < fx.nb;
      if (in_file)
        ASSERT_EQ(loaded[op][b], sample_mode(op, b));
      else
        ASSERT_EQ(loaded[op][b], ref[op][b]);
    }

  /* Overwrite with another table; a load sees the new one. */
  for (int b = 0; b < fx.nb; b++)
    stored[MIXCOMM_OP_ALLREDUCE_ALLGATHER][b] = MIXCOMM_MODE_NCCL_TP_DP;
  ASSERT_OK(mixcomm__tune_cache_store(fx.path, &fx.key, OPS_MIXED, fx.nb, stored));
  ASSERT_EQ(mixcomm__tune_cache_load(fx.path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, loaded), 1);
  ASSERT_EQ(loaded[MIXCOMM_OP_ALLREDUCE_ALLGATHER][5], MIXCOMM_MODE_NCCL_TP_DP);

  /* A single-op, single-bucket table (dp huge) round-trips too. */
  mixcomm__tune_table_t one;
  memset(one, SENTINEL_BYTE, sizeof one);
  one[MIXCOMM_OP_ALLGATHER][0] = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
  char p1[600];
  snprintf(p1, sizeof p1, "%s/one.txt", fx.dir);
  ASSERT_OK(mixcomm__tune_cache_store(p1, &fx.key, 1u << MIXCOMM_OP_ALLGATHER, 1, one));
  memset(loaded, SENTINEL_BYTE, sizeof loaded);
  ASSERT_EQ(mixcomm__tune_cache_load(p1, &fx.key, 1u << MIXCOMM_OP_ALLGATHER, MODES_OK, 1,
                                     loaded),
            1);
  ASSERT_EQ(loaded[MIXCOMM_OP_ALLGATHER][0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC);

  /* Nothing was logged for any of this. */
  ASSERT_EQ(log_size(&fx), 0);

  /* Store errors are statuses naming the path. */
  mixcomm__tune_table_t bad;
  memcpy(bad, stored, sizeof bad);
  bad[MIXCOMM_OP_REDUCESCATTER_ALLREDUCE][3] = MIXCOMM_MODE_AUTOTUNE;
  ASSERT_ERR(mixcomm__tune_cache_store(fx.path, &fx.key, OPS_MIXED, fx.nb, bad),
             MIXCOMM_ERR_INVALID_ARGUMENT, fx.path);
  char blocked[600];
  snprintf(blocked, sizeof blocked, "%s/one.txt/sub/x.txt", fx.dir); /* a file in the way */
  ASSERT_ERR(mixcomm__tune_cache_store(blocked, &fx.key, OPS_MIXED, fx.nb, stored),
             MIXCOMM_ERR_SYSTEM, blocked);
  if (geteuid() != 0) {
    char ro[600], ro_file[700];
    snprintf(ro, sizeof ro, "%s/ro", fx.dir);
    ASSERT_EQ(mkdir(ro, 0500), 0);
    snprintf(ro_file, sizeof ro_file, "%s/x.txt", ro);
    ASSERT_ERR(mixcomm__tune_cache_store(ro_file, &fx.key, OPS_MIXED, fx.nb, stored),
               MIXCOMM_ERR_SYSTEM, ro_file);
    chmod(ro, 0700);
  }
  mixcomm__tune_key_t nl = fx.key;
  strcpy(nl.text, "a\nb");
  ASSERT_ERR(mixcomm__tune_cache_store(fx.path, &nl, OPS_MIXED, fx.nb, stored),
             MIXCOMM_ERR_INVALID_ARGUMENT, "newline");
  /* The failed stores did not damage the existing file. */
  ASSERT_EQ(mixcomm__tune_cache_load(fx.path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, loaded), 1);
  rm_tree(fx.dir);
  return 0;
}

TEST_IMPL(tune_cache_rejects_bad_files) {
  cache_fixture_t fx;
  fixture_init(&fx);
  mixcomm__tune_table_t stored;
  fill_sample(stored);
  ASSERT_OK(mixcomm__tune_cache_store(fx.path, &fx.key, OPS_MIXED, fx.nb, stored));
  lines_t good;
  split_file(fx.path, &good);
  ASSERT_EQ(good.n, 3 + 2 * fx.nb);
  char bad_path[600];
  snprintf(bad_path, sizeof bad_path, "%s/bad.txt", fx.dir);

  /* The test's own re-sealing gives a file that is accepted: so each refusal below is caused
   * by its one edit, not by the way the file was rewritten. */
  write_lines(bad_path, &good, 1);
  mixcomm__tune_table_t t;
  memset(t, SENTINEL_BYTE, sizeof t);
  ASSERT_EQ(mixcomm__tune_cache_load(bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, t), 1);
  ASSERT_EQ(log_size(&fx), 0);

  const int first = 3, lastl = good.n - 1; /* first and last entry lines */
  struct edit {
    int line;            /* line to replace (-1: none) */
    const char* text;    /* its new text (NULL: delete the line) */
    const char* append;  /* a line added at the end (before the checksum) */
    const char* reason;  /* expected in the warning */
  } edits[] = {
      {0, "mixcomm-autotune 2", NULL, "line 1"},
      {0, "mixcomm-autotune", NULL, "line 1"},
      {1, "kye v=1;", NULL, "line 2"},
      {1, "key v=1;world=99;", NULL, "another configuration"},
      {2, "buckets 13", NULL, "13 buckets"},
      {2, "buckets 014", NULL, "bucket count"},
      {2, "buckets", NULL, "bucket count"},
      {first, "ALLREDUCE_ALLGATHERX 0 FUSED_OPT_WAITS_UC", NULL, "unknown op"},
      {first, "allreduce_allgather 0 FUSED_OPT_WAITS_UC", NULL, "unknown op"},
      {first, "ALLREDUCE_ALLGATHER 0 FUSED_OPT_WAITS", NULL, "unknown mode"},
      {first, "ALLREDUCE_ALLGATHER 0 nccl_one", NULL, "unknown mode"},
      {first, "ALLREDUCE_ALLGATHER 0 DEFAULT", NULL, "unknown mode"},
      {first, "ALLREDUCE_ALLGATHER 0 AUTOTUNE", NULL, "AUTOTUNE"},
      {first, "ALLREDUCE_ALLGATHER 0 FUSED_OPT_WAITS_MC", NULL, "not valid here"},
      {first, "ALLREDUCE_ALLGATHER 0 FUSED_OPT_BYTES2_UC", NULL, "not valid here"},
      {first, "ALLREDUCE_ALLGATHER 14 FUSED_OPT_WAITS_UC", NULL, "bucket"},
      {first, "ALLREDUCE_ALLGATHER -1 FUSED_OPT_WAITS_UC", NULL, "bucket"},
      {first, "ALLREDUCE_ALLGATHER 00 FUSED_OPT_WAITS_UC", NULL, "bucket"},
      {first, "ALLREDUCE_ALLGATHER x FUSED_OPT_WAITS_UC", NULL, "bucket"},
      {first, "ALLREDUCE_ALLGATHER  0 FUSED_OPT_WAITS_UC", NULL, "is not"},
      {first, "ALLREDUCE_ALLGATHER 0 FUSED_OPT_WAITS_UC ", NULL, "is not"},
      {first, "ALLREDUCE_ALLGATHER 0", NULL, "is not"},
      {first, "", NULL, "is not"},
      {first, NULL, NULL, "no entry for ALLREDUCE_ALLGATHER bucket 0"},
      {lastl, NULL, NULL, "no entry for REDUCESCATTER_ALLREDUCE bucket 13"},
      {-1, NULL, "ALLREDUCE_ALLGATHER 5 NCCL_ONE", "second entry"},
      {-1, NULL, "ALLREDUCE 0 NCCL_ONE", "not valid here"},
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    lines_t l;
    copy_lines(&l, &good);
    if (edits[i].line >= 0) {
      if (edits[i].text != NULL) {
        set_line(&l, edits[i].line, edits[i].text);
      } else {
        free(l.v[edits[i].line]);
        memmove(&l.v[edits[i].line], &l.v[edits[i].line + 1],
                sizeof(char*) * (size_t)(l.n - edits[i].line - 1));
        l.n--;
      }
    }
    if (edits[i].append != NULL)
      l.v[l.n++] = strdup(edits[i].append);
    write_lines(bad_path, &l, 1);
    char what[200];
    snprintf(what, sizeof what, "edit %zu (%s)", i, edits[i].reason);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, edits[i].reason, what);
    free_lines(&l);
  }

  /* An oversized line (sealed, so only its length is wrong). */
  {
    lines_t l;
    copy_lines(&l, &good);
    char big[5000];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    l.v[l.n++] = strdup(big);
    write_lines(bad_path, &l, 1);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "longer than",
                    "oversized line");
    free_lines(&l);
  }

  /* Bad checksum: one mode changed to another valid mode, not re-sealed. */
  {
    lines_t l;
    copy_lines(&l, &good);
    set_line(&l, first, "ALLREDUCE_ALLGATHER 0 NCCL_ONE");
    write_lines(bad_path, &l, 0);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "bad checksum",
                    "checksum mismatch");
    free_lines(&l);
  }

  /* Byte-level damage of the stored file. */
  size_t len;
  char* text = slurp(fx.path, &len);
  struct {
    size_t cut;          /* keep this many bytes */
    const char* reason;
  } cuts[] = {
      {0, "empty"},
      {len - 1, "truncated"},     /* last newline missing */
      {len / 2, "truncated"},     /* half the file */
      {len - 26, "truncated"},    /* no checksum line at all */
  };
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    spit(bad_path, text, cuts[i].cut);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, cuts[i].reason,
                    "cut file");
  }
  {
    char* dam = strdup(text);
    char* cs = strstr(dam, "\nchecksum ") + 10;
    cs[3] = cs[3] == 'X' ? 'Y' : 'X'; /* not a hex digit */
    spit(bad_path, dam, len);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "checksum line",
                    "malformed checksum");
    memcpy(dam, text, len);
    cs[0] = cs[0] == '0' ? '1' : '0'; /* a valid-looking but wrong checksum */
    spit(bad_path, dam, len);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "bad checksum",
                    "wrong checksum");
    memcpy(dam, text, len);
    dam[5] = '\0'; /* a NUL byte inside */
    spit(bad_path, dam, len);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "NUL",
                    "NUL byte");
    free(dam);
    /* Data after the checksum line. */
    char* more = malloc(len + 32);
    memcpy(more, text, len);
    memcpy(more + len, "ALLREDUCE 0 NCCL_ONE\n", 21);
    spit(bad_path, more, len + 21);
    expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "truncated",
                    "data after the checksum");
    free(more);
  }
  free(text);

  /* The untouched file, loaded with other expectations. */
  expect_rejected(&fx, fx.path, &fx.key, OPS_MIXED, MODES_OK, fx.nb - 1, "14 buckets",
                  "other bucket count");
  expect_rejected(&fx, fx.path, &fx.key, OPS_MIXED, MODES_OK & ~(1u << MIXCOMM_MODE_NCCL_TP_DP),
                  fx.nb, "NCCL_TP_DP is not valid here", "mode no longer valid");
  expect_rejected(&fx, fx.path, &fx.key, OPS_MIXED | 1u, MODES_OK, fx.nb,
                  "no entry for ALLREDUCE bucket 0", "op expected but missing");

  /* A file written for another key is foreign, even under this key's name. */
  key_case_t other;
  base_key_case(&other);
  other.f.driver_version = 12090;
  mixcomm__tune_key_t okey;
  key_text(&other, &okey);
  ASSERT_OK(mixcomm__tune_cache_store(bad_path, &okey, OPS_MIXED, fx.nb, stored));
  expect_rejected(&fx, bad_path, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "another configuration",
                  "foreign key");
  /* ... and the same file is fine for its own key. */
  memset(t, SENTINEL_BYTE, sizeof t);
  ASSERT_EQ(mixcomm__tune_cache_load(bad_path, &okey, OPS_MIXED, MODES_OK, fx.nb, t), 1);

  /* A directory or an unreadable path where the file should be: refused with a warning. */
  expect_rejected(&fx, fx.dir, &fx.key, OPS_MIXED, MODES_OK, fx.nb, "not a regular file",
                  "directory");
  free_lines(&good);
  rm_tree(fx.dir);
  return 0;
}
