/* SPDX-License-Identifier: Apache-2.0
 * Tests of mode selection (src/tune): size buckets, the key and path of the autotune cache, the
 * cache file (round trip and every way a file must be refused), the cross-rank agreement on
 * measured timings (2, 3 and 4 forked ranks over the TCP bootstrap, with fake timers) and the
 * cost model.
 *
 * Expected values come from the formulas in src/tune/tune.h and docs/mode-selection.md,
 * computed here independently (integer square roots for bucket boundaries, a separate FNV-1a
 * to re-seal edited cache files, max-over-ranks tables from the fake timers). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "harness/ranks.h"
#include "harness/task.h"
#include "tune/tune.h"

/* ---------------------------------------------------------------------------------------- */
/* Buckets                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* floor(sqrt(x)) by bisection (no floating point). */
static uint64_t isqrt_u64(uint64_t x) {
  uint64_t lo = 0, hi = 1ull << 32;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (mid * mid <= x)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

TEST_IMPL(tune_num_buckets) {
  ASSERT_EQ(mixcomm__tune_num_buckets(1), 15);
  ASSERT_EQ(mixcomm__tune_num_buckets(2), 14);
  ASSERT_EQ(mixcomm__tune_num_buckets(3), 14);
  ASSERT_EQ(mixcomm__tune_num_buckets(4), 13);
  ASSERT_EQ(mixcomm__tune_num_buckets(7), 13);
  ASSERT_EQ(mixcomm__tune_num_buckets(8), 12);
  ASSERT_EQ(mixcomm__tune_num_buckets(16), 11);
  ASSERT_EQ(mixcomm__tune_num_buckets(1 << 13), 2);
  ASSERT_EQ(mixcomm__tune_num_buckets(1 << 14), 1);
  ASSERT_EQ(mixcomm__tune_num_buckets(1 << 20), 1);
  ASSERT_EQ(mixcomm__tune_num_buckets(0x7fffffff), 1);
  /* dp * largest bucket stays <= 128 MiB for powers of two and < 256 MiB otherwise. */
  for (int dp = 1; dp <= 4096; dp++) {
    int nb = mixcomm__tune_num_buckets(dp);
    ASSERT(nb >= 1 && nb <= MIXCOMM_TUNE_BUCKETS);
    uint64_t total = (uint64_t)dp * mixcomm__tune_bucket_bytes(nb - 1);
    if (nb > 1 && (dp & (dp - 1)) == 0)
      ASSERT(total <= (128ull << 20));
    if (nb > 1)
      ASSERT(total < (256ull << 20));
  }
  return 0;
}

TEST_IMPL(tune_bucket_mapping) {
  for (int k = 0; k < MIXCOMM_TUNE_BUCKETS; k++)
    ASSERT_EQ(mixcomm__tune_bucket_bytes(k), 8192ull << k);
  ASSERT_EQ(mixcomm__tune_bucket_bytes(-1), 0);
  ASSERT_EQ(mixcomm__tune_bucket_bytes(MIXCOMM_TUNE_BUCKETS), 0);

  /* 0 bytes and anything up to 8 KiB: bucket 0. */
  ASSERT_EQ(mixcomm__tune_bucket(0, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(1, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(8191, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(8192, 15), 0);
  /* Hand-checked boundary: 8192 * sqrt(2) = 11585.24 */
  ASSERT_EQ(mixcomm__tune_bucket(11585, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(11586, 15), 1);
  ASSERT_EQ(mixcomm__tune_bucket(16384, 15), 1);
  /* 1 MiB = 8 KiB * 2^7 */
  ASSERT_EQ(mixcomm__tune_bucket(1u << 20, 15), 7);

  for (int nb = 1; nb <= MIXCOMM_TUNE_BUCKETS; nb++) {
    for (int k = 0; k < nb; k++) {
      uint64_t p = 8192ull << k;
      /* Exact powers and their neighbours. */
      ASSERT_EQ(mixcomm__tune_bucket(p, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(p - 1, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(p + 1, nb), k);
      /* Geometric midpoint to the next power: floor(p * sqrt 2) stays, one more goes up. */
      uint64_t mid = isqrt_u64(2 * p * p);
      ASSERT(mid * mid < 2 * p * p && (mid + 1) * (mid + 1) > 2 * p * p);
      int up = k + 1 < nb ? k + 1 : nb - 1;
      ASSERT_EQ(mixcomm__tune_bucket(mid - 1, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(mid, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(mid + 1, nb), up);
      ASSERT_EQ(mixcomm__tune_bucket(mid + 2, nb), up);
    }
    /* Huge messages: the last bucket. */
    ASSERT_EQ(mixcomm__tune_bucket(8192ull << 20, nb), nb - 1);
    ASSERT_EQ(mixcomm__tune_bucket(UINT64_MAX, nb), nb - 1);
    ASSERT_EQ(mixcomm__tune_bucket(UINT64_MAX / 2 + 1, nb), nb - 1);
  }
  /* Bad bucket counts are clamped to [1, 15]. */
  ASSERT_EQ(mixcomm__tune_bucket(1u << 30, 0), 0);
  ASSERT_EQ(mixcomm__tune_bucket(1u << 30, -3), 0);
  ASSERT_EQ(mixcomm__tune_bucket(UINT64_MAX, 99), MIXCOMM_TUNE_BUCKETS - 1);

  /* A sweep against round(log2(bytes / 8 KiB)) in long double, away from midpoints. */
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    uint64_t bytes = x % (300ull << 20);
    long double c = log2l((long double)bytes / 8192.0L);
    long double frac = c - floorl(c);
    if (bytes != 0 && fabsl(frac - 0.5L) < 1e-6L)
      continue;
    int want = bytes <= 8192 ? 0 : (int)llroundl(c);
    if (want > 14)
      want = 14;
    if (want < 0)
      want = 0;
    int got = mixcomm__tune_bucket(bytes, 15);
    if (got != want)
      FAIL("bucket(%llu) = %d, round(log2) gives %d", (unsigned long long)bytes, got, want);
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Key and path                                                                              */
/* ---------------------------------------------------------------------------------------- */

static mixcomm_topology_t make_topo(int world, int local, int ltp, int ldp, int itp, int idp) {
  mixcomm_topology_t t;
  memset(&t, 0, sizeof t);
  t.world_size = world;
  t.local_size = local;
  t.inter_size = world / local;
  t.local_tp_size = ltp;
  t.local_dp_size = ldp;
  t.inter_tp_size = itp;
  t.inter_dp_size = idp;
  mixcomm_status_t st = mixcomm_topology_resolve(&t, &t);
  if (st != MIXCOMM_SUCCESS)
    FAIL("topology %d/%d %d,%d,%d,%d: %s", world, local, ltp, ldp, itp, idp,
         mixcomm_last_error());
  return t;
}

typedef struct key_case {
  mixcomm_topology_t topo;
  mixcomm__tune_key_fields_t f;
} key_case_t;

static void base_key_case(key_case_t* k) {
  memset(k, 0, sizeof *k);
  k->topo = make_topo(16, 8, 4, 2, 2, 1);
  k->f.topo = &k->topo;
  k->f.dtype = MIXCOMM_BFLOAT16;
  k->f.gpu_name = "NVIDIA H100 80GB HBM3";
  k->f.driver_version = 13000;
  k->f.library_version = 100;
  k->f.grid_size = 132;
  k->f.max_block_size = 1024;
  k->f.min_block_size = 256;
  k->f.min_num_steps = 4;
  k->f.ranks_share_gpu = 0;
  k->f.valid_modes_mask = 0x1aa;
}

static void key_text(key_case_t* k, mixcomm__tune_key_t* key) {
  k->f.topo = &k->topo;
  memset(key->text, 'Z', sizeof key->text);
  mixcomm__tune_key(&k->f, key);
}

TEST_IMPL(tune_key_fields) {
  key_case_t base;
  base_key_case(&base);
  mixcomm__tune_key_t k0;
  key_text(&base, &k0);
  ASSERT_STR_EQ(k0.text,
                "v=1;world=16;local=8;inter=2;ltp=4;ldp=2;itp=2;idp=1;dtype=bfloat16;"
                "gpu=NVIDIA H100 80GB HBM3;driver=13000;lib=100;grid=132;maxblock=1024;"
                "minblock=256;minsteps=4;share=0;modes=0x1aa;");

  /* Changing any one input changes the text. */
  for (int field = 0; field < 17; field++) {
    key_case_t c = base;
    switch (field) {
      case 0: c.topo = make_topo(32, 8, 4, 2, 2, 2); break;         /* world, inter, idp */
      case 1: c.topo = make_topo(16, 4, 4, 1, 2, 2); break;         /* local, ldp, idp */
      case 2: c.topo = make_topo(16, 8, 2, 4, 2, 1); break;         /* ltp, ldp */
      case 3: c.topo = make_topo(16, 8, 4, 2, 1, 2); break;         /* itp, idp */
      case 4: c.topo = make_topo(16, 8, 8, 1, 2, 1); break;         /* ldp only with ltp */
      case 5: c.f.dtype = MIXCOMM_FLOAT16; break;
      case 6: c.f.gpu_name = "NVIDIA H200"; break;
      case 7: c.f.driver_version = 12080; break;
      case 8: c.f.library_version = 101; break;
      case 9: c.f.grid_size = 64; break;
      case 10: c.f.max_block_size = 512; break;
      case 11: c.f.min_block_size = 128; break;
      case 12: c.f.min_num_steps = 8; break;
      case 13: c.f.ranks_share_gpu = 1; break;
      case 14: c.f.valid_modes_mask = 0x1ab; break;
      case 15: c.f.dtype = MIXCOMM_FLOAT32; break;
      case 16: c.f.gpu_name = "NVIDIA H100 80GB HBM3 "; break;
    }
    mixcomm__tune_key_t k1;
    key_text(&c, &k1);
    if (strcmp(k0.text, k1.text) == 0)
      FAIL("changing field case %d left the key unchanged: %s", field, k1.text);
  }

  /* Each topology field on its own (the resolver would not let them vary alone). */
  int* topo_fields[] = {&base.topo.world_size,    &base.topo.local_size,
                        &base.topo.inter_size,    &base.topo.local_tp_size,
                        &base.topo.local_dp_size, &base.topo.inter_tp_size,
                        &base.topo.inter_dp_size};
  for (size_t i = 0; i < sizeof topo_fields / sizeof topo_fields[0]; i++) {
    key_case_t c = base;
    int* field = (int*)((char*)&c.topo + ((char*)topo_fields[i] - (char*)&base.topo));
    *field += 1;
    mixcomm__tune_key_t k1;
    key_text(&c, &k1);
    if (strcmp(k0.text, k1.text) == 0)
      FAIL("changing topology field %zu left the key unchanged", i);
  }

  /* The GPU name cannot break the key's structure. */
  key_case_t evil = base;
  evil.f.gpu_name = "A;b=c\nd\re\tf";
  mixcomm__tune_key_t k2;
  key_text(&evil, &k2);
  ASSERT(strchr(k2.text, '\n') == NULL && strchr(k2.text, '\r') == NULL);
  ASSERT(strchr(k2.text, '\t') == NULL);
  int semis = 0, equals = 0;
  for (const char* p = k2.text; *p; p++) {
    semis += *p == ';';
    equals += *p == '=';
  }
  ASSERT_EQ(semis, 18);
  ASSERT_EQ(equals, 18);
  ASSERT_CONTAINS(k2.text, ";gpu=A_b_c_d_e_f;");
  /* A different name that sanitises differently still differs. */
  evil.f.gpu_name = NULL;
  key_text(&evil, &k2);
  ASSERT_CONTAINS(k2.text, ";gpu=unknown;");

  /* A very long GPU name is cut, the key stays terminated and ends with the modes. */
  char longname[3000];
  memset(longname, 'G', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  evil.f.gpu_name = longname;
  key_text(&evil, &k2);
  ASSERT(strlen(k2.text) < sizeof k2.text);
  ASSERT_CONTAINS(k2.text, ";modes=0x1aa;");
  return 0;
}

/* path must be <dir>/autotune-<16 lowercase hex>.txt */
static void check_path_shape(const char* path, const char* dir) {
  size_t dl = strlen(dir);
  if (strncmp(path, dir, dl) != 0 || strncmp(path + dl, "/autotune-", 10) != 0)
    FAIL("path '%s' is not under '%s/autotune-'", path, dir);
  const char* h = path + dl + 10;
  for (int i = 0; i < 16; i++)
    if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
      FAIL("path '%s': no 16 hex digits", path);
  ASSERT_STR_EQ(h + 16, ".txt");
}

TEST_IMPL(tune_cache_path_precedence) {
  key_case_t base;
  base_key_case(&base);
  mixcomm__tune_key_t key, key2;
  key_text(&base, &key);
  base.f.grid_size = 66;
  key_text(&base, &key2);
  char p[4096], q[4096];

  unsetenv("MIXCOMM_CACHE_DIR");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/tester", 1);
  ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, p, sizeof p));
  check_path_shape(p, "/home/tester/.cache/mixcomm");

  setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
  ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, p, sizeof p));
  check_path_shape(p, "/xdg/cache/mixcomm");
  /* Empty or relative XDG_CACHE_HOME is ignored (XDG base directory rules). */
  setenv("XDG_CACHE_HOME", "", 1);
  ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, p, sizeof p));
  check_path_shape(p, "/home/tester/.cache/mixcomm");
  setenv("XDG_CACHE_HOME", "relative/cache", 1);
  ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, p, sizeof p));
  check_path_shape(p, "/home/tester/.cache/mixcomm");
  setenv("XDG_CACHE_HOME", "/xdg/cache/", 1);

  setenv("MIXCOMM_CACHE_DIR", "/env/dir", 1);
  ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, p, sizeof p));
  check_path_shape(p, "/env/dir");
  setenv("MIXCOMM_CACHE_DIR", "/env/dir//", 1);
  ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, q, sizeof q));
  ASSERT_STR_EQ(p, q);

  ASSERT_OK(mixcomm__tune_cache_path("/cfg/dir", &key, p, sizeof p));
  check_path_shape(p, "/cfg/dir");
  ASSERT_OK(mixcomm__tune_cache_path("relative", &key, p, sizeof p));
  check_path_shape(p, "relative");

  /* "" disables, whichever level says it. */
  ASSERT_ERR(mixcomm__tune_cache_path("", &key, p, sizeof p), MIXCOMM_ERR_UNSUPPORTED,
             "disabled");
  setenv("MIXCOMM_CACHE_DIR", "", 1);
  ASSERT_ERR(mixcomm__tune_cache_path(NULL, &key, p, sizeof p), MIXCOMM_ERR_UNSUPPORTED,
             "MIXCOMM_CACHE_DIR");
  ASSERT_OK(mixcomm__tune_cache_path("/cfg/dir", &key, p, sizeof p)); /* config still wins */
  unsetenv("MIXCOMM_CACHE_DIR");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "", 1);
  ASSERT_ERR(mixcomm__tune_cache_path(NULL, &key, p, sizeof p), MIXCOMM_ERR_UNSUPPORTED,
             "HOME");
  unsetenv("HOME");
  ASSERT_ERR(mixcomm__tune_cache_path(NULL, &key, p, sizeof p), MIXCOMM_ERR_UNSUPPORTED,
             "disabled");

  /* Same key, same file; other key, other file. */
  ASSERT_OK(mixcomm__tune_cache_path("/d", &key, p, sizeof p));
  ASSERT_OK(mixcomm__tune_cache_path("/d", &key, q, sizeof q));
  ASSERT_STR_EQ(p, q);
  ASSERT_OK(mixcomm__tune_cache_path("/d", &key2, q, sizeof q));
  ASSERT(strcmp(p, q) != 0);

  /* Too small a buffer is an error, not a truncated name. */
  char small[20];
  ASSERT_ERR(mixcomm__tune_cache_path("/some/dir", &key, small, sizeof small),
             MIXCOMM_ERR_INVALID_ARGUMENT, "longer");
  ASSERT_EQ(small[0], '\0');
  return 0;
}

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

