/* SPDX-License-Identifier: Apache-2.0
 * A consumer of mixcomm that needs no GPU: checks that the header and the library it linked
 * agree on the version and that the library resolves a topology (8 ranks, TP 4 x DP 2). */
#include <stdio.h>

#include <mixcomm.h>

int main(void) {
  if (mixcomm_version() != MIXCOMM_VERSION_CODE) {
    fprintf(stderr, "consumer: header %d but library %d\n", MIXCOMM_VERSION_CODE,
            mixcomm_version());
    return 1;
  }
  mixcomm_topology_t in = {0}, out;
  in.world_size = 8;
  in.local_size = 8;
  in.inter_size = 1;
  in.local_tp_size = 4;
  if (mixcomm_topology_resolve(&in, &out) != MIXCOMM_SUCCESS) {
    fprintf(stderr, "consumer: %s\n", mixcomm_last_error());
    return 1;
  }
  printf("consumer: mixcomm %d.%d.%d, 8 ranks = tp %d x dp %d\n", MIXCOMM_VERSION_MAJOR,
         MIXCOMM_VERSION_MINOR, MIXCOMM_VERSION_PATCH, out.tp_size, out.dp_size);
  return out.tp_size == 4 && out.dp_size == 2 ? 0 : 1;
}
