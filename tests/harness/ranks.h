/* SPDX-License-Identifier: Apache-2.0
 * Run a function as N ranks in N forked processes and collect their results. */
#ifndef MIXCOMM_TEST_RANKS_H_
#define MIXCOMM_TEST_RANKS_H_

/* fn returns 0 for success. Returns the number of ranks that failed (non-zero exit, signal or
 * timeout), killing all ranks if timeout_ms passes. statuses (optional, n entries) receive each
 * rank's exit code (128 + signal when killed, -1 on timeout). */
typedef int (*rank_fn)(int rank, int n, void* arg);
int run_ranks(int n, rank_fn fn, void* arg, int timeout_ms, int* statuses);

/* A free TCP port on loopback (bound and released; good enough for tests). */
int free_tcp_port(void);

#endif