/* ---------------------------------------------------------------------------------------- */
/* Agreement across ranks                                                                    */
/* ---------------------------------------------------------------------------------------- */

#define AG_MAX_OPS 5
#define AG_MAX_MODES 8

typedef struct agree_setup {
  int port;
  int nops, nmodes, nb;
  mixcomm_op_t ops[AG_MAX_OPS];
  mixcomm_mode_t modes[AG_MAX_MODES];
  /* failures: rank fail_rank fails at (ops[fail_op], bucket fail_bucket, modes[fail_mode]) */
  int fail_rank, fail_op, fail_bucket, fail_mode;
  int fail_kind;         /* 0 status, 1 NaN, 2 negative, 3 +inf */
  mixcomm_status_t fail_status;
  int timeout_rank;      /* another rank that reports a timeout at the same point (-1: none) */
  int reverse_modes_rank; /* a rank passing its mode list in another order (-1: none) */
  int expect_rank;       /* the rank the error must name */
  mixcomm_status_t expect_status;
} agree_setup_t;

typedef struct fake_timer {
  const agree_setup_t* s;
  int rank;
  int calls;
  int order_ok;
  int after_failure; /* calls made after this rank's timer failed (must stay 0 for that op) */
  int failed_op;     /* index of the op that failed on this rank (-1) */
} fake_timer_t;

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/* Time of rank r for (op, bucket, mode index m). Rank r makes mode index r % nmodes the
 * fastest locally; bucket 0 ties every mode (the earlier mode must win); bucket 1 ties all but
 * the first mode. */
