/* SPDX-License-Identifier: Apache-2.0
 * Tests of the mixcomm-info tool: run the built binary (MIXCOMM_INFO_PATH), read its JSON with
 * a small strict parser written here, and check the values against the documented formulas computed in
 * the test. Bad arguments must fail with a message on stderr. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/build_config.h"
#include "harness/task.h"

#ifndef MIXCOMM_INFO_PATH
#error "MIXCOMM_INFO_PATH must name the built mixcomm-info binary"
#endif

/* ---------------------------------------------------------------------------------------- */
/* Running the tool                                                                          */
/* ---------------------------------------------------------------------------------------- */

typedef struct run_result {
  int status; /* exit code, or 128 + signal */
  char* out;
  char* err;
} run_result_t;

static char* slurp(FILE* f) {
  fflush(f);
  long n = ftell(f);
  ASSERT(n >= 0);
  char* buf = malloc((size_t)n + 1);
  ASSERT(buf != NULL);
  rewind(f);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  return buf;
}

/* Run mixcomm-info with the space-separated arguments in args (no quoting needed here). */
static run_result_t run_info(const char* args) {
  char copy[1024];
  char* argv[64];
  int argc = 0;
  snprintf(copy, sizeof copy, "%s", args);
  argv[argc++] = (char*)MIXCOMM_INFO_PATH;
  for (char* tok = strtok(copy, " "); tok != NULL && argc < 63; tok = strtok(NULL, " "))
    argv[argc++] = tok;
  argv[argc] = NULL;

  FILE* out = tmpfile();
  FILE* err = tmpfile();
  ASSERT(out != NULL && err != NULL);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    dup2(fileno(out), 1);
    dup2(fileno(err), 2);
    execv(MIXCOMM_INFO_PATH, argv);
    _exit(127);
  }
  int st = 0;
  ASSERT(waitpid(pid, &st, 0) == pid);
  run_result_t r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  fseek(out, 0, SEEK_END);
  fseek(err, 0, SEEK_END);
  r.out = slurp(out);
  r.err = slurp(err);
  fclose(out);
  fclose(err);
  if (r.status == 127)
    FAIL("could not run %s", MIXCOMM_INFO_PATH);
  return r;
}

/* ---------------------------------------------------------------------------------------- */
/* A small strict JSON reader (RFC 8259 syntax; numbers kept as double and as integer)         */
/* ---------------------------------------------------------------------------------------- */

typedef enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct jval {
  jtype_t type;
  int boolean;
  double num;
  long long inum;
  int is_int;
  char* str;           /* J_STR, unescaped (UTF-8) */
  int n;               /* J_ARR, J_OBJ: number of items */
  struct jval** items; /* J_ARR, J_OBJ */
  char** keys;         /* J_OBJ */
} jval_t;

typedef struct jparser {
  const char* s;
  size_t pos;
  const char* error;
} jparser_t;

static void jskip(jparser_t* p) {
  while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
         p->s[p->pos] == '\r')
    p->pos++;
}

static jval_t* jnew(jtype_t type) {
  jval_t* v = calloc(1, sizeof *v);
  ASSERT(v != NULL);
  v->type = type;
  return v;
}

static jval_t* jparse_value(jparser_t* p, int depth);

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void put_utf8(char* buf, size_t* n, unsigned cp) {
  if (cp < 0x80) {
    buf[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    buf[(*n)++] = (char)(0xc0 | (cp >> 6));
    buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    buf[(*n)++] = (char)(0xe0 | (cp >> 12));
    buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
  } else {
    buf[(*n)++] = (char)(0xf0 | (cp >> 18));
    buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
    buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    buf[(*n)++] = (char)(0x80 | (cp & 0x3f));
  }
}

static int read_hex4(jparser_t* p, unsigned* out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p->s[p->pos]);
    if (h < 0)
      return 0;
    v = v * 16 + (unsigned)h;
    p->pos++;
  }
  *out = v;
  return 1;
}

