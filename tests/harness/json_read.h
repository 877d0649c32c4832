/* SPDX-License-Identifier: Apache-2.0
 * A small strict JSON reader for the tests that read a tool's JSON (tests/harness/json_read.c):
 * numbers kept as double and, when whole, as integer; strings unescaped to UTF-8. */
#ifndef MIXCOMM_TEST_JSON_READ_H_
#define MIXCOMM_TEST_JSON_READ_H_


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

/* The whole text must be exactly one JSON value (whitespace around it allowed); fails the test
 * otherwise, saying where. */
jval_t* json_parse(const char* text);

/* obj's member key (NULL when absent; obj must be an object). */
jval_t* jget(const jval_t* obj, const char* key);

/* obj's member key, which must exist and be an integer, a string, an array. */
long long jint(const jval_t* obj, const char* key);
const char* jstr(const jval_t* obj, const char* key);
const jval_t* jarr(const jval_t* obj, const char* key);

/* Whether array arr holds the string s. */
int jarr_has(const jval_t* arr, const char* s);

/* 1 if the text is not exactly one JSON value (the reader's own test: it must reject what is not
 * JSON, or the checks built on it prove nothing). */
int json_rejects(const char* text);

#endif