static double fake_us(const agree_setup_t* s, int r, int op, int b, int m) {
  if (b == 0)
    return 7.0;
  if (b == 1)
    return m == 0 ? 9.0 : 8.0;
  if (m == r % s->nmodes)
    return 1.0 + 0.25 * b;
  return 10.0 + (double)(mix32((uint32_t)(r * 7919 + op * 131 + b * 17 + m)) % 1000) / 10.0;
}

static mixcomm_status_t fake_timer_fn(void* ctx, mixcomm_op_t op, mixcomm_mode_t mode,
                                      int bucket, double* us) {
  fake_timer_t* f = ctx;
  const agree_setup_t* s = f->s;
  /* Expected call: ops x buckets x modes, in that order (after a failure the next op). */
  int per_op = s->nb * s->nmodes;
  int call = f->calls++;
  int oi = call / per_op, b = (call % per_op) / s->nmodes, mi = call % s->nmodes;
  if (f->failed_op >= 0) {
    f->after_failure++;
    return MIXCOMM_ERR_INTERNAL;
  }
  const mixcomm_mode_t* modes = s->modes;
  mixcomm_mode_t reversed[AG_MAX_MODES];
  if (f->rank == s->reverse_modes_rank) {
    for (int i = 0; i < s->nmodes; i++)
      reversed[i] = s->modes[s->nmodes - 1 - i];
    modes = reversed;
  }
  if (oi >= s->nops || op != s->ops[oi] || bucket != b || mode != modes[mi])
    f->order_ok = 0;
  if (oi == s->fail_op && b == s->fail_bucket && mi == s->fail_mode &&
      (f->rank == s->fail_rank || f->rank == s->timeout_rank)) {
    f->failed_op = oi;
    if (f->rank == s->timeout_rank)
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT, "fake timeout waiting for a peer");
    switch (s->fail_kind) {
      case 1: *us = NAN; return MIXCOMM_SUCCESS;
      case 2: *us = -3.0; return MIXCOMM_SUCCESS;
      case 3: *us = INFINITY; return MIXCOMM_SUCCESS;
      default: return mixcomm__error(s->fail_status, "fake GPU failure on this rank");
    }
  }
  *us = fake_us(s, f->rank, op, bucket, mi);
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t make_bootstrap(int port, int rank, int n, mixcomm_bootstrap_t** bs) {
  mixcomm_tcp_options_t o;
  memset(&o, 0, sizeof o);
  snprintf(o.addr, sizeof o.addr, "127.0.0.1");
  o.port = port;
  snprintf(o.token, sizeof o.token, "tune-test");
  o.timeout_ms = 15000;
  return mixcomm_bootstrap_tcp_create(&o, rank, n, bs);
}

