/* SPDX-License-Identifier: Apache-2.0
 * Bytes from outside that are not network messages: environment variables (numbers, paths,
 * log settings), cache files that are not regular files or carry control characters, the
 * node-local fd exchange's messages, and the tools' numbers. Regression tests of what fuzzing
 * (tests/fuzz) and its review found; docs/reliability.md lists them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/fd_exchange_msg.h"
#include "common/spawn.h"
#include "core/env.h"
#include "core/log.h"
#include "harness/ranks.h"
#include "harness/task.h"
#include "tune/tune.h"

#ifndef MIXCOMM_PERF_PATH
#error "MIXCOMM_PERF_PATH must name the built mixcomm-perf binary"
#endif

static long long ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int has_control(const char* s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 && *s != '\n')
      return 1;
  return 0;
}

/* Runs fn as the only rank of a child process: the settings it reads are read once per
 * process, and a hang ends at timeout_ms. */
static int in_child(rank_fn fn, int timeout_ms) {
  ASSERT_EQ(run_ranks(1, fn, NULL, timeout_ms, NULL), 0);
  return 0;
}

static char* read_text(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL)
    return strdup("");
  char* buf = malloc(1 << 16);
  ASSERT(buf != NULL);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Numbers from the environment                                                               */
/* ------------------------------------------------------------------------------------------ */

