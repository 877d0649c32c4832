/* SPDX-License-Identifier: Apache-2.0
 * Start the ranks of a tool or test: either this process forks `world_size` ranks itself
 * (each gets its rank and a loopback rendezvous port), or it already is one rank of a job
 * started by a launcher (torchrun-style RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE /
 * MASTER_ADDR / MASTER_PORT in the environment). Children are forked before any CUDA call. */
#ifndef MIXCOMM_TOOLS_SPAWN_H_
#define MIXCOMM_TOOLS_SPAWN_H_

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spawn_rank {
  int rank, world_size;
  int local_rank, local_size; /* as the launcher says, or rank % local_size when forked */
  /* Index of this process among the ranks on its host, to pick a GPU (host_rank % ngpu): the
   * world rank when forked (every rank, of every emulated node, runs on this host, so nodes
   * get distinct GPUs whenever there are enough), LOCAL_RANK under a launcher. */
  int host_rank;
  mixcomm_tcp_options_t tcp;  /* where to rendezvous */
} spawn_rank_t;

/* Run fn once per rank. Forked: returns 0 if every rank exited 0, else the number of failed
 * ranks; a rank running past timeout_s is killed (and then all others). Under a launcher: runs
 * fn for this process's rank and returns its result. */
typedef int (*spawn_fn)(const spawn_rank_t* r, void* arg);
int spawn_ranks(int world_size, int local_size, int timeout_s, spawn_fn fn, void* arg);

/* Forked children, waited for with a time limit: the piece spawn_ranks and the CPU tests'
 * run_ranks share. child(index, arg) runs in each of n forked processes and returns the exit
 * status of its process (0..255). */
typedef struct spawn_children {
  int n;
  int (*child)(int index, void* arg);
  void* arg;
  long long timeout_ms; /* a child still running then is killed (SIGKILL) and fails */
  int end_all_on_failure; /* the first child that fails gets SIGTERM sent to the others */
  /* Optional: told of each child as it ends, with its waitpid status, or -1 just before it is
   * killed for the time limit. */
  void (*on_end)(int index, int wait_status, void* arg);
  const char* fork_what; /* perror's text when a fork fails */
} spawn_children_t;

/* Returns the number of children that failed (a non-zero exit, a signal, the time limit), or
 * n when a fork failed (the children already started are killed). */
int spawn_children(const spawn_children_t* c);

/* A free TCP port on loopback (bound and released), -1 on failure. */
int spawn_free_port(void);

struct sockaddr_in;
/* The IPv4 loopback address with `port` (0: any), to bind or connect to. */
void spawn_loopback_address(struct sockaddr_in* a, int port);

/* 1 if the environment describes a launcher-started rank (RANK and WORLD_SIZE set). */
int spawn_under_launcher(void);

#ifdef __cplusplus
}
#endif

#endif