static int agree_rank(int rank, int n, void* arg) {
  const agree_setup_t* s = arg;
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(make_bootstrap(s->port, rank, n, &bs));
  fake_timer_t f = {s, rank, 0, 1, 0, -1};
  mixcomm__tune_table_t table, before;
  memset(table, SENTINEL_BYTE, sizeof table);
  memcpy(before, table, sizeof before);
  mixcomm_mode_t modes[AG_MAX_MODES];
  for (int i = 0; i < s->nmodes; i++)
    modes[i] = rank == s->reverse_modes_rank ? s->modes[s->nmodes - 1 - i] : s->modes[i];
  mixcomm_status_t st = mixcomm__tune_measure_and_agree(bs, s->ops, s->nops, modes, s->nmodes,
                                                        s->nb, fake_timer_fn, &f, table);
  if (s->expect_status != MIXCOMM_SUCCESS) {
    if (st != s->expect_status)
      FAIL("rank %d: status %s, expected %s (%s)", rank, mixcomm_status_name(st),
           mixcomm_status_name(s->expect_status), mixcomm_last_error());
    char name[64];
    if (s->expect_rank >= 0) {
      snprintf(name, sizeof name, "rank %d", s->expect_rank);
      ASSERT_CONTAINS(mixcomm_last_error(), name);
    }
    if (rank == s->expect_rank && s->fail_kind == 0 && s->timeout_rank < 0)
      ASSERT_CONTAINS(mixcomm_last_error(), "fake GPU failure");
    if (rank == s->expect_rank)
      ASSERT_CONTAINS(mixcomm_last_error(), "this rank");
    if (memcmp(table, before, sizeof table) != 0)
      FAIL("rank %d: the table changed although autotune failed", rank);
    if (f.after_failure != 0)
      FAIL("rank %d: the timer was called %d times after it failed", rank, f.after_failure);
    ASSERT(f.order_ok);
    mixcomm_bootstrap_destroy(bs);
    return 0;
  }
  if (st != MIXCOMM_SUCCESS)
    FAIL("rank %d: %s: %s", rank, mixcomm_status_name(st), mixcomm_last_error());
  ASSERT(f.order_ok);
  ASSERT_EQ(f.calls, s->nops * s->nb * s->nmodes);

  /* Expected table: per entry max over ranks, argmin over modes, ties to the earlier mode. */
  int local_differs = 0;
  for (int oi = 0; oi < s->nops; oi++) {
    for (int b = 0; b < s->nb; b++) {
      int best = -1;
      double best_us = 0;
      for (int m = 0; m < s->nmodes; m++) {
        double worst = -1;
        for (int r = 0; r < n; r++)
          worst = fmax(worst, fake_us(s, r, s->ops[oi], b, m));
        if (best < 0 || worst < best_us) {
          best = m;
          best_us = worst;
        }
      }
      mixcomm_mode_t want = s->modes[best];
      if (table[s->ops[oi]][b] != want)
        FAIL("rank %d: %s bucket %d chose %s, expected %s", rank,
             mixcomm_op_name(s->ops[oi]), b, mixcomm_mode_name(table[s->ops[oi]][b]),
             mixcomm_mode_name(want));
      if (b >= 2 && s->modes[rank % s->nmodes] != want)
        local_differs++;
    }
  }
  /* Bucket 0 (all tied) and 1 (all but the first tied) test the tie rule. */
  ASSERT_EQ(table[s->ops[0]][0], s->modes[0]);
  ASSERT_EQ(table[s->ops[0]][1], s->modes[1]);
  /* The decision is not this rank's local one somewhere (so the max over ranks matters). */
  ASSERT(local_differs > 0);
  /* Ops not listed are untouched. */
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    int listed = 0;
    for (int oi = 0; oi < s->nops; oi++)
      listed |= (int)s->ops[oi] == op;
    if (!listed)
      ASSERT(memcmp(table[op], before[op], sizeof table[op]) == 0);
  }
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

