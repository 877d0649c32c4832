/* SPDX-License-Identifier: Apache-2.0
 * The on-disk autotune cache, so that a second start of the same job skips the measurements.
 *
 * A result is only reused for exactly the same situation: the file name is a hash of a key text
 * that lists everything the result depends on (topology, dtype, GPU, driver, library version,
 * launch limits, valid modes), and the key is stored in the file and compared in full, so a hash
 * collision or a copied file is still recognised as foreign. The file is plain text with a
 * checksum; anything unexpected makes the whole file ignored (with a warning in the log), since
 * a wrong table could make ranks pick modes their peers do not run. Files are replaced
 * atomically (temporary file, fsync, rename), so readers never see half a file.
 *
 * Format (every line ends with '\n'):
 *   mixcomm-autotune 1
 *   key <key text>
 *   buckets <N>
 *   <OP NAME> <bucket> <MODE NAME>       one line per valid op and bucket
 *   checksum <16 hex digits>             64-bit FNV-1a of every byte before this line */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "tune/tune.h"

#define CACHE_HEADER "mixcomm-autotune 1"
#define CACHE_MAX_LINE 2048         /* longer lines make the file invalid */
#define CACHE_MAX_FILE (256 * 1024) /* far more than any valid file (about 6 KiB) */

static uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const unsigned char* p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}
#define FNV64_OFFSET 14695981039346656037ull

/* ------------------------------------------------------------------------------------------ */
/* Key and path                                                                               */
/* ------------------------------------------------------------------------------------------ */

void mixcomm__tune_key(const mixcomm__tune_key_fields_t* f, mixcomm__tune_key_t* key) {
  if (key == NULL)
    return;
  key->text[0] = '\0';
  if (f == NULL)
    return;
  /* The GPU name is free text: keep printable characters except the key's separators. */
  char gpu[256];
  const char* src = f->gpu_name != NULL ? f->gpu_name : "unknown";
  size_t n = 0;
  for (; src[n] != '\0' && n + 1 < sizeof gpu; n++) {
    unsigned char ch = (unsigned char)src[n];
    gpu[n] = (ch < 0x20 || ch >= 0x7f || ch == ';' || ch == '=') ? '_' : (char)ch;
  }
  gpu[n] = '\0';
  mixcomm_topology_t zero;
  memset(&zero, 0, sizeof zero);
  const mixcomm_topology_t* t = f->topo != NULL ? f->topo : &zero;
  const char* dtype = mixcomm_dtype_name(f->dtype);
  snprintf(key->text, sizeof key->text,
           "v=1;world=%d;local=%d;inter=%d;ltp=%d;ldp=%d;itp=%d;idp=%d;dtype=%s;gpu=%s;"
           "driver=%d;lib=%d;grid=%d;maxblock=%d;minblock=%d;minsteps=%d;share=%d;modes=0x%x;",
           t->world_size, t->local_size, t->inter_size, t->local_tp_size, t->local_dp_size,
           t->inter_tp_size, t->inter_dp_size, dtype != NULL ? dtype : "invalid", gpu,
           f->driver_version, f->library_version, f->grid_size, f->max_block_size,
           f->min_block_size, f->min_num_steps, f->ranks_share_gpu,
           (unsigned)f->valid_modes_mask);
}