static char* jparse_string(jparser_t* p) {
  if (p->s[p->pos] != '"') {
    p->error = "expected a string";
    return NULL;
  }
  p->pos++;
  size_t cap = 64, n = 0;
  char* buf = malloc(cap);
  ASSERT(buf != NULL);
  for (;;) {
    if (n + 8 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      ASSERT(buf != NULL);
    }
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '\0') {
      p->error = "unterminated string";
      return NULL;
    }
    if (c < 0x20) {
      p->error = "control character in a string";
      return NULL;
    }
    p->pos++;
    if (c == '"')
      break;
    if (c != '\\') {
      buf[n++] = (char)c;
      continue;
    }
    char e = p->s[p->pos++];
    switch (e) {
      case '"': buf[n++] = '"'; break;
      case '\\': buf[n++] = '\\'; break;
      case '/': buf[n++] = '/'; break;
      case 'b': buf[n++] = '\b'; break;
      case 'f': buf[n++] = '\f'; break;
      case 'n': buf[n++] = '\n'; break;
      case 'r': buf[n++] = '\r'; break;
      case 't': buf[n++] = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!read_hex4(p, &cp)) {
          p->error = "bad \\u escape";
          return NULL;
        }
        if (cp >= 0xd800 && cp < 0xdc00) {
          unsigned lo;
          if (p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
            p->error = "lone surrogate";
            return NULL;
          }
          p->pos += 2;
          if (!read_hex4(p, &lo) || lo < 0xdc00 || lo >= 0xe000) {
            p->error = "bad surrogate pair";
            return NULL;
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          p->error = "lone surrogate";
          return NULL;
        }
        put_utf8(buf, &n, cp);
        break;
      }
      default:
        p->error = "bad escape";
        return NULL;
    }
  }
  buf[n] = '\0';
  return buf;
}

static jval_t* jparse_number(jparser_t* p) {
  const size_t start = p->pos;
  int is_int = 1;
  if (p->s[p->pos] == '-')
    p->pos++;
  if (p->s[p->pos] == '0') {
    p->pos++;
  } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
    while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
      p->pos++;
  } else {
    p->error = "bad number";
    return NULL;
  }
  if (p->s[p->pos] == '.') {
    is_int = 0;
    p->pos++;
    if (!(p->s[p->pos] >= '0' && p->s[p->pos] <= '9')) {
      p->error = "bad fraction";
      return NULL;
    }
    while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
      p->pos++;
  }
  if (p->s[p->pos] == 'e' || p->s[p->pos] == 'E') {
    is_int = 0;
    p->pos++;
    if (p->s[p->pos] == '+' || p->s[p->pos] == '-')
      p->pos++;
    if (!(p->s[p->pos] >= '0' && p->s[p->pos] <= '9')) {
      p->error = "bad exponent";
      return NULL;
    }
    while (p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
      p->pos++;
  }
  jval_t* v = jnew(J_NUM);
  char tmp[64];
  size_t len = p->pos - start;
  if (len >= sizeof tmp) {
    p->error = "number too long";
    return NULL;
  }
  memcpy(tmp, p->s + start, len);
  tmp[len] = '\0';
  v->num = strtod(tmp, NULL);
  v->is_int = is_int;
  if (is_int)
    v->inum = strtoll(tmp, NULL, 10);
  return v;
}

static int jliteral(jparser_t* p, const char* word) {
  size_t n = strlen(word);
  if (strncmp(p->s + p->pos, word, n) != 0)
    return 0;
  p->pos += n;
  return 1;
}

static void jpush(jval_t* v, char* key, jval_t* item) {
  v->items = realloc(v->items, sizeof *v->items * (size_t)(v->n + 1));
  ASSERT(v->items != NULL);
  if (v->type == J_OBJ) {
    v->keys = realloc(v->keys, sizeof *v->keys * (size_t)(v->n + 1));
    ASSERT(v->keys != NULL);
    v->keys[v->n] = key;
  }
  v->items[v->n++] = item;
}

static jval_t* jparse_value(jparser_t* p, int depth) {
  if (depth > 64) {
    p->error = "nesting too deep";
    return NULL;
  }
  jskip(p);
  char c = p->s[p->pos];
  if (c == '{' || c == '[') {
    const int obj = c == '{';
    const char close = obj ? '}' : ']';
    jval_t* v = jnew(obj ? J_OBJ : J_ARR);
    p->pos++;
    jskip(p);
    if (p->s[p->pos] == close) {
      p->pos++;
      return v;
    }
    for (;;) {
      char* key = NULL;
      jskip(p);
      if (obj) {
        key = jparse_string(p);
        if (key == NULL)
          return NULL;
        for (int i = 0; i < v->n; i++)
          if (!strcmp(v->keys[i], key)) {
            p->error = "duplicate key";
            return NULL;
          }
        jskip(p);
        if (p->s[p->pos] != ':') {
          p->error = "expected ':'";
          return NULL;
        }
        p->pos++;
      }
      jval_t* item = jparse_value(p, depth + 1);
      if (item == NULL)
        return NULL;
      jpush(v, key, item);
      jskip(p);
      if (p->s[p->pos] == ',') {
        p->pos++;
        continue;
      }
      if (p->s[p->pos] == close) {
        p->pos++;
        return v;
      }
      p->error = obj ? "expected ',' or '}'" : "expected ',' or ']'";
      return NULL;
    }
  }
  if (c == '"') {
    char* s = jparse_string(p);
    if (s == NULL)
      return NULL;
    jval_t* v = jnew(J_STR);
    v->str = s;
    return v;
  }
  if (c == '-' || (c >= '0' && c <= '9'))
    return jparse_number(p);
  if (jliteral(p, "true")) {
    jval_t* v = jnew(J_BOOL);
    v->boolean = 1;
    return v;
  }
  if (jliteral(p, "false"))
    return jnew(J_BOOL);
  if (jliteral(p, "null"))
    return jnew(J_NULL);
  p->error = "unexpected character";
  return NULL;
}