static void agree_default_setup(agree_setup_t* s, int n) {
  memset(s, 0, sizeof *s);
  s->port = free_tcp_port();
  ASSERT(s->port > 0);
  s->nops = 2;
  s->ops[0] = MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
  s->ops[1] = MIXCOMM_OP_ALLREDUCE_ALLGATHER;
  s->nmodes = n >= 4 ? 4 : 3;
  /* Not in enum order, so "earlier" means earlier in the list. */
  const mixcomm_mode_t m[] = {MIXCOMM_MODE_NCCL_TP_DP, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
                              MIXCOMM_MODE_FUSED_OPT_WAITS_UC, MIXCOMM_MODE_NCCL_ONE};
  memcpy(s->modes, m, sizeof m);
  s->nb = mixcomm__tune_num_buckets(2);
  s->fail_rank = -1;
  s->fail_op = -1;
  s->timeout_rank = -1;
  s->reverse_modes_rank = -1;
  s->expect_rank = -1;
  s->expect_status = MIXCOMM_SUCCESS;
}

static int run_agree(agree_setup_t* s, int n) {
  int statuses[8];
  int failed = run_ranks(n, agree_rank, s, 30000, statuses);
  for (int r = 0; r < n; r++)
    if (statuses[r] != 0)
      fprintf(stderr, "  rank %d exited with %d\n", r, statuses[r]);
  return failed;
}

TEST_IMPL(tune_agree_2_ranks) {
  agree_setup_t s;
  agree_default_setup(&s, 2);
  ASSERT_EQ(run_agree(&s, 2), 0);
  return 0;
}

TEST_IMPL(tune_agree_3_ranks) {
  agree_setup_t s;
  agree_default_setup(&s, 3);
  s.nops = 3;
  s.ops[2] = MIXCOMM_OP_ALLREDUCE;
  s.nb = mixcomm__tune_num_buckets(1);
  ASSERT_EQ(run_agree(&s, 3), 0);
  return 0;
}

TEST_IMPL(tune_agree_4_ranks) {
  agree_setup_t s;
  agree_default_setup(&s, 4);
  s.nb = mixcomm__tune_num_buckets(4);
  ASSERT_EQ(run_agree(&s, 4), 0);
  return 0;
}