mixcomm_status_t mixcomm__tune_cache_path(const char* config_dir, const mixcomm__tune_key_t* key,
                                          char* path, size_t size) {
  if (key == NULL || path == NULL || size == 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune cache path: NULL argument");
  path[0] = '\0';
  const char* dir = NULL;
  const char* suffix = "";
  const char* from = NULL;
  if (config_dir != NULL) {
    dir = config_dir;
    from = "autotune_cache_dir";
  } else if (getenv("MIXCOMM_CACHE_DIR") != NULL) {
    dir = getenv("MIXCOMM_CACHE_DIR");
    from = "MIXCOMM_CACHE_DIR";
  } else {
    /* XDG base directory rules: an empty or relative XDG_CACHE_HOME is ignored. */
    const char* xdg = getenv("XDG_CACHE_HOME");
    const char* home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/') {
      dir = xdg;
      suffix = "/mixcomm";
      from = "XDG_CACHE_HOME";
    } else if (home != NULL && home[0] != '\0') {
      dir = home;
      suffix = "/.cache/mixcomm";
      from = "HOME";
    } else {
      return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                            "autotune cache disabled: no directory (autotune_cache_dir, "
                            "MIXCOMM_CACHE_DIR, XDG_CACHE_HOME and HOME are all unset or empty)");
    }
  }
  if (dir[0] == '\0')
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED, "autotune cache disabled (%s is empty)",
                          from);
  uint64_t h = fnv1a64(key->text, strlen(key->text), FNV64_OFFSET);
  size_t dlen = strlen(dir);
  while (dlen > 1 && dir[dlen - 1] == '/') /* "dir/" and "dir" name the same file */
    dlen--;
  int n = snprintf(path, size, "%.*s%s/autotune-%016llx.txt", (int)dlen, dir, suffix,
                   (unsigned long long)h);
  if (n < 0 || (size_t)n >= size) {
    char shown[84];
    mixcomm__printable(dir, shown, sizeof shown);
    path[0] = '\0';
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "autotune cache path under '%s' (from %s) is longer than %zu bytes",
                          shown, from, size - 1);
  }
  return MIXCOMM_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* Load                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Read the whole file (at most CACHE_MAX_FILE bytes). Returns 1 with *out (malloc'd,
 * NUL-terminated) and *len; 0 if missing (*why NULL) or unreadable (*why says why). */
