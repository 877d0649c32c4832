/* SPDX-License-Identifier: Apache-2.0
 * Helpers shared by the libFuzzer targets (tests/fuzz/README.md): a property check that aborts
 * with a message (libFuzzer then saves the input), a byte reader over the fuzz input, and an
 * allocation counter built on the sanitizer allocator hooks, so that a target can assert that
 * a parser allocates nothing whatever the bytes. */
#ifndef MIXCOMM_FUZZ_COMMON_H_
#define MIXCOMM_FUZZ_COMMON_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/allocator_interface.h>

/* A property that must hold for every input. */
#define FUZZ_CHECK(cond, ...)                                             \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "property failed at %s:%d: %s: ", __FILE__, __LINE__, \
              #cond);                                                     \
      fprintf(stderr, __VA_ARGS__);                                       \
      fprintf(stderr, "\n");                                              \
      abort();                                                            \
    }                                                                     \
  } while (0)

/* Sequential reads from the input; past the end every read gives 0 (so any input is valid). */
typedef struct fuzz_in {
  const uint8_t* p;
  size_t n;
} fuzz_in_t;

static inline uint8_t fuzz_u8(fuzz_in_t* in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

static inline uint32_t fuzz_u32(fuzz_in_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    v = v << 8 | fuzz_u8(in);
  return v;
}

/* Up to max bytes (fewer at the end of the input); returns how many. */
static inline size_t fuzz_bytes(fuzz_in_t* in, void* out, size_t max) {
  size_t k = max < in->n ? max : in->n;
  memcpy(out, in->p, k);
  in->p += k;
  in->n -= k;
  return k;
}

/* Allocation counting: every malloc-family call of this thread while counting is on. (Only
 * this thread: libFuzzer's own threads allocate at times of their choosing, for instance when
 * the RSS watcher starts and glibc sets up its thread-local storage.) */
static size_t fuzz_alloc_calls, fuzz_alloc_bytes;
static _Thread_local int fuzz_counting;

static void fuzz_on_malloc(const volatile void* ptr, size_t size) {
  (void)ptr;
  if (fuzz_counting) {
    fuzz_alloc_calls++;
    fuzz_alloc_bytes += size;
  }
}

static void fuzz_on_free(const volatile void* ptr) { (void)ptr; }

static inline void fuzz_alloc_hooks_install(void) {
  static int done;
  if (!done) {
    __sanitizer_install_malloc_and_free_hooks(fuzz_on_malloc, fuzz_on_free);
    done = 1;
  }
}

static inline void fuzz_count_start(void) {
  fuzz_alloc_hooks_install();
  fuzz_alloc_calls = 0;
  fuzz_alloc_bytes = 0;
  fuzz_counting = 1;
}

static inline void fuzz_count_stop(void) { fuzz_counting = 0; }

/* A message that is one NUL-terminated line of printable ASCII (what the library hands to
 * logs and error strings must never carry control characters from the outside). */
static inline int fuzz_printable(const char* s, size_t cap) {
  size_t n = strnlen(s, cap);
  if (n == cap)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
      return 0;
  return 1;
}

#endif