TEST_IMPL(tune_agree_timer_failure) {
  /* rank 1's timer fails in the second op: every rank names it, nobody hangs, and the first
   * op's result is not kept either. */
  agree_setup_t s;
  agree_default_setup(&s, 3);
  s.fail_rank = 1;
  s.fail_op = 1;
  s.fail_bucket = 4;
  s.fail_mode = 1;
  s.fail_status = MIXCOMM_ERR_CUDA;
  s.expect_rank = 1;
  s.expect_status = MIXCOMM_ERR_CUDA;
  ASSERT_EQ(run_agree(&s, 3), 0);

  /* Failure on the first op, first measurement, of the last rank of 4. */
  agree_default_setup(&s, 4);
  s.fail_rank = 3;
  s.fail_op = 0;
  s.fail_bucket = 0;
  s.fail_mode = 0;
  s.fail_status = MIXCOMM_ERR_OUT_OF_MEMORY;
  s.expect_rank = 3;
  s.expect_status = MIXCOMM_ERR_OUT_OF_MEMORY;
  ASSERT_EQ(run_agree(&s, 4), 0);

  /* A rank that only timed out (as a consequence) is not blamed: rank 2 times out, rank 1
   * has the real failure; all name rank 1. */
  agree_default_setup(&s, 3);
  s.fail_rank = 1;
  s.timeout_rank = 2;
  s.fail_op = 0;
  s.fail_bucket = 3;
  s.fail_mode = 2;
  s.fail_status = MIXCOMM_ERR_CUDA;
  s.expect_rank = 1;
  s.expect_status = MIXCOMM_ERR_CUDA;
  ASSERT_EQ(run_agree(&s, 3), 0);
  return 0;
}

TEST_IMPL(tune_agree_bad_times) {
  /* NaN, negative and infinite times are failures of the rank that measured them. */
  for (int kind = 1; kind <= 3; kind++) {
    agree_setup_t s;
    agree_default_setup(&s, 3);
    s.fail_rank = kind - 1;
    s.fail_op = 1;
    s.fail_bucket = 2;
    s.fail_mode = 2;
    s.fail_kind = kind;
    s.expect_rank = kind - 1;
    s.expect_status = MIXCOMM_ERR_INTERNAL;
    if (run_agree(&s, 3) != 0)
      FAIL("bad time kind %d not handled", kind);
  }
  return 0;
}

TEST_IMPL(tune_agree_mode_list_mismatch) {
  agree_setup_t s;
  agree_default_setup(&s, 2);
  s.reverse_modes_rank = 1;
  s.expect_status = MIXCOMM_ERR_MISMATCH;
  s.expect_rank = -1;
  ASSERT_EQ(run_agree(&s, 2), 0);
  return 0;
}

/* A world of one rank through callbacks: allgather is a copy; counts the calls. */
typedef struct one_bs {
  int allgathers;
  size_t bytes;
} one_bs_t;

static int one_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  one_bs_t* b = ctx;
  b->allgathers++;
  b->bytes = bytes;
  memcpy(recv, send, bytes);
  return 0;
}

TEST_IMPL(tune_agree_one_rank_and_arguments) {
  one_bs_t ctx = {0, 0};
  mixcomm_bootstrap_t bs = {&ctx, one_allgather, NULL, NULL, 0, 1};
  agree_setup_t s;
  agree_default_setup(&s, 2);
  s.nops = 5;
  for (int i = 0; i < 5; i++)
    s.ops[i] = (mixcomm_op_t)i;
  fake_timer_t f = {&s, 0, 0, 1, 0, -1};
  mixcomm__tune_table_t t;
  memset(t, SENTINEL_BYTE, sizeof t);
  ASSERT_OK(mixcomm__tune_measure_and_agree(&bs, s.ops, s.nops, s.modes, s.nmodes, s.nb,
                                            fake_timer_fn, &f, t));
  ASSERT_EQ(ctx.allgathers, 5); /* one per op */
  ASSERT(ctx.bytes >= sizeof(double) * (size_t)(s.nb * s.nmodes));
  ASSERT(f.order_ok);
  for (int op = 0; op < 5; op++)
    for (int b = 2; b < s.nb; b++)
      ASSERT_EQ(t[op][b], s.modes[0]); /* rank 0's locally fastest */

  /* Bad arguments are refused before anything is measured or exchanged. */
  ctx.allgathers = 0;
  mixcomm_mode_t with_autotune[] = {MIXCOMM_MODE_NCCL_ONE, MIXCOMM_MODE_AUTOTUNE};
  mixcomm_mode_t twice[] = {MIXCOMM_MODE_NCCL_ONE, MIXCOMM_MODE_NCCL_ONE};
  mixcomm_op_t bad_op[] = {(mixcomm_op_t)7};
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, with_autotune, 2, 3, fake_timer_fn,
                                             &f, t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "mode");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, twice, 2, 3, fake_timer_fn, &f, t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "twice");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, bad_op, 1, s.modes, 2, 3, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "op");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, s.modes, 2, 16, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "buckets");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, s.modes, 0, 3, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "mode");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(NULL, s.ops, 1, s.modes, 2, 3, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "bootstrap");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, s.modes, 2, 3, NULL, &f, t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "timer");
  ASSERT_EQ(ctx.allgathers, 0);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Cost model                                                                                */
/* ---------------------------------------------------------------------------------------- */

static mixcomm_caps_t all_caps(void) {
  mixcomm_caps_t c;
  memset(&c, 0, sizeof c);
  c.nccl = 1;
  c.nvshmem = 1;
  c.autotune = 1;
  return c;
}