static int read_file(const char* path, char** out, size_t* len, const char** why,
                     char* errbuf, size_t errsize) {
  *why = NULL;
  errbuf[0] = '\0';
  /* O_NONBLOCK: a FIFO (or a device) left at this path must not block the open or the reads;
   * anything but a regular file is refused. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno != ENOENT) {
      snprintf(errbuf, errsize, "cannot open it: %s", strerror(errno));
      *why = errbuf;
    }
    return 0;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0)
    snprintf(errbuf, errsize, "cannot stat it: %s", strerror(errno));
  else if (!S_ISREG(sb.st_mode))
    snprintf(errbuf, errsize, "it is not a regular file");
  if (errbuf[0] != '\0') {
    *why = errbuf;
    close(fd);
    return 0;
  }
  char* buf = malloc(CACHE_MAX_FILE + 1);
  size_t n = 0;
  if (buf == NULL) {
    close(fd);
    *why = "out of host memory";
    return 0;
  }
  for (;;) {
    ssize_t r = read(fd, buf + n, CACHE_MAX_FILE + 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      snprintf(errbuf, errsize, "cannot read it: %s", strerror(errno));
      *why = errbuf;
      break;
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (n > CACHE_MAX_FILE) {
      *why = "file too large";
      break;
    }
  }
  if (close(fd) != 0 && *why == NULL) {
    snprintf(errbuf, errsize, "cannot close it: %s", strerror(errno));
    *why = errbuf;
  }
  if (*why != NULL) {
    free(buf);
    return 0;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 1;
}

/* Exact decimal integer in [0, max]; no sign, no leading zeros (except "0"), no spaces. */
static int parse_uint(const char* s, int max, int* v) {
  if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
    return 0;
  long long x = 0;
  for (const char* p = s; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return 0;
    x = x * 10 + (*p - '0');
    if (x > max)
      return 0;
  }
  *v = (int)x;
  return 1;
}

int mixcomm__tune_cache_parse(char* text, size_t len, const mixcomm__tune_key_t* key,
                              uint32_t valid_ops_mask, uint32_t valid_modes_mask, int num_buckets,
                              mixcomm__tune_table_t out, char* why, size_t why_size) {
#define REJECT(...)                          \
  do {                                       \
    snprintf(why, why_size, __VA_ARGS__);    \
    return 0;                                \
  } while (0)
  /* Text of the file quoted in a reason: cut, and cleaned of control characters and escape
   * sequences (the reason goes to the log). */
  char quoted[304];
#define QUOTE(s, max) (mixcomm__printable((s), quoted, (max) + 1), quoted)
  if (memchr(text, '\0', len) != NULL)
    REJECT("it contains a NUL byte");
  if (len == 0)
    REJECT("it is empty");
  if (text[len - 1] != '\n')
    REJECT("it is truncated (the last line has no end)");
  /* Every line, its length, and the start of the last one (the checksum). */
  size_t last_start = 0;
  for (size_t i = 0, start = 0; i < len; i++) {
    if (text[i] != '\n')
      continue;
    if (i - start > CACHE_MAX_LINE)
      REJECT("a line is longer than %d bytes", CACHE_MAX_LINE);
    last_start = start;
    start = i + 1;
  }
  unsigned long long stored = 0;
  {
    const char* c = text + last_start;
    const char* prefix = "checksum ";
    size_t plen = strlen(prefix);
    if (len - last_start < plen || memcmp(c, prefix, plen) != 0)
      REJECT("it is truncated or was appended to (the last line is not the checksum)");
    c += plen;
    for (int i = 0; i < 16; i++) {
      int d = (c[i] >= '0' && c[i] <= '9')   ? c[i] - '0'
              : (c[i] >= 'a' && c[i] <= 'f') ? c[i] - 'a' + 10
                                             : -1;
      if (d < 0)
        REJECT("its checksum line is malformed");
      stored = stored << 4 | (unsigned long long)d;
    }
    if (c[16] != '\n')
      REJECT("its checksum line is malformed");
  }
  uint64_t actual = fnv1a64(text, last_start, FNV64_OFFSET);
  if (actual != stored)
    REJECT("bad checksum (stored %016llx, content gives %016llx): the file was modified or "
           "damaged",
           stored, (unsigned long long)actual);

  /* Lines before the checksum. */
  text[last_start] = '\0';
  int seen[MIXCOMM_NUM_OPS][MIXCOMM_TUNE_BUCKETS];
  memset(seen, 0, sizeof seen);
  int lineno = 0;
  char* save = NULL;
  for (char* line = text; line != NULL && *line != '\0'; line = save) {
    char* nl = strchr(line, '\n');
    *nl = '\0';
    save = nl + 1;
    lineno++;
    if (lineno == 1) {
      if (strcmp(line, CACHE_HEADER) != 0)
        REJECT("line 1 is not \"%s\" (another format or version)", CACHE_HEADER);
      continue;
    }
    if (lineno == 2) {
      if (strncmp(line, "key ", 4) != 0)
        REJECT("line 2 is not the key line");
      if (strcmp(line + 4, key->text) != 0)
        REJECT("it was written for another configuration (key '%s', expected '%.300s')",
               QUOTE(line + 4, 300), key->text);
      continue;
    }
    if (lineno == 3) {
      int nb = -1;
      if (strncmp(line, "buckets ", 8) != 0 || !parse_uint(line + 8, 1000, &nb))
        REJECT("line 3 is not the bucket count");
      if (nb != num_buckets)
        REJECT("it has %d buckets, expected %d", nb, num_buckets);
      continue;
    }
    /* "<OP> <bucket> <MODE>", single spaces. */
    char* sp1 = strchr(line, ' ');
    char* sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL)
      REJECT("line %d is not \"<op> <bucket> <mode>\"", lineno);
    *sp1 = '\0';
    *sp2 = '\0';
    int op = -1, mode = -1, bucket = -1;
    for (int i = 0; i < MIXCOMM_NUM_OPS; i++)
      if (strcmp(line, mixcomm_op_name((mixcomm_op_t)i)) == 0)
        op = i;
    for (int i = 0; i < MIXCOMM_NUM_MODES; i++)
      if (strcmp(sp2 + 1, mixcomm_mode_name((mixcomm_mode_t)i)) == 0)
        mode = i;
    if (op < 0)
      REJECT("line %d: unknown op '%s'", lineno, QUOTE(line, 64));
    if (mode < 0)
      REJECT("line %d: unknown mode '%s'", lineno, QUOTE(sp2 + 1, 64));
    if (!parse_uint(sp1 + 1, num_buckets - 1, &bucket))
      REJECT("line %d: bucket '%s' is not in [0, %d)", lineno, QUOTE(sp1 + 1, 32), num_buckets);
    if (!(valid_ops_mask >> op & 1u))
      REJECT("line %d: op %s is not valid here", lineno, line);
    if (mode == MIXCOMM_MODE_AUTOTUNE)
      REJECT("line %d: AUTOTUNE is not a mode that can be chosen", lineno);
    if (!(valid_modes_mask >> mode & 1u))
      REJECT("line %d: mode %s is not valid here", lineno, sp2 + 1);
    if (seen[op][bucket])
      REJECT("line %d: a second entry for %s bucket %d", lineno, line, bucket);
    seen[op][bucket] = 1;
    out[op][bucket] = (mixcomm_mode_t)mode;
  }
  if (lineno < 3)
    REJECT("it is truncated (%d of the 3 header lines)", lineno);
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    if (!(valid_ops_mask >> op & 1u))
      continue;
    for (int b = 0; b < num_buckets; b++)
      if (!seen[op][b])
        REJECT("no entry for %s bucket %d", mixcomm_op_name((mixcomm_op_t)op), b);
  }
  return 1;
