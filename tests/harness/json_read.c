/* SPDX-License-Identifier: Apache-2.0
 * A small strict JSON reader for the tests (json_read.h): RFC 8259 syntax, a recursive descent
 * with a depth limit; a test fails (FAIL) where the text is not JSON or lacks what it needs. */
#include "harness/json_read.h"

#include <stdlib.h>
#include <string.h>

#include "harness/task.h"

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

/* The whole of p's text as exactly one JSON value (whitespace around it allowed); NULL, with
 * p->error and p->pos saying why and where, if it is not. */
static jval_t* jparse_document(jparser_t* p) {
  jval_t* v = jparse_value(p, 0);
  if (v == NULL)
    return NULL;
  jskip(p);
  if (p->s[p->pos] != '\0') {
    p->error = "text after the value";
    return NULL;
  }
  return v;
}

jval_t* json_parse(const char* text) {
  jparser_t p = {text, 0, NULL};
  jval_t* v = jparse_document(&p);
  if (v == NULL)
    FAIL("invalid JSON at byte %zu (%s): ...%.60s", p.pos, p.error ? p.error : "?",
         text + (p.pos > 20 ? p.pos - 20 : 0));
  return v;
}

jval_t* jget(const jval_t* obj, const char* key) {
  if (obj == NULL || obj->type != J_OBJ)
    FAIL("looking up \"%s\" in something that is not an object", key);
  for (int i = 0; i < obj->n; i++)
    if (!strcmp(obj->keys[i], key))
      return obj->items[i];
  return NULL;
}

long long jint(const jval_t* obj, const char* key) {
  const jval_t* v = jget(obj, key);
  if (v == NULL)
    FAIL("key \"%s\" missing", key);
  if (v->type != J_NUM || !v->is_int)
    FAIL("key \"%s\" is not an integer", key);
  return v->inum;
}

const char* jstr(const jval_t* obj, const char* key) {
  const jval_t* v = jget(obj, key);
  if (v == NULL)
    FAIL("key \"%s\" missing", key);
  if (v->type != J_STR)
    FAIL("key \"%s\" is not a string", key);
  return v->str;
}

const jval_t* jarr(const jval_t* obj, const char* key) {
  const jval_t* v = jget(obj, key);
  if (v == NULL || v->type != J_ARR)
    FAIL("key \"%s\" missing or not an array", key);
  return v;
}

/* Whether array arr holds the string s. */
int jarr_has(const jval_t* arr, const char* s) {
  for (int i = 0; i < arr->n; i++)
    if (arr->items[i]->type == J_STR && !strcmp(arr->items[i]->str, s))
      return 1;
  return 0;
}

/* The parser itself must reject what is not JSON, or the checks below prove nothing. */
int json_rejects(const char* text) {
  jparser_t p = {text, 0, NULL};
  return jparse_document(&p) == NULL;
}