static int is_mc(mixcomm_mode_t m) {
  return m == MIXCOMM_MODE_FUSED_OPT_WAITS_MC || m == MIXCOMM_MODE_FUSED_OPT_BYTES1_MC ||
         m == MIXCOMM_MODE_FUSED_OPT_BYTES2_MC;
}

TEST_IMPL(tune_cost_model) {
  unsetenv("MIXCOMM_COST_INTRA_LAT_US");
  unsetenv("MIXCOMM_COST_INTRA_GBPS");
  unsetenv("MIXCOMM_COST_INTER_LAT_US");
  unsetenv("MIXCOMM_COST_INTER_GBPS");
  unsetenv("MIXCOMM_COST_NCCL_LAT_US");
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  ASSERT(p.intra_latency_us == 2.0 && p.intra_gbps == 300.0 && p.inter_latency_us == 6.0 &&
         p.inter_gbps == 40.0 && p.nccl_latency_us == 20.0);

  mixcomm_caps_t caps = all_caps();
  mixcomm_topology_t tp8 = make_topo(8, 8, 0, 0, 0, 0);

  /* The documented formulas for TP8 all-reduce on one node (us = bytes / (GB/s * 1e3)). */
  double n = 1 << 20;
  double waits = 2.0 + 7 * n / 300e3, bytes1 = 4.0 + 2 * 7.0 / 8 * n / 300e3;
  double nccl = 20.0 + 2 * 7.0 / 8 * n / 300e3;
  ASSERT(fabs(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE,
                                       MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 1 << 20) - waits) < 1e-9);
  ASSERT(fabs(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE,
                                       MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 1 << 20) - bytes1) <
         1e-9);
  ASSERT(fabs(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_NCCL_ONE,
                                       1 << 20) - nccl) < 1e-9);
  ASSERT(isinf(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_AUTOTUNE,
                                        1 << 20)));

  /* Small messages: one-shot; large: two-shot. */
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 8192),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 0),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 64ull << 20),
            MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 1 << 20),
            MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);

  /* Mixed: TP4 x DP2 on one node behaves alike for AR+AG. */
  mixcomm_topology_t tp4dp2 = make_topo(8, 8, 4, 2, 0, 0);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp4dp2, &caps, MIXCOMM_OP_ALLREDUCE_ALLGATHER, 8192),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp4dp2, &caps, MIXCOMM_OP_ALLREDUCE_ALLGATHER,
                                       64ull << 20),
            MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);

  /* Across many topologies, ops and sizes: the choice is a valid, non-MC, non-AUTOTUNE mode,
   * and every valid mode's prediction grows with the message. */
  const int shapes[][6] = {
      {8, 8, 0, 0, 0, 0},  {8, 8, 4, 2, 0, 0},  {8, 8, 1, 8, 0, 0}, {8, 8, 2, 4, 0, 0},
      {4, 4, 0, 0, 0, 0},  {2, 2, 0, 0, 0, 0},  {1, 1, 0, 0, 0, 0}, {16, 8, 0, 0, 0, 0},
      {16, 8, 4, 2, 2, 1}, {16, 8, 8, 1, 1, 2}, {32, 8, 2, 4, 2, 2}, {32, 8, 1, 8, 1, 4},
      {24, 8, 0, 0, 0, 0}, {6, 6, 3, 2, 0, 0},  {64, 32, 0, 0, 0, 0}};
  mixcomm_caps_t variants[3] = {caps, caps, caps};
  variants[1].nccl = 0;
  variants[2].ranks_share_gpu = 1;
  variants[2].nvshmem = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const int* sh = shapes[si];
    mixcomm_topology_t t = make_topo(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]);
    for (int vi = 0; vi < 3; vi++) {
      for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
        for (int k = 0; k <= 16; k++) {
          uint64_t bytes = k == 16 ? 0 : 8192ull << k;
          mixcomm_mode_t m = mixcomm__cost_model_choice(&t, &variants[vi], (mixcomm_op_t)op,
                                                        bytes);
          ASSERT(m >= 0 && m < MIXCOMM_MODE_AUTOTUNE && !is_mc(m));
          if (mixcomm_topology_op_valid(&t, (mixcomm_op_t)op)) {
            int any_valid = 0;
            for (int mm = 0; mm < MIXCOMM_MODE_AUTOTUNE; mm++)
              any_valid |= !is_mc((mixcomm_mode_t)mm) &&
                           mixcomm_topology_mode_valid(&t, &variants[vi], (mixcomm_mode_t)mm,
                                                       NULL);
            if (any_valid && !mixcomm_topology_mode_valid(&t, &variants[vi], m, NULL))
              FAIL("shape %zu caps %d op %d bytes %llu: chose invalid %s", si, vi, op,
                   (unsigned long long)bytes, mixcomm_mode_name(m));
          }
        }
        for (int mm = 0; mm < MIXCOMM_MODE_AUTOTUNE; mm++) {
          if (!mixcomm_topology_mode_valid(&t, &caps, (mixcomm_mode_t)mm, NULL) ||
              !mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
            continue;
          double prev = -1;
          for (int k = 0; k < 16; k++) {
            double us = mixcomm__cost_predict_us(&p, &t, (mixcomm_op_t)op, (mixcomm_mode_t)mm,
                                                 8192ull << k);
            ASSERT(isfinite(us) && us > 0);
            if (t.world_size > 1 && !(us > prev))
              FAIL("shape %zu op %d mode %s: %g us at %llu bytes, not above %g", si, op,
                   mixcomm_mode_name((mixcomm_mode_t)mm), us, 8192ull << k, prev);
            prev = us;
          }
        }
      }
    }
  }

  /* An op the topology cannot run: WAITS_UC if that mode is valid, else NCCL_ONE. */
  mixcomm_topology_t dp8 = make_topo(8, 8, 1, 8, 0, 0);
  ASSERT_EQ(mixcomm__cost_model_choice(&dp8, &caps, MIXCOMM_OP_ALLREDUCE, 8192),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  mixcomm_topology_t big = make_topo(32, 32, 1, 32, 0, 0); /* > MIXCOMM_MAX_LOCAL_SIZE */
  ASSERT_EQ(mixcomm__cost_model_choice(&big, &caps, MIXCOMM_OP_ALLREDUCE, 8192),
            MIXCOMM_MODE_NCCL_ONE);
  /* Only NCCL can run the big node. */
  ASSERT_EQ(mixcomm__cost_model_choice(&big, &caps, MIXCOMM_OP_ALLGATHER, 8192),
            MIXCOMM_MODE_NCCL_ONE);
  return 0;
}