#undef QUOTE
#undef REJECT
}

int mixcomm__tune_cache_load(const char* path, const mixcomm__tune_key_t* key,
                             uint32_t valid_ops_mask, uint32_t valid_modes_mask, int num_buckets,
                             mixcomm__tune_table_t table) {
  if (path == NULL || key == NULL || table == NULL || num_buckets < 1 ||
      num_buckets > MIXCOMM_TUNE_BUCKETS)
    return 0;
  char* text = NULL;
  size_t len = 0;
  const char* why = NULL;
  char errbuf[256];
  if (!read_file(path, &text, &len, &why, errbuf, sizeof errbuf)) {
    if (why != NULL)
      MIXCOMM_WARN("autotune cache %s ignored: %s", path, why);
    return 0;
  }
  mixcomm__tune_table_t parsed;
  memcpy(parsed, table, sizeof parsed);
  char reason[800];
  int ok = mixcomm__tune_cache_parse(text, len, key, valid_ops_mask, valid_modes_mask,
                                     num_buckets, parsed, reason, sizeof reason);
  free(text);
  if (!ok) {
    MIXCOMM_WARN("autotune cache %s ignored: %s (it will be measured again and rewritten)", path,
                 reason);
    return 0;
  }
  memcpy(table, parsed, sizeof parsed);
  MIXCOMM_INFO("autotune results read from %s", path);
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Store                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* mkdir -p of the directory part of path, creating missing directories with mode 0700. An
 * existing non-directory in the way fails here (ENOTDIR) or when the file is created. */
static mixcomm_status_t make_parent_dirs(const char* path) {
  size_t len = strlen(path);
  char* dir = malloc(len + 1);
  if (dir == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "autotune cache: out of host memory");
  memcpy(dir, path, len + 1);
  char* slash = strrchr(dir, '/');
  if (slash == NULL || slash == dir) { /* relative name in the working directory, or "/x" */
    free(dir);
    return MIXCOMM_SUCCESS;
  }
  *slash = '\0';
  for (char* p = dir + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      char what[1200];
      snprintf(what, sizeof what, "autotune cache: creating directory '%s' for '%s'", dir, path);
      free(dir);
      return mixcomm__sys_error(what);
    }
    *p = saved;
    if (saved == '\0')
      break;
  }
  free(dir);
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t write_all(int fd, const char* data, size_t n, const char* tmp) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      char what[1100];
      snprintf(what, sizeof what, "autotune cache: writing '%s'", tmp);
      return mixcomm__sys_error(what);
    }
    data += w;
    n -= (size_t)w;
  }
  return MIXCOMM_SUCCESS;
}

/* printf at buf[*n] within cap; -1 (and *n unchanged) when it does not fit. */
static int append(char* buf, size_t cap, size_t* n, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char* buf, size_t cap, size_t* n, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = *n < cap ? vsnprintf(buf + *n, cap - *n, fmt, ap) : -1;
  va_end(ap);
  if (w < 0 || (size_t)w >= cap - *n)
    return -1;
  *n += (size_t)w;
  return 0;
}

