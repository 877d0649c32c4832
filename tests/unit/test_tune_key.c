/* SPDX-License-Identifier: Apache-2.0
 * Tests of the autotune cache's key (every input changes it, no input breaks its structure)
 * and of where the cache file lives (config, MIXCOMM_CACHE_DIR, XDG_CACHE_HOME, HOME, and the
 * ways each disables the cache). Expected texts and paths are written out here. */
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness/task.h"
#include "tune/tune.h"

/* ---------------------------------------------------------------------------------------- */
/* Key and path                                                                              */
/* ---------------------------------------------------------------------------------------- */

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
      case 0: c.topo = resolved_topology(32, 8, 4, 2, 2, 2); break;         /* world, inter, idp */
      case 1: c.topo = resolved_topology(16, 4, 4, 1, 2, 2); break;         /* local, ldp, idp */
      case 2: c.topo = resolved_topology(16, 8, 2, 4, 2, 1); break;         /* ltp, ldp */
      case 3: c.topo = resolved_topology(16, 8, 4, 2, 1, 2); break;         /* itp, idp */
      case 4: c.topo = resolved_topology(16, 8, 8, 1, 2, 1); break;         /* ldp only with ltp */
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

  /* Each step sets one variable (on top of the steps before); the path from the environment
   * must then lie in dir (NULL: not looked at). */
  static const struct {
    const char* var;
    const char* value;
    const char* dir;
  } steps[] = {
      {"HOME", "/home/tester", "/home/tester/.cache/mixcomm"},
      {"XDG_CACHE_HOME", "/xdg/cache", "/xdg/cache/mixcomm"},
      /* Empty or relative XDG_CACHE_HOME is ignored (XDG base directory rules). */
      {"XDG_CACHE_HOME", "", "/home/tester/.cache/mixcomm"},
      {"XDG_CACHE_HOME", "relative/cache", "/home/tester/.cache/mixcomm"},
      {"XDG_CACHE_HOME", "/xdg/cache/", NULL},
      {"MIXCOMM_CACHE_DIR", "/env/dir", "/env/dir"},
  };
  unsetenv("MIXCOMM_CACHE_DIR");
  unsetenv("XDG_CACHE_HOME");
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    setenv(steps[i].var, steps[i].value, 1);
    if (steps[i].dir == NULL)
      continue;
    ASSERT_OK(mixcomm__tune_cache_path(NULL, &key, p, sizeof p));
    check_path_shape(p, steps[i].dir);
  }
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