/* Environment overrides are read once per process: each scenario runs in its own child. */
typedef struct env_case {
  const char* vars[5][2];
  mixcomm_op_t op;
  uint64_t bytes;
  mixcomm_mode_t expect;
  mixcomm__cost_params_t expect_params;
} env_case_t;

static int env_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  const env_case_t* c = arg;
  for (int i = 0; i < 5 && c->vars[i][0] != NULL; i++)
    setenv(c->vars[i][0], c->vars[i][1], 1);
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  if (p.intra_latency_us != c->expect_params.intra_latency_us ||
      p.intra_gbps != c->expect_params.intra_gbps ||
      p.inter_latency_us != c->expect_params.inter_latency_us ||
      p.inter_gbps != c->expect_params.inter_gbps ||
      p.nccl_latency_us != c->expect_params.nccl_latency_us ||
      p.kernel_launch_us != c->expect_params.kernel_launch_us)
    FAIL("params %g %g %g %g %g %g", p.intra_latency_us, p.intra_gbps, p.inter_latency_us,
         p.inter_gbps, p.nccl_latency_us, p.kernel_launch_us);
  mixcomm_caps_t caps = all_caps();
  mixcomm_topology_t tp8 = make_topo(8, 8, 0, 0, 0, 0);
  mixcomm_mode_t m = mixcomm__cost_model_choice(&tp8, &caps, c->op, c->bytes);
  if (m != c->expect)
    FAIL("chose %s, expected %s", mixcomm_mode_name(m), mixcomm_mode_name(c->expect));
  return 0;
}

TEST_IMPL(tune_cost_model_env) {
  const mixcomm__cost_params_t d = {2.0, 300.0, 6.0, 40.0, 20.0, 3.0};
  env_case_t cases[] = {
      /* Defaults: one-shot at 8 KiB, two-shot at 1 MiB. */
      {{{NULL, NULL}}, MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, d},
      {{{NULL, NULL}}, MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, d},
      /* No round latency: two-shot's smaller volume wins even at 8 KiB. */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "0"}},
       MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
       {0.0, 300.0, 6.0, 40.0, 20.0, 3.0}},
      /* ... and at 0 bytes everything fused costs 0: the tie goes to the lower enum. */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "0"}},
       MIXCOMM_OP_ALLREDUCE, 0, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, {0.0, 300.0, 6.0, 40.0, 20.0, 3.0}},
      /* Huge round latency: one-shot even at 1 MiB... */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "1e4"}, {"MIXCOMM_COST_NCCL_LAT_US", "1e6"}},
       MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
       {1e4, 300.0, 6.0, 40.0, 1e6, 3.0}},
      /* ... or free NCCL: NCCL_ONE. */
      {{{"MIXCOMM_COST_NCCL_LAT_US", "0"}},
       MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_NCCL_ONE, {2.0, 300.0, 6.0, 40.0, 0.0, 3.0}},
      /* Slow NVLink: the one-shot region grows (30 GB/s moves the crossover to ~11 KiB). */
      {{{"MIXCOMM_COST_INTRA_GBPS", "30"}, {"MIXCOMM_COST_INTER_GBPS", "12.5"},
        {"MIXCOMM_COST_INTER_LAT_US", "3"}},
       MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
       {2.0, 30.0, 3.0, 12.5, 20.0, 3.0}},
      /* Invalid values are ignored (defaults kept, same choice as with no variables). */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "abc"}, {"MIXCOMM_COST_INTRA_GBPS", "0"},
        {"MIXCOMM_COST_INTER_LAT_US", "-1"}, {"MIXCOMM_COST_INTER_GBPS", "inf"},
        {"MIXCOMM_COST_NCCL_LAT_US", "5x"}},
       MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, d},
      {{{"MIXCOMM_COST_INTRA_LAT_US", "nan"}, {"MIXCOMM_COST_INTRA_GBPS", "-300"},
        {"MIXCOMM_COST_INTER_LAT_US", ""}, {"MIXCOMM_COST_INTER_GBPS", "1e999"},
        {"MIXCOMM_COST_NCCL_LAT_US", " "}},
       MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, d},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int st = 0;
    if (run_ranks(1, env_child, &cases[i], 10000, &st) != 0)
      FAIL("environment case %zu failed (exit %d)", i, st);
  }
  return 0;
}