/* The whole text must be exactly one JSON value (whitespace around it allowed). */
static jval_t* json_parse(const char* text) {
  jparser_t p = {text, 0, NULL};
  jval_t* v = jparse_value(&p, 0);
  if (v != NULL) {
    jskip(&p);
    if (p.s[p.pos] != '\0') {
      p.error = "text after the value";
      v = NULL;
    }
  }
  if (v == NULL)
    FAIL("invalid JSON at byte %zu (%s): ...%.60s", p.pos, p.error ? p.error : "?",
         text + (p.pos > 20 ? p.pos - 20 : 0));
  return v;
}

static jval_t* jget(const jval_t* obj, const char* key) {
  if (obj == NULL || obj->type != J_OBJ)
    FAIL("looking up \"%s\" in something that is not an object", key);
  for (int i = 0; i < obj->n; i++)
    if (!strcmp(obj->keys[i], key))
      return obj->items[i];
  return NULL;
}

static long long jint(const jval_t* obj, const char* key) {
  const jval_t* v = jget(obj, key);
  if (v == NULL)
    FAIL("key \"%s\" missing", key);
  if (v->type != J_NUM || !v->is_int)
    FAIL("key \"%s\" is not an integer", key);
  return v->inum;
}

static const char* jstr(const jval_t* obj, const char* key) {
  const jval_t* v = jget(obj, key);
  if (v == NULL)
    FAIL("key \"%s\" missing", key);
  if (v->type != J_STR)
    FAIL("key \"%s\" is not a string", key);
  return v->str;
}

static const jval_t* jarr(const jval_t* obj, const char* key) {
  const jval_t* v = jget(obj, key);
  if (v == NULL || v->type != J_ARR)
    FAIL("key \"%s\" missing or not an array", key);
  return v;
}

/* Whether array arr holds the string s. */
static int jarr_has(const jval_t* arr, const char* s) {
  for (int i = 0; i < arr->n; i++)
    if (arr->items[i]->type == J_STR && !strcmp(arr->items[i]->str, s))
      return 1;
  return 0;
}