TEST_IMPL(core_env_numbers) {
  struct {
    const char* s;
    int ok;
    long long v;
  } cases[] = {
      {"0", 1, 0},           {"42", 1, 42},      {"+42", 1, 42},     {"-7", 1, -7},
      {"", 0, 0},            {" 42", 0, 0},      {"\t42", 0, 0},     {"42 ", 0, 0},
      {"42abc", 0, 0},       {"4 2", 0, 0},      {"+", 0, 0},        {"-", 0, 0},
      {"0x10", 0, 0},        {"1e3", 0, 0},      {"--1", 0, 0},      {"+-1", 0, 0},
      {"9223372036854775807", 1, LLONG_MAX},     {"9223372036854775808", 0, 0},
      {"-9223372036854775808", 1, LLONG_MIN},    {"99999999999999999999999", 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    long long v = 12345;
    const int ok = mixcomm__parse_ll(cases[i].s, LLONG_MIN, LLONG_MAX, &v);
    if (ok != cases[i].ok || v != (ok ? cases[i].v : 12345))
      FAIL("parse_ll('%s') = %d (%lld), expected %d (%lld)", cases[i].s, ok, v, cases[i].ok,
           cases[i].v);
  }
  long long v = 0;
  ASSERT(!mixcomm__parse_ll("1025", 1, 1024, &v));
  ASSERT(!mixcomm__parse_ll("0", 1, 1024, &v));
  ASSERT(mixcomm__parse_ll("1024", 1, 1024, &v) && v == 1024);
  ASSERT(!mixcomm__parse_ll(NULL, 0, 1, &v));

  /* A setting: unset keeps the default; invalid is an error naming it, value cleaned. */
  int x = 77, given = -1;
  unsetenv("MIXCOMM_TEST_NUMBER");
  ASSERT_OK(mixcomm__env_int("MIXCOMM_TEST_NUMBER", 1, 100, &x, &given));
  ASSERT(x == 77 && given == 0);
  setenv("MIXCOMM_TEST_NUMBER", "", 1);
  ASSERT_OK(mixcomm__env_int("MIXCOMM_TEST_NUMBER", 1, 100, &x, &given));
  ASSERT(x == 77 && given == 0);
  setenv("MIXCOMM_TEST_NUMBER", "55", 1);
  ASSERT_OK(mixcomm__env_int("MIXCOMM_TEST_NUMBER", 1, 100, &x, &given));
  ASSERT(x == 55 && given == 1);
  setenv("MIXCOMM_TEST_NUMBER", "101", 1);
  ASSERT_ERR(mixcomm__env_int("MIXCOMM_TEST_NUMBER", 1, 100, &x, NULL),
             MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_TEST_NUMBER='101' is not a whole number in [1, 100]");
  ASSERT_EQ(x, 55);
  setenv("MIXCOMM_TEST_NUMBER", "5\x1b[31m", 1);
  ASSERT_ERR(mixcomm__env_int("MIXCOMM_TEST_NUMBER", 1, 100, &x, NULL),
             MIXCOMM_ERR_INVALID_ARGUMENT, "'5?[31m'");
  char big[300];
  memset(big, '7', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  setenv("MIXCOMM_TEST_NUMBER", big, 1);
  ASSERT_ERR(mixcomm__env_int("MIXCOMM_TEST_NUMBER", 1, 100, &x, NULL),
             MIXCOMM_ERR_INVALID_ARGUMENT, "777...'");
  ASSERT(strlen(mixcomm_last_error()) < 200); /* the value is shown, not all of it */
  unsetenv("MIXCOMM_TEST_NUMBER");

  char out[8];
  mixcomm__printable("abc", out, sizeof out);
  ASSERT_STR_EQ(out, "abc");
  mixcomm__printable("abcdefgh", out, sizeof out);
  ASSERT_STR_EQ(out, "abcd...");
  mixcomm__printable("a\nb\x7f\xff", out, sizeof out);
  ASSERT_STR_EQ(out, "a?b??");
  return 0;
}

/* MIXCOMM_TIMEOUT_MS was read with atoi: "5000abc" meant 5000 and "abc" silently the default. */
static int kernel_timeout_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  (void)arg;
  int t = -1;
  unsetenv("MIXCOMM_TIMEOUT_MS");
  ASSERT_OK(mixcomm__env_timeout_ms(0, 30000, &t));
  ASSERT_EQ(t, 30000);
  setenv("MIXCOMM_TIMEOUT_MS", "2000", 1);
  ASSERT_OK(mixcomm__env_timeout_ms(0, 30000, &t));
  ASSERT_EQ(t, 2000);
  ASSERT_OK(mixcomm__env_timeout_ms(700, 30000, &t)); /* the config wins */
  ASSERT_EQ(t, 700);
  const char* bad[] = {"5000abc", "abc", "-1", "0", "99999999999", " 5", "1e4", "1073741825"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("MIXCOMM_TIMEOUT_MS", bad[i], 1);
    t = -1;
    ASSERT_ERR(mixcomm__env_timeout_ms(0, 30000, &t), MIXCOMM_ERR_INVALID_ARGUMENT,
               "MIXCOMM_TIMEOUT_MS");
    ASSERT_EQ(t, -1);
    /* A handler refuses to be created with it, before it touches a GPU or a peer. */
    mixcomm_config_t cfg;
    mixcomm_config_init(&cfg);
    cfg.world_size = 1;
    cfg.local_size = 1;
    cfg.inter_size = 1;
    mixcomm_handler_t* h = (mixcomm_handler_t*)1;
    ASSERT_ERR(mixcomm_handler_create(&cfg, NULL, &h), MIXCOMM_ERR_INVALID_ARGUMENT,
               "MIXCOMM_TIMEOUT_MS");
    ASSERT(h == NULL);
  }
  return 0;
}

TEST_IMPL(core_env_kernel_timeout) {
  return in_child(kernel_timeout_child, 10000);
}

/* The bootstrap's numbers are whole numbers; paths and addresses are shown cleaned and named. */
TEST_IMPL(bootstrap_tcp_env_strict) {
  const char* vars[] = {"MIXCOMM_ADDR", "MASTER_ADDR", "MIXCOMM_PORT", "MASTER_PORT",
                        "MIXCOMM_JOB_TOKEN", "TORCHELASTIC_RUN_ID",
                        "MIXCOMM_BOOTSTRAP_TIMEOUT_MS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  mixcomm_bootstrap_t* bs = (mixcomm_bootstrap_t*)1;
  struct {
    const char* var;
    const char* value;
    const char* needle;
  } cases[] = {
      {"MIXCOMM_PORT", " 29500", "MIXCOMM_PORT=' 29500' is not a TCP port"},
      {"MIXCOMM_PORT", "29500 ", "is not a TCP port"},
      {"MIXCOMM_PORT", "65536", "is not a TCP port"},
      {"MASTER_PORT", "+0", "MASTER_PORT='+0'"},
      {"MASTER_PORT", "29500\n", "MASTER_PORT='29500?'"},
      {"MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "1e3", "MIXCOMM_BOOTSTRAP_TIMEOUT_MS='1e3'"},
      {"MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "\t100", "'?100'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (strstr(cases[i].var, "PORT") == NULL) /* a valid port, so that the timeout is read */
      setenv("MIXCOMM_PORT", "29500", 1);
    setenv(cases[i].var, cases[i].value, 1);
    ASSERT_ERR(mixcomm_bootstrap_tcp_create(NULL, 1, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
               cases[i].needle);
    ASSERT(bs == NULL);
    unsetenv(cases[i].var);
    unsetenv("MIXCOMM_PORT");
  }
  char addr[400];
  memset(addr, 'a', sizeof addr - 1);
  addr[sizeof addr - 1] = '\0';
  addr[3] = '\x1b';
  setenv("MASTER_ADDR", addr, 1);
  setenv("MIXCOMM_PORT", "29500", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(NULL, 1, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "the address from MASTER_ADDR ('aaa?aaa");
  ASSERT(!has_control(mixcomm_last_error()));
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
  return 0;
}

TEST_IMPL(core_log_file_name) {
  char out[32];
  ASSERT_EQ(mixcomm__log_file_name("/tmp/log-%p.txt", 123, out, sizeof out), 0);
  ASSERT_STR_EQ(out, "/tmp/log-123.txt");
  ASSERT_EQ(mixcomm__log_file_name("%p%p", 7, out, sizeof out), 0);
  ASSERT_STR_EQ(out, "77");
  ASSERT_EQ(mixcomm__log_file_name("a%", 7, out, sizeof out), 0);
  ASSERT_STR_EQ(out, "a%");
  ASSERT_EQ(mixcomm__log_file_name("%%p", 7, out, sizeof out), 0);
  ASSERT_STR_EQ(out, "%7");
  /* Exactly full fits; one more is refused, never cut short into another file's name. */
  ASSERT_EQ(mixcomm__log_file_name("0123456789012345678901234567890", 1, out, sizeof out), 0);
  ASSERT_EQ(mixcomm__log_file_name("01234567890123456789012345678901", 1, out, sizeof out), -1);
  ASSERT_STR_EQ(out, "");
  ASSERT_EQ(mixcomm__log_file_name("0123456789012345678901234567%p", 123456, out, sizeof out),
            -1);
  ASSERT_EQ(mixcomm__log_file_name("", 1, out, sizeof out), -1);
  int known = 0;
  ASSERT_EQ(mixcomm__log_level_from_text("info", &known), MIXCOMM_LOG_INFO);
  ASSERT_EQ(known, 1);
  ASSERT_EQ(mixcomm__log_level_from_text("verbose", &known), MIXCOMM_LOG_WARN);
  ASSERT_EQ(known, 0);
  ASSERT_EQ(mixcomm__log_level_from_text(NULL, &known), MIXCOMM_LOG_OFF);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Cache files                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* A temporary cache directory whose log collects the warnings, and a key to load with. */
typedef struct {
  char dir[128], log[192];
  mixcomm__tune_key_t key;
} cache_dir_t;

static void key_of(mixcomm__tune_key_t* key) {
  snprintf(key->text, sizeof key->text, "v=1;world=8;test=inputs;");
}

static void cache_dir_init(cache_dir_t* d) {
  snprintf(d->dir, sizeof d->dir, "/tmp/mixcomm-inputs-XXXXXX");
  ASSERT(mkdtemp(d->dir) != NULL);
  snprintf(d->log, sizeof d->log, "%s/log.txt", d->dir);
  setenv("MIXCOMM_LOG", "WARN", 1); /* read once, at the first log call of this process */
  setenv("MIXCOMM_LOG_FILE", d->log, 1);
  key_of(&d->key);
}

/* Removes what cache_dir_init made (the files a test adds, it removes itself). */
static void cache_dir_remove(const cache_dir_t* d) {
  unlink(d->log);
  rmdir(d->dir);
}

/* A FIFO at the cache path made the load block in open() for ever (until another process
 * opened the FIFO for writing); anything but a regular file is now refused at once. */
static int special_files_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  (void)arg;
  cache_dir_t d;
  cache_dir_init(&d);
  mixcomm__tune_table_t t;
  memset(t, 0x5a, sizeof t);
  char fifo[256], sub[256], link[256];
  snprintf(fifo, sizeof fifo, "%s/autotune-fifo.txt", d.dir);
  snprintf(sub, sizeof sub, "%s/autotune-dir.txt", d.dir);
  snprintf(link, sizeof link, "%s/autotune-link.txt", d.dir);
  ASSERT(mkfifo(fifo, 0600) == 0);
  ASSERT(mkdir(sub, 0700) == 0);
  ASSERT(symlink(fifo, link) == 0);
  const char* paths[] = {fifo, sub, link, "/dev/zero"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    long long t0 = ms_now();
    ASSERT_EQ(
        mixcomm__tune_cache_load(paths[i], &d.key, 1u << MIXCOMM_OP_ALLREDUCE, 0xffu, 4, t), 0);
    if (ms_now() - t0 > 2000)
      FAIL("loading %s took %lld ms", paths[i], ms_now() - t0);
  }
  char* log = read_text(d.log);
  ASSERT_CONTAINS(log, "autotune-fifo.txt ignored: it is not a regular file");
  ASSERT_CONTAINS(log, "autotune-dir.txt ignored: it is not a regular file");
  ASSERT_CONTAINS(log, "autotune-link.txt ignored: it is not a regular file");
  ASSERT_CONTAINS(log, "/dev/zero ignored: it is not a regular file");
  for (size_t i = 0; i < sizeof t; i++)
    ASSERT_EQ(((unsigned char*)t)[i], 0x5a);
  free(log);
  unlink(link);
  unlink(fifo);
  rmdir(sub);
  cache_dir_remove(&d);
  return 0;
}

TEST_IMPL(tune_cache_special_files) {
  return in_child(special_files_child, 15000);
}

/* A refused file's reason quoted its text as it was: control characters and terminal escape
 * sequences from a damaged file went into the log. */
static int reasons_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  (void)arg;
  cache_dir_t d;
  cache_dir_init(&d);
  const char* lines[] = {
      "key v=1;world=8;\x1b]0;owned\a\r",          /* another key */
      "ALL\x1b[2JREDUCE 0 NCCL_ONE",               /* unknown op */
      "ALLREDUCE 0 NCCL\x1b[8m_ONE",               /* unknown mode */
      "ALLREDUCE \x1b[1m0 NCCL_ONE",               /* bad bucket */
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
    char body[2200], file[2300], path[256];
    if (i == 0)
      snprintf(body, sizeof body, "mixcomm-autotune 1\n%s\nbuckets 1\nALLREDUCE 0 NCCL_ONE\n",
               lines[i]);
    else
      snprintf(body, sizeof body, "mixcomm-autotune 1\nkey %s\nbuckets 1\n%s\n", d.key.text,
               lines[i]);
    uint64_t h = 14695981039346656037ull;
    for (const char* p = body; *p; p++) {
      h ^= (unsigned char)*p;
      h *= 1099511628211ull;
    }
    snprintf(file, sizeof file, "%schecksum %016llx\n", body, (unsigned long long)h);
    snprintf(path, sizeof path, "%s/autotune-%zu.txt", d.dir, i);
    FILE* f = fopen(path, "wb");
    ASSERT(f != NULL);
    fputs(file, f);
    fclose(f);
    mixcomm__tune_table_t t;
    ASSERT_EQ(mixcomm__tune_cache_load(path, &d.key, 1u << MIXCOMM_OP_ALLREDUCE, 0xffu, 1, t),
              0);
    unlink(path);
  }
  char* log = read_text(d.log);
  ASSERT_CONTAINS(log, "another configuration (key 'v=1;world=8;?]0;owned?\?'");
  ASSERT_CONTAINS(log, "unknown op 'ALL?[2JREDUCE'");
  ASSERT_CONTAINS(log, "unknown mode 'NCCL?[8m_ONE'");
  ASSERT_CONTAINS(log, "bucket '?[1m0'");
  ASSERT(!has_control(log));
  free(log);
  cache_dir_remove(&d);
  return 0;
}

TEST_IMPL(tune_cache_reasons_printable) {
  return in_child(reasons_child, 15000);
}

TEST_IMPL(tune_cache_path_printable) {
  mixcomm__tune_key_t key;
  key_of(&key);
  char dir[700], path[512];
  memset(dir, 'd', sizeof dir - 1);
  dir[sizeof dir - 1] = '\0';
  dir[0] = '/';
  dir[5] = '\x1b';
  setenv("MIXCOMM_CACHE_DIR", dir, 1);
  ASSERT_ERR(mixcomm__tune_cache_path(NULL, &key, path, sizeof path),
             MIXCOMM_ERR_INVALID_ARGUMENT, "MIXCOMM_CACHE_DIR");
  ASSERT(!has_control(mixcomm_last_error()));
  ASSERT_CONTAINS(mixcomm_last_error(), "'/dddd?ddd");
  ASSERT_STR_EQ(path, "");
  unsetenv("MIXCOMM_CACHE_DIR");
  return 0;
}

/* The parser reads nothing past the text it is given: each text sits at the very end of a page
 * followed by an inaccessible one. (The checksum line's prefix was compared with strncmp, which
 * relied on a NUL after the text: the load adds one, the parser's own contract does not.) */
TEST_IMPL(tune_cache_parse_bounds) {
  const long page = sysconf(_SC_PAGESIZE);
  unsigned char* mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT(mem != MAP_FAILED);
  ASSERT(mprotect(mem + page, (size_t)page, PROT_NONE) == 0);
  mixcomm__tune_key_t key;
  key_of(&key);
  const char* texts[] = {"x\n", "mixcomm-autotune 1\nc\n", "\n", "checksum\n",
                         "checksum 0123\n", "mixcomm-autotune 1\nchecksum 0123456789abcdef",
                         "checksum 0123456789abcdefg\n", ""};
  const char* reasons[] = {"not the checksum", "not the checksum", "not the checksum",
                           "not the checksum", "malformed", "truncated", "malformed", "empty"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    const size_t len = strlen(texts[i]);
    char* at = (char*)mem + page - len;
    memcpy(at, texts[i], len);
    mixcomm__tune_table_t t;
    char why[256] = "";
    ASSERT_EQ(mixcomm__tune_cache_parse(at, len, &key, 1u, 0xffu, 1, t, why, sizeof why), 0);
    if (strstr(why, reasons[i]) == NULL)
      FAIL("text %zu: reason '%s', expected '%s'", i, why, reasons[i]);
  }
  munmap(mem, (size_t)page * 2);
  return 0;
}

/* A tiny positive bandwidth (or an enormous latency) was accepted: every prediction became
 * infinite, and the model then chose NCCL_ONE even where NCCL modes are not valid. */
static int cost_bounds_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  (void)arg;
  const char* vars[] = {"MIXCOMM_COST_INTRA_GBPS", "MIXCOMM_COST_INTER_GBPS",
                        "MIXCOMM_COST_INTRA_LAT_US", "MIXCOMM_COST_NCCL_LAT_US",
                        "MIXCOMM_COST_KERNEL_US"};
  const char* values[] = {"1e-300", "1e-320", "1e300", "1e300", "1e308"};
  for (int i = 0; i < 5; i++)
    setenv(vars[i], values[i], 1);
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  ASSERT(p.intra_gbps == 300.0 && p.inter_gbps == 40.0);
  ASSERT(p.intra_latency_us == 2.0 && p.nccl_latency_us == 20.0 && p.kernel_launch_us == 3.0);
  mixcomm_topology_t t;
  memset(&t, 0, sizeof t);
  t.world_size = 8;
  t.local_size = 8;
  t.inter_size = 1;
  ASSERT_OK(mixcomm_topology_resolve(&t, &t));
  mixcomm_caps_t caps;
  mixcomm_caps_default(&caps);
  caps.ranks_share_gpu = 1; /* NCCL modes are not valid */
  const mixcomm_mode_t m = mixcomm__cost_model_choice(&t, &caps, MIXCOMM_OP_ALLREDUCE, 1 << 20);
  ASSERT(mixcomm_topology_mode_valid(&t, &caps, m, NULL));
  for (int mode = 0; mode < MIXCOMM_MODE_AUTOTUNE; mode++)
    ASSERT(isfinite(mixcomm__cost_predict_epilogue_us(&p, &t, MIXCOMM_OP_ALLREDUCE,
                                                      (mixcomm_mode_t)mode, 1ull << 40)));
  return 0;
}

TEST_IMPL(tune_cost_model_env_bounds) {
  return in_child(cost_bounds_child, 10000);
}

/* ------------------------------------------------------------------------------------------ */
/* The fd exchange's messages                                                                 */
/* ------------------------------------------------------------------------------------------ */

static int count_open_fds(void) {
  DIR* dir = opendir("/proc/self/fd");
  ASSERT(dir != NULL);
  int n = 0;
  struct dirent* e;
  while ((e = readdir(dir)) != NULL)
    n += e->d_name[0] != '.';
  closedir(dir);
  return n - 1;
}

static void send_with_fds(int fd, const void* p, size_t len, int nfds) {
  int devnull = open("/dev/null", O_RDONLY);
  ASSERT(devnull >= 0);
  ASSERT(mixcomm__fdx_send_with_fds(fd, p, len, devnull, nfds, 0) == (ssize_t)len);
  close(devnull);
}

TEST_IMPL(bootstrap_fdx_messages) {
  mixcomm__fdx_record_t recs[6];
  memset(recs, 0, sizeof recs);
  for (int i = 0; i < 4; i++) { /* node of world ranks 2..5 */
    recs[2 + i].magic = MIXCOMM__FDX_MAGIC;
    recs[2 + i].pid = 500 + i;
    recs[2 + i].uid = 1000;
    recs[2 + i].local_rank = i;
    recs[2 + i].local_size = 4;
  }
  snprintf(recs[2].dir, sizeof recs[2].dir, "/tmp/mixcomm-abcdef");
  mixcomm__fdx_node_t node = {1, 4, 2, 3, recs};
  char dir[MIXCOMM__FDX_DIR_CAP];
  ASSERT_OK(mixcomm__fdx_check_node(&node, 1000, dir, sizeof dir));
  ASSERT_STR_EQ(dir, "/tmp/mixcomm-abcdef");
  ASSERT_ERR(mixcomm__fdx_check_node(&node, 1001, dir, sizeof dir), MIXCOMM_ERR_BOOTSTRAP,
             "uid 1000");
  memset(recs[2].dir, 'x', sizeof recs[2].dir); /* not terminated */
  ASSERT_ERR(mixcomm__fdx_check_node(&node, 1000, dir, sizeof dir), MIXCOMM_ERR_BOOTSTRAP,
             "announced no socket directory");
  snprintf(recs[2].dir, sizeof recs[2].dir, "/tmp/mixcomm-abcdef");
  recs[4].local_size = 5;
  ASSERT_ERR(mixcomm__fdx_check_node(&node, 1000, dir, sizeof dir), MIXCOMM_ERR_MISMATCH,
             "world rank 4");
  recs[4].local_size = 4;

  unsigned char hdr[MIXCOMM__FDX_HELLO_SIZE];
  int peer_fds[4] = {-1, -1, -1, -1}, lr = -1;
  mixcomm__fdx_encode_hello(hdr, 2, 4, 502);
  ASSERT_OK(mixcomm__fdx_check_hello(&node, hdr, 502, 9, peer_fds, &lr));
  ASSERT_EQ(lr, 2);
  ASSERT_ERR(mixcomm__fdx_check_hello(&node, hdr, 502, -1, peer_fds, &lr),
             MIXCOMM_ERR_BOOTSTRAP, "no file descriptor");
  /* The pid in the message was checked but the error named the credentials' pid. */
  mixcomm__fdx_encode_hello(hdr, 2, 4, 999);
  ASSERT_ERR(mixcomm__fdx_check_hello(&node, hdr, 0, 9, peer_fds, &lr), MIXCOMM_ERR_BOOTSTRAP,
             "says it is pid 999 and its credentials say pid 0");
  mixcomm__fdx_encode_hello(hdr, 2, 4, 502);
  ASSERT_ERR(mixcomm__fdx_check_hello(&node, hdr, 777, 9, peer_fds, &lr),
             MIXCOMM_ERR_BOOTSTRAP, "credentials say pid 777");
  const uint32_t claims[][2] = {{1, 3}, {4, 6}, {0xffffffffu, 1}, {2, 5}, {0x80000000u, 2}};
  for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
    mixcomm__fdx_encode_hello(hdr, (int)claims[i][0], (int)claims[i][1], 0);
    ASSERT_ERR(mixcomm__fdx_check_hello(&node, hdr, 0, 9, peer_fds, &lr), MIXCOMM_ERR_BOOTSTRAP,
               "bad header");
  }

  /* Reading: the first descriptor is kept, every other one closed; too many at once is an
   * error; nothing leaks either way. */
  const int before = count_open_fds();
  for (int scenario = 0; scenario < 3; scenario++) {
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    mixcomm__fdx_encode_hello(hdr, 2, 4, 502);
    if (scenario == 0) { /* split, descriptors on both parts */
      send_with_fds(sv[1], hdr, 5, 2);
      send_with_fds(sv[1], hdr + 5, sizeof hdr - 5, 3);
    } else if (scenario == 1) { /* more than a read takes */
      send_with_fds(sv[1], hdr, sizeof hdr, MIXCOMM__FDX_MAX_FDS + 2);
    } else { /* the peer dies half-way */
      send_with_fds(sv[1], hdr, 9, 1);
      close(sv[1]);
      sv[1] = -1;
    }
    size_t got = 0;
    int rfd = -1;
    mixcomm_status_t st = MIXCOMM_SUCCESS;
    int r = mixcomm__fdx_recv_hello(sv[0], hdr, &got, &rfd, "test", 502, &st);
    if (scenario == 0) {
      ASSERT_EQ(r, 1);
      ASSERT(rfd >= 0);
    } else if (scenario == 1) {
      ASSERT_EQ(r, -1);
      ASSERT_CONTAINS(mixcomm_last_error(), "more descriptors than expected");
    } else {
      ASSERT_EQ(r, -1);
      ASSERT_CONTAINS(mixcomm_last_error(), "after 9 of 16 header bytes");
    }
    if (rfd >= 0)
      close(rfd);
    close(sv[0]);
    if (sv[1] >= 0)
      close(sv[1]);
    ASSERT_EQ(count_open_fds(), before);
  }

  /* The leader's directory template fits the record and every socket path. */
  char tmpl[MIXCOMM__FDX_DIR_CAP];
  ASSERT_EQ(mixcomm__fdx_dir_template("/tmp", 8, tmpl, sizeof tmpl), 0);
  ASSERT_STR_EQ(tmpl, "/tmp/mixcomm-XXXXXX");
  char base[120];
  memset(base, 'b', sizeof base - 1);
  base[sizeof base - 1] = '\0';
  base[84] = '\0'; /* 84 + 15 = 99 bytes: the longest that fits the record */
  ASSERT_EQ(mixcomm__fdx_dir_template(base, 1024, tmpl, sizeof tmpl), 0);
  base[84] = 'b';
  base[85] = '\0';
  ASSERT_EQ(mixcomm__fdx_dir_template(base, 1, tmpl, sizeof tmpl), -1);
  ASSERT_STR_EQ(tmpl, "");
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The tools' numbers                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Run a tool (its built path) with extra environment (NAME=VALUE, or NULL); its stderr in err. */
static int run_tool(const char* path, char* const* argv, const char* env1, const char* env2,
                    char* err, size_t cap) {
  if (access(path, X_OK) != 0)
    FAIL("%s is not built (it is part of the default build)", path);
  int pipefd[2];
  ASSERT(pipe(pipefd) == 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    dup2(pipefd[1], 2);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    close(pipefd[0]);
    unsetenv("RANK");
    unsetenv("WORLD_SIZE");
    unsetenv("LOCAL_WORLD_SIZE");
    if (env1 != NULL)
      putenv((char*)env1);
    if (env2 != NULL)
      putenv((char*)env2);
    execv(path, argv);
    _exit(127);
  }
  close(pipefd[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(pipefd[0], err + n, cap - 1 - n)) > 0)
    n += (size_t)r;
  err[n] = '\0';
  close(pipefd[0]);
  int st = 0;
  ASSERT(waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST_IMPL(tools_perf_strict_numbers) {
  char err[4096];
  /* The shared parser took leading white space: "-n ' 4'" meant 4 ranks. */
  char* a1[] = {"mixcomm-perf", "--dry-run", "-n", " 4", NULL};
  ASSERT_EQ(run_tool(MIXCOMM_PERF_PATH, a1, NULL, NULL, err, sizeof err), 2);
  ASSERT_CONTAINS(err, "--ranks ' 4': expected an integer in [1, 1024]");
  char* a2[] = {"mixcomm-perf", "--dry-run", "-n", "4", NULL};
  ASSERT_EQ(run_tool(MIXCOMM_PERF_PATH, a2, NULL, NULL, err, sizeof err), 0);
  /* A launcher's WORLD_SIZE was read with atoi: "4x" meant 4. */
  char* a3[] = {"mixcomm-perf", "--dry-run", NULL};
  ASSERT_EQ(run_tool(MIXCOMM_PERF_PATH, a3, "RANK=0", "WORLD_SIZE=4x", err, sizeof err), 2);
  ASSERT_CONTAINS(err, "WORLD_SIZE='4x' in the environment is not an integer");
  ASSERT_EQ(run_tool(MIXCOMM_PERF_PATH, a3, "RANK=0", "WORLD_SIZE=99999999999", err, sizeof err),
            2);
  ASSERT_CONTAINS(err, "WORLD_SIZE='99999999999'");
  ASSERT_EQ(run_tool(MIXCOMM_PERF_PATH, a3, "RANK=0", "WORLD_SIZE=4", err, sizeof err), 0);
  return 0;
}

/* The rank spawner of mixcomm-perf and the GPU programs read a launcher's RANK, WORLD_SIZE,
 * LOCAL_RANK and LOCAL_WORLD_SIZE with atoi and no range: RANK=abc became a second rank 0. */
static int spawned_fn(const spawn_rank_t* r, void* arg) {
  int* seen = arg;
  seen[0] = r->rank;
  seen[1] = r->world_size;
  seen[2] = r->local_rank;
  seen[3] = r->local_size;
  return 0;
}

static int spawn_env_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  (void)arg;
  FILE* err = tmpfile();
  ASSERT(err != NULL);
  fflush(stderr);
  dup2(fileno(err), 2);
  struct {
    const char *rank, *world, *local_rank, *local_world;
    int ok;
  } cases[] = {
      {"1", "4", "1", "2", 1},        {"abc", "2", NULL, NULL, 0}, {"2", "2", NULL, NULL, 0},
      {"-1", "2", NULL, NULL, 0},     {"0", "2x", NULL, NULL, 0},  {"0", "0", NULL, NULL, 0},
      {"1", "4", "2", "2", 0},        {"1", "4", NULL, "8", 0},    {" 1", "4", NULL, NULL, 0},
      {"3", "4", NULL, NULL, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("RANK", cases[i].rank, 1);
    setenv("WORLD_SIZE", cases[i].world, 1);
    if (cases[i].local_rank != NULL)
      setenv("LOCAL_RANK", cases[i].local_rank, 1);
    else
      unsetenv("LOCAL_RANK");
    if (cases[i].local_world != NULL)
      setenv("LOCAL_WORLD_SIZE", cases[i].local_world, 1);
    else
      unsetenv("LOCAL_WORLD_SIZE");
    int seen[4] = {-1, -1, -1, -1};
    const int rc = spawn_ranks(4, 2, 10, spawned_fn, seen);
    if ((rc == 0) != cases[i].ok)
      FAIL("case %zu (RANK=%s WORLD_SIZE=%s): spawn_ranks returned %d", i, cases[i].rank,
           cases[i].world, rc);
    if (!cases[i].ok)
      ASSERT_EQ(seen[0], -1); /* the rank never ran */
    if (i == 0)
      ASSERT(seen[0] == 1 && seen[1] == 4 && seen[2] == 1 && seen[3] == 2);
    if (i == sizeof cases / sizeof cases[0] - 1) /* LOCAL_* from the default layout */
      ASSERT(seen[0] == 3 && seen[1] == 4 && seen[2] == 1 && seen[3] == 2);
  }
  fflush(stderr);
  fseek(err, 0, SEEK_SET);
  char text[4096];
  size_t got = fread(text, 1, sizeof text - 1, err);
  text[got] = '\0';
  ASSERT_CONTAINS(text, "spawn: RANK='abc' in the environment is not an integer in [0, 1]");
  ASSERT_CONTAINS(text, "spawn: RANK='2' in the environment is not an integer in [0, 1]");
  ASSERT_CONTAINS(text, "spawn: WORLD_SIZE='2x'");
  ASSERT_CONTAINS(text, "spawn: LOCAL_RANK='2' in the environment is not an integer in [0, 1]");
  ASSERT_CONTAINS(text, "spawn: LOCAL_WORLD_SIZE='8'");
  ASSERT_CONTAINS(text, "spawn: RANK=' 1'");
  return 0;
}

TEST_IMPL(tools_spawn_launcher_env) {
  return in_child(spawn_env_child, 10000);
}
