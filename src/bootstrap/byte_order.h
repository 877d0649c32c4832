/* SPDX-License-Identifier: Apache-2.0
 * Big-endian integers in byte buffers, for the bootstrap's wire formats (tcp_wire.c, the fd
 * exchange's hello): the same bytes whatever the host, read without alignment. */
#ifndef MIXCOMM_BOOTSTRAP_BYTE_ORDER_H_
#define MIXCOMM_BOOTSTRAP_BYTE_ORDER_H_

#include <stdint.h>

static inline void mixcomm__put_be32(unsigned char* p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static inline uint32_t mixcomm__get_be32(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void mixcomm__put_be64(unsigned char* p, uint64_t v) {
  mixcomm__put_be32(p, (uint32_t)(v >> 32));
  mixcomm__put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t mixcomm__get_be64(const unsigned char* p) {
  return ((uint64_t)mixcomm__get_be32(p) << 32) | mixcomm__get_be32(p + 4);
}

#endif