/* The parser itself must reject what is not JSON, or the checks below prove nothing. */
static int json_rejects(const char* text) {
  jparser_t p = {text, 0, NULL};
  jval_t* v = jparse_value(&p, 0);
  if (v != NULL) {
    jskip(&p);
    if (p.s[p.pos] != '\0')
      v = NULL;
  }
  return v == NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Expectations from the documented rules                                                     */
/* ---------------------------------------------------------------------------------------- */

static const char* const kOps[] = {"ALLREDUCE", "ALLGATHER", "REDUCESCATTER",
                                   "ALLREDUCE_ALLGATHER", "REDUCESCATTER_ALLREDUCE"};
static const char* const kModes[] = {
    "FUSED_OPT_WAITS_MC",  "FUSED_OPT_WAITS_UC",  "FUSED_OPT_BYTES1_MC",
    "FUSED_OPT_BYTES1_UC", "FUSED_OPT_BYTES2_MC", "FUSED_OPT_BYTES2_UC",
    "NCCL_ONE",            "NCCL_TP_DP",          "AUTOTUNE"};

typedef struct info_case {
  const char* args;
  int W, L;
  int ltp, ldp, itp, idp; /* expected resolved sizes, worked out by hand */
} info_case_t;

static const info_case_t kCases[] = {
    {"--world-size 1 --local-size 1", 1, 1, 1, 1, 1, 1},
    {"--world-size 2 --local-size 2", 2, 2, 2, 1, 1, 1},
    {"--world-size 8 --local-size 8 --local-tp-size 4", 8, 8, 4, 2, 1, 1},
    {"--world-size 8 --local-size 8 --local-dp-size 2", 8, 8, 4, 2, 1, 1},
    {"--world-size 16 --local-size 8 --inter-tp-size 2", 16, 8, 8, 1, 2, 1},
    {"--world-size 16 --local-size 8 --local-tp-size 4 --inter-tp-size 2", 16, 8, 4, 2, 2, 1},
    {"--world-size 12 --local-size 6 --local-tp-size 3", 12, 6, 3, 2, 2, 1},
    {"--world-size 12 --local-size 6 --local-tp-size 3 --local-dp-size 2 --inter-dp-size 2", 12,
     6, 3, 2, 1, 2},
    {"--world-size 3 --local-size 3", 3, 3, 3, 1, 1, 1},
    {"--world-size 3 --local-size 3 --local-dp-size 3", 3, 3, 1, 3, 1, 1},
    {"--world-size 8 --local-size 2 --local-tp-size 2 --inter-dp-size 4", 8, 2, 2, 1, 1, 4},
    {"--world-size 32 --local-size 32", 32, 32, 32, 1, 1, 1},
};

/* Which modes the mode rules allow, with the tool's assumptions (one GPU per rank, autotune
 * on unless no_autotune, this build's NCCL and NVSHMEM). */
static int mode_expected_valid(int mode, const info_case_t* c, int no_autotune, int share) {
  const int I = c->W / c->L, tp = c->ltp * c->itp, dp = c->ldp * c->idp;
  const int fused_ok = c->L <= 16 && (I == 1 || MIXCOMM_HAVE_NVSHMEM);
  switch (mode) {
    case 1: return fused_ok;
    case 3: return fused_ok && c->ltp > 1;
    case 5: return fused_ok && c->itp > 1;
    case 6: return MIXCOMM_HAVE_NCCL && !share;
    case 7: return MIXCOMM_HAVE_NCCL && !share && tp > 1 && dp > 1;
    case 8: return !no_autotune;
    default: return 0; /* multicast modes are never built */
  }
}

static void check_json_case(const info_case_t* c, const jval_t* root, int no_autotune,
                            int share) {
  const int W = c->W, L = c->L, I = W / L;
  const int tp = c->ltp * c->itp, dp = c->ldp * c->idp;
  ASSERT(root->type == J_OBJ);
  ASSERT_EQ(jint(root, "world_size"), W);
  ASSERT_EQ(jint(root, "local_size"), L);
  ASSERT_EQ(jint(root, "inter_size"), I);
  ASSERT_EQ(jint(root, "local_tp_size"), c->ltp);
  ASSERT_EQ(jint(root, "local_dp_size"), c->ldp);
  ASSERT_EQ(jint(root, "inter_tp_size"), c->itp);
  ASSERT_EQ(jint(root, "inter_dp_size"), c->idp);
  ASSERT_EQ(jint(root, "tp_size"), tp);
  ASSERT_EQ(jint(root, "dp_size"), dp);

  /* Every world rank, in order, with the derived ranks of the topology rules. */
  const jval_t* ranks = jarr(root, "ranks");
  ASSERT_EQ(ranks->n, W);
  for (int w = 0; w < W; w++) {
    const jval_t* r = ranks->items[w];
    const int lr = w % L, ir = w / L;
    const int ltr = lr % c->ltp, ldr = lr / c->ltp, itr = ir % c->itp, idr = ir / c->itp;
    const long long got[] = {jint(r, "world_rank"),    jint(r, "local_rank"),
                             jint(r, "inter_rank"),    jint(r, "local_tp_rank"),
                             jint(r, "local_dp_rank"), jint(r, "inter_tp_rank"),
                             jint(r, "inter_dp_rank"), jint(r, "tp_rank"),
                             jint(r, "dp_rank")};
    const long long exp[] = {w, lr, ir, ltr, ldr, itr, idr, ltr + itr * c->ltp,
                             ldr + idr * c->ldp};
    for (int k = 0; k < 9; k++)
      if (got[k] != exp[k])
        FAIL("%s: rank %d field %d is %lld, expected %lld", c->args, w, k, got[k], exp[k]);
  }

  /* Valid ops per the op table, in enum order. */
  const int op_ok[] = {dp == 1, tp == 1, tp == 1, tp > 1 && dp > 1, tp > 1 && dp > 1};
  const jval_t* ops = jarr(root, "valid_ops");
  int k = 0;
  for (int op = 0; op < 5; op++) {
    if (!op_ok[op])
      continue;
    if (k >= ops->n || ops->items[k]->type != J_STR || strcmp(ops->items[k]->str, kOps[op]))
      FAIL("%s: valid_ops[%d] should be %s", c->args, k, kOps[op]);
    k++;
  }
  ASSERT_EQ(ops->n, k);

  /* Every mode is either valid or excluded with a reason. */
  const jval_t* valid = jarr(root, "valid_modes");
  const jval_t* excluded = jget(root, "excluded_modes");
  ASSERT(excluded != NULL && excluded->type == J_OBJ);
  ASSERT_EQ(valid->n + excluded->n, 9);
  for (int m = 0; m < 9; m++) {
    const int in_valid = jarr_has(valid, kModes[m]);
    const jval_t* why = jget(excluded, kModes[m]);
    if (in_valid == (why != NULL))
      FAIL("%s: mode %s must be in exactly one of valid_modes, excluded_modes", c->args,
           kModes[m]);
    if (why != NULL && (why->type != J_STR || why->str[0] == '\0'))
      FAIL("%s: mode %s excluded without a reason", c->args, kModes[m]);
    if (in_valid != mode_expected_valid(m, c, no_autotune, share))
      FAIL("%s: mode %s valid = %d, expected %d (%s)", c->args, kModes[m], in_valid,
           mode_expected_valid(m, c, no_autotune, share), why ? why->str : "");
    if (m == 0 || m == 2 || m == 4)
      ASSERT_CONTAINS(why->str, "multicast");
  }
  /* Valid modes are listed in enum order. */
  for (int i = 1; i < valid->n; i++) {
    int a = -1, b = -1;
    for (int m = 0; m < 9; m++) {
      if (!strcmp(valid->items[i - 1]->str, kModes[m]))
        a = m;
      if (!strcmp(valid->items[i]->str, kModes[m]))
        b = m;
    }
    ASSERT(a >= 0 && b > a);
  }

  /* The workspace: every key, consistent with the slot layout, and exactly what the library
   * plans for the same configuration (the tool must not compute its own). */
  const jval_t* ws = jget(root, "workspace");
  ASSERT(ws != NULL && ws->type == J_OBJ);
  const long long grid = jint(ws, "grid_size");
  const long long slots = jint(ws, "ring_slots");
  ASSERT(slots >= 1);
  ASSERT_EQ(jint(ws, "vmm_bytes"), slots * grid * jint(ws, "vmm_slot_bytes"));
  if (I == 1) {
    ASSERT_EQ(jint(ws, "nvshmem_bytes"), 0);
    ASSERT_EQ(jint(ws, "nvshmem_rows"), 0);
  } else {
    ASSERT(jint(ws, "nvshmem_bytes") >= slots * grid * jint(ws, "nvshmem_slot_bytes"));
    ASSERT(jint(ws, "nvshmem_slot_bytes") > 0);
  }
  ASSERT(jint(ws, "control_bytes") >= grid * 16);
  ASSERT(jint(ws, "vmm_rows") >= 1);
  mixcomm_config_t cfg = MIXCOMM_CONFIG_INITIALIZER;
  cfg.world_size = W;
  cfg.local_size = L;
  cfg.inter_size = I;
  cfg.local_tp_size = c->ltp;
  cfg.local_dp_size = c->ldp;
  cfg.inter_tp_size = c->itp;
  cfg.inter_dp_size = c->idp;
  cfg.grid_size = (int)grid;
  cfg.max_block_size = (int)jint(ws, "max_block_size");
  mixcomm_workspace_plan_t plan;
  ASSERT_OK(mixcomm_workspace_plan(&cfg, 0, &plan));
  ASSERT_EQ(jint(ws, "max_block_size"), plan.max_block_size);
  ASSERT_EQ(slots, plan.ring_slots);
  ASSERT_EQ(jint(ws, "vmm_rows"), plan.vmm_rows);
  ASSERT_EQ(jint(ws, "nvshmem_rows"), plan.nvshmem_rows);
  ASSERT_EQ(jint(ws, "vmm_slot_bytes"), plan.vmm_slot_bytes);
  ASSERT_EQ(jint(ws, "vmm_bytes"), plan.vmm_bytes);
  ASSERT_EQ(jint(ws, "nvshmem_slot_bytes"), plan.nvshmem_slot_bytes);
  ASSERT_EQ(jint(ws, "nvshmem_bytes"), plan.nvshmem_bytes);
  ASSERT_EQ(jint(ws, "control_bytes"), plan.control_bytes);

  const jval_t* notes = jarr(root, "assumptions");
  ASSERT(notes->n >= 2);
  for (int i = 0; i < notes->n; i++)
    ASSERT(notes->items[i]->type == J_STR && notes->items[i]->str[0] != '\0');
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                      */
/* ---------------------------------------------------------------------------------------- */

TEST_IMPL(info_json_topologies) {
  /* The reader must tell JSON from near misses. */
  ASSERT(json_rejects("{\"a\": 1,}"));
  ASSERT(json_rejects("{\"a\" 1}"));
  ASSERT(json_rejects("[1, 2"));
  ASSERT(json_rejects("{\"a\": \"x\ny\"}"));
  ASSERT(json_rejects("{\"a\": 01}"));
  ASSERT(json_rejects("{\"a\": 1} x"));
  ASSERT(json_rejects("{\"a\": 1, \"a\": 2}"));
  ASSERT(!json_rejects(" {\"a\": [1, -2.5e3, true, null, \"\\u00e9\\\"\"]} "));

  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; i++) {
    char args[512];
    snprintf(args, sizeof args, "%s --json", kCases[i].args);
    run_result_t r = run_info(args);
    if (r.status != 0)
      FAIL("%s: exit %d, stderr: %s", args, r.status, r.err);
    jval_t* root = json_parse(r.out);
    check_json_case(&kCases[i], root, 0, 0);
    /* Defaults: bf16 and the 132-CTA grid of an H100, stated as an assumption. */
    ASSERT_STR_EQ(jstr(root, "dtype"), "bfloat16");
    const jval_t* ws = jget(root, "workspace");
    ASSERT_EQ(jint(ws, "grid_size"), 132);
    ASSERT_EQ(jint(ws, "max_block_size"), 1024);
    const jval_t* notes = jarr(root, "assumptions");
    int says_grid = 0, says_gpu = 0;
    for (int k = 0; k < notes->n; k++) {
      says_grid |= strstr(notes->items[k]->str, "132") != NULL;
      says_gpu |= strstr(notes->items[k]->str, "one GPU per rank") != NULL;
    }
    ASSERT(says_grid && says_gpu);
  }
  return 0;
}

TEST_IMPL(info_json_options) {
  /* dtype, grid and block limits, autotune off, "--opt=value" spelling. */
  const info_case_t* c = &kCases[5]; /* 16 ranks, 2 nodes, tp 4 x dp 2 inside, tp 2 across */
  char args[512];
  snprintf(args, sizeof args,
           "%s --dtype fp32 --grid-size=64 --max-block-size 512 --min-block-size=128 "
           "--no-autotune --json",
           c->args);
  run_result_t r = run_info(args);
  if (r.status != 0)
    FAIL("%s: exit %d, stderr: %s", args, r.status, r.err);
  jval_t* root = json_parse(r.out);
  check_json_case(c, root, 1, 0);
  ASSERT_STR_EQ(jstr(root, "dtype"), "float32");
  const jval_t* ws = jget(root, "workspace");
  ASSERT_EQ(jint(ws, "grid_size"), 64);
  ASSERT_EQ(jint(ws, "max_block_size"), 512);
  const jval_t* excluded = jget(root, "excluded_modes");
  ASSERT(excluded != NULL);
  ASSERT_CONTAINS(jstr(excluded, "AUTOTUNE"), "autotune");

  /* The workspace does not depend on the dtype. */
  snprintf(args, sizeof args, "%s --dtype fp16 --grid-size 64 --max-block-size 512 --json",
           c->args);
  run_result_t r16 = run_info(args);
  ASSERT_EQ(r16.status, 0);
  jval_t* root16 = json_parse(r16.out);
  ASSERT_STR_EQ(jstr(root16, "dtype"), "float16");
  const jval_t* ws16 = jget(root16, "workspace");
  ASSERT_EQ(jint(ws16, "vmm_bytes"), jint(ws, "vmm_bytes"));
  ASSERT_EQ(jint(ws16, "nvshmem_bytes"), jint(ws, "nvshmem_bytes"));

  /* Twice the grid, twice the node workspace. */
  snprintf(args, sizeof args, "%s --grid-size 128 --max-block-size 512 --json", c->args);
  run_result_t r128 = run_info(args);
  ASSERT_EQ(r128.status, 0);
  jval_t* root128 = json_parse(r128.out);
  ASSERT_EQ(jint(jget(root128, "workspace"), "vmm_bytes"), 2 * jint(ws, "vmm_bytes"));

  /* Ranks sharing a GPU: NCCL modes excluded, naming the GPU. */
  const info_case_t* mixed = &kCases[2];
  snprintf(args, sizeof args, "%s --ranks-share-gpu --json", mixed->args);
  run_result_t rs = run_info(args);
  ASSERT_EQ(rs.status, 0);
  jval_t* roots = json_parse(rs.out);
  check_json_case(mixed, roots, 0, 1);
  ASSERT_CONTAINS(jstr(jget(roots, "excluded_modes"), "NCCL_ONE"), "GPU");
  ASSERT_CONTAINS(jstr(jget(roots, "excluded_modes"), "NCCL_TP_DP"), "GPU");

  /* Every documented dtype spelling. */
  static const char* const spell[][2] = {
      {"fp16", "float16"}, {"bf16", "bfloat16"}, {"fp32", "float32"}};
  for (int i = 0; i < 3; i++) {
    snprintf(args, sizeof args, "--world-size 2 --local-size 2 --dtype %s --json", spell[i][0]);
    run_result_t rd = run_info(args);
    ASSERT_EQ(rd.status, 0);
    ASSERT_STR_EQ(jstr(json_parse(rd.out), "dtype"), spell[i][1]);
  }
  return 0;
}

TEST_IMPL(info_text_and_help) {
  run_result_t r = run_info("--world-size 16 --local-size 8 --local-tp-size 4 --inter-tp-size 2");
  if (r.status != 0)
    FAIL("exit %d, stderr: %s", r.status, r.err);
  ASSERT_EQ(r.err[0], '\0');
  ASSERT_CONTAINS(r.out, "REDUCESCATTER_ALLREDUCE");
  ASSERT_CONTAINS(r.out, "FUSED_OPT_WAITS_MC");
  ASSERT_CONTAINS(r.out, "multicast");
  ASSERT_CONTAINS(r.out, "132");
  /* One table line per rank: count lines that start with the rank number after spaces. */
  int rank_lines = 0;
  for (const char* line = r.out; line != NULL && *line != '\0';) {
    const char* p = line;
    while (*p == ' ')
      p++;
    char* end;
    long v = strtol(p, &end, 10);
    if (end != p && v == rank_lines && *end == ' ')
      rank_lines++;
    line = strchr(line, '\n');
    if (line != NULL)
      line++;
  }
  ASSERT_EQ(rank_lines, 16);

  /* Many nodes: the tool lists the modes a handler would (BYTES2 at 34 nodes and grid 2 runs:
   * tests/unit/test_wire.c), and past the workspace bound leaves modes out with the reason. */
  run_result_t many = run_info("--world-size 34 --local-size 1 --grid-size 2");
  ASSERT_EQ(many.status, 0);
  run_result_t huge = run_info("--world-size 1024 --local-size 8 --local-dp-size 8");
  ASSERT_EQ(huge.status, 0);
  if (MIXCOMM_HAVE_NVSHMEM) {
    ASSERT_CONTAINS(many.out, "Valid modes: FUSED_OPT_WAITS_UC, FUSED_OPT_BYTES2_UC");
    ASSERT_CONTAINS(huge.out, "MIXCOMM_MAX_STEP_ROWS");
  }

  run_result_t h = run_info("--help");
  ASSERT_EQ(h.status, 0);
  ASSERT_CONTAINS(h.out, "--world-size");
  ASSERT_CONTAINS(h.out, "--local-size");
  ASSERT_CONTAINS(h.out, "--json");
  ASSERT_CONTAINS(h.out, "--grid-size");
  ASSERT_CONTAINS(h.out, "--no-autotune");
  return 0;
}

TEST_IMPL(info_bad_arguments) {
  static const struct {
    const char* args;
    const char* needle; /* stderr must name the problem */
  } bad[] = {
      {"", "--world-size"},
      {"--json", "--world-size"},
      {"--local-size 4", "--world-size"},
      {"--world-size 8", "--local-size"},
      {"--world-size 8 --local-size 3", "multiple"},
      {"--world-size 4 --local-size 4 --local-tp-size 3", "local_tp_size=3"},
      {"--world-size 8 --local-size 4 --local-tp-size 2 --local-dp-size 3", "local_dp_size=3"},
      {"--world-size 8 --local-size 4 --inter-tp-size 3", "inter_tp_size=3"},
      {"--world-size 4 --local-size 4 --inter-dp-size 2", "inter_dp_size=2"},
      {"--world-size 4 --local-size 4 --local-tp-size -2", "local_tp_size=-2"},
      {"--world-size 4 --local-size 4 --bogus", "--bogus"},
      {"--world-size 4 --local-size 4 -x", "-x"},
      {"--world-size 4 --local-size 4 stray", "stray"},
      {"--world-size 4 --local-size 4 --dtype fp64", "fp64"},
      {"--world-size 4 --local-size 4 --dtype", "--dtype"},
      {"--world-size four --local-size 4", "four"},
      {"--world-size 4x --local-size 4", "4x"},
      {"--world-size 4 --local-size 4.0", "4.0"},
      {"--world-size 4 --local-size", "--local-size"},
      {"--world-size= --local-size 4", "--world-size"},
      {"--world-size 0 --local-size 1", "world-size"},
      {"--world-size -8 --local-size 4", "-8"},
      {"--world-size 8 --local-size 0", "local-size"},
      {"--world-size 99999999999 --local-size 1", "99999999999"},
      {"--world-size 2147483647 --local-size 1", "at most 16384"},
      {"--world-size 16385 --local-size 1", "16385"},
      {"--world-size 4 --local-size 4 --grid-size 4097", "grid-size"},
      {"--world-size 4 --local-size 4 --grid-size 0", "grid-size"},
      {"--world-size 4 --local-size 4 --grid-size x", "grid-size"},
      {"--world-size 4 --local-size 4 --max-block-size 33", "max_block_size=33"},
      {"--world-size 4 --local-size 4 --max-block-size 128", "max_block_size=128"},
      {"--world-size 4 --local-size 4 --min-block-size 2000", "min_block_size=2000"},
      {"--world-size 4 --local-size 4 --json=yes", "--json"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    run_result_t r = run_info(bad[i].args);
    if (r.status == 0 || r.status >= 128)
      FAIL("'%s': exit %d, expected a clean non-zero exit", bad[i].args, r.status);
    if (strstr(r.err, "mixcomm-info") == NULL || strstr(r.err, bad[i].needle) == NULL)
      FAIL("'%s': stderr \"%s\" should name the tool and \"%s\"", bad[i].args, r.err,
           bad[i].needle);
    if (r.out[0] != '\0')
      FAIL("'%s': printed on stdout although it failed: %s", bad[i].args, r.out);
    ASSERT_EQ(r.status, 2);
  }
  return 0;
}

/* Output into a full device or a pipe nobody reads: exit 1 at the first failed write with a
 * message, for text, JSON and --help, and never a signal or a hang. */
static void expect_write_failure(const char* const* argv, int use_pipe) {
  FILE* err = tmpfile();
  ASSERT(err != NULL);
  int fds[2] = {-1, -1};
  if (use_pipe) {
    ASSERT(pipe(fds) == 0);
    close(fds[0]); /* nobody reads: every write fails with EPIPE */
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int out = use_pipe ? fds[1] : open("/dev/full", O_WRONLY);
    if (out < 0)
      _exit(126);
    signal(SIGPIPE, SIG_IGN); /* kept across exec: the write fails instead of killing */
    dup2(out, 1);
    dup2(fileno(err), 2);
    execv(MIXCOMM_INFO_PATH, (char* const*)argv);
    _exit(127);
  }
  if (use_pipe)
    close(fds[1]);
  int st = 0;
  ASSERT(waitpid(pid, &st, 0) == pid);
  fseek(err, 0, SEEK_END);
  char* text = slurp(err);
  fclose(err);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 1)
    FAIL("%s %s into %s: status 0x%x, expected exit 1; stderr: %s", argv[1], argv[2],
         use_pipe ? "a closed pipe" : "/dev/full", st, text);
  ASSERT_CONTAINS(text, "mixcomm-info: writing the output failed");
  ASSERT_CONTAINS(text, use_pipe ? "pipe" : "space");
  /* One message, not one per attempted write. */
  ASSERT(strstr(strstr(text, "writing") + 1, "writing") == NULL);
  free(text);
}

TEST_IMPL(info_write_failure) {
  static const char* const text[] = {MIXCOMM_INFO_PATH, "--world-size", "16384", "--local-size",
                                     "16", NULL};
  static const char* const json[] = {MIXCOMM_INFO_PATH, "--world-size", "16384", "--local-size",
                                     "16", "--json", NULL};
  static const char* const small[] = {MIXCOMM_INFO_PATH, "--world-size", "2", "--local-size",
                                      "2", NULL};
  static const char* const help[] = {MIXCOMM_INFO_PATH, "--help", NULL};
  for (int use_pipe = 0; use_pipe < 2; use_pipe++) {
    expect_write_failure(text, use_pipe);
    expect_write_failure(json, use_pipe);
    expect_write_failure(small, use_pipe);
    expect_write_failure(help, use_pipe);
  }
  return 0;
}

/* Where python3 exists (CI), its json module must accept the output too. */
TEST_IMPL(info_json_python) {
  if (system("command -v python3 >/dev/null 2>&1") != 0) {
    fprintf(stderr, "  python3 not found: skipped\n");
    return 0;
  }
  static const char* const topologies[] = {
      "--world-size 16 --local-size 8 --local-tp-size 4 --inter-tp-size 2 --json",
      "--world-size 1 --local-size 1 --no-autotune --json",
      "--world-size 12 --local-size 6 --local-tp-size 3 --ranks-share-gpu --json"};
  for (size_t i = 0; i < sizeof topologies / sizeof topologies[0]; i++) {
    char path[] = "/tmp/mixcomm-info-test-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    run_result_t r = run_info(topologies[i]);
    ASSERT_EQ(r.status, 0);
    size_t len = strlen(r.out);
    ASSERT(write(fd, r.out, len) == (ssize_t)len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "assert isinstance(d, dict) and len(d[\"ranks\"]) == d[\"world_size\"]' < %s",
             path);
    int st = system(cmd);
    unlink(path);
    if (st != 0)
      FAIL("python3 rejected the JSON of '%s':\n%s", topologies[i], r.out);
  }
  return 0;
}