int mixcomm__tune_cache_format(const mixcomm__tune_key_t* key, uint32_t valid_ops_mask,
                               int num_buckets, const mixcomm__tune_table_t table, char* buf,
                               size_t cap, size_t* len) {
  *len = 0;
  if (num_buckets < 1 || num_buckets > MIXCOMM_TUNE_BUCKETS) {
    mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%d buckets (1 to %d expected)", num_buckets,
                   MIXCOMM_TUNE_BUCKETS);
    return -1;
  }
  if (strchr(key->text, '\n') != NULL || strlen(key->text) + 8 > CACHE_MAX_LINE) {
    mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "the key has a newline or is too long");
    return -1;
  }
  size_t n = 0;
  int full = append(buf, cap, &n, "%s\nkey %s\nbuckets %d\n", CACHE_HEADER, key->text,
                    num_buckets);
  for (int op = 0; !full && op < MIXCOMM_NUM_OPS; op++) {
    if (!(valid_ops_mask >> op & 1u))
      continue;
    for (int b = 0; !full && b < num_buckets; b++) {
      mixcomm_mode_t m = table[op][b];
      if (m < 0 || m >= MIXCOMM_MODE_AUTOTUNE) {
        mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                       "%s bucket %d holds mode %d, not a fused or NCCL mode",
                       mixcomm_op_name((mixcomm_op_t)op), b, (int)m);
        return -1;
      }
      full = append(buf, cap, &n, "%s %d %s\n", mixcomm_op_name((mixcomm_op_t)op), b,
                    mixcomm_mode_name(m));
    }
  }
  const uint64_t sum = fnv1a64(buf, n, FNV64_OFFSET);
  if (full || append(buf, cap, &n, "checksum %016llx\n", (unsigned long long)sum) != 0) {
    mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "the table does not fit in %zu bytes", cap);
    return -1;
  }
  *len = n;
  return 0;
}

mixcomm_status_t mixcomm__tune_cache_store(const char* path, const mixcomm__tune_key_t* key,
                                           uint32_t valid_ops_mask, int num_buckets,
                                           const mixcomm__tune_table_t table) {
  if (path == NULL || path[0] == '\0' || key == NULL || table == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune cache store: no path, key "
                                                        "or table");
  if (num_buckets < 1 || num_buckets > MIXCOMM_TUNE_BUCKETS)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "autotune cache store '%s': %d buckets (1 to %d expected)", path,
                          num_buckets, MIXCOMM_TUNE_BUCKETS);
  if (strchr(key->text, '\n') != NULL || strlen(key->text) + 8 > CACHE_MAX_LINE)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "autotune cache store '%s': the key has a newline or is too long",
                          path);
  /* Content: at most 3 + 5 * 15 lines of < 70 bytes, plus the key. */
  size_t cap = sizeof key->text + 8192, n = 0;
  char* buf = malloc(cap);
  if (buf == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "autotune cache store: out of host memory");
  if (mixcomm__tune_cache_format(key, valid_ops_mask, num_buckets, table, buf, cap, &n) != 0) {
    free(buf);
    return mixcomm__error_context(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune cache store '%s'",
                                  path);
  }

  mixcomm_status_t st = make_parent_dirs(path);
  if (st != MIXCOMM_SUCCESS) {
    free(buf);
    return st;
  }
  size_t tmp_size = strlen(path) + 32;
  char* tmp = malloc(tmp_size);
  if (tmp == NULL) {
    free(buf);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "autotune cache store: out of host memory");
  }
  snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
  char what[1100];
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(what, sizeof what, "autotune cache: creating '%s'", tmp);
    st = mixcomm__sys_error(what);
    goto done;
  }
  st = write_all(fd, buf, n, tmp);
  if (st == MIXCOMM_SUCCESS && fsync(fd) != 0) {
    snprintf(what, sizeof what, "autotune cache: fsync of '%s'", tmp);
    st = mixcomm__sys_error(what);
  }
  if (close(fd) != 0 && st == MIXCOMM_SUCCESS) {
    snprintf(what, sizeof what, "autotune cache: closing '%s'", tmp);
    st = mixcomm__sys_error(what);
  }
  if (st == MIXCOMM_SUCCESS && rename(tmp, path) != 0) {
    snprintf(what, sizeof what, "autotune cache: renaming '%s' to '%s'", tmp, path);
    st = mixcomm__sys_error(what);
  }
  if (st != MIXCOMM_SUCCESS) {
    if (unlink(tmp) != 0 && errno != ENOENT)
      MIXCOMM_WARN("autotune cache: could not remove '%s': %s", tmp, strerror(errno));
  } else {
    MIXCOMM_INFO("autotune results written to %s", path);
  }
done:
  free(tmp);
  free(buf);
  return st;
}
