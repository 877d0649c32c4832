/* SPDX-License-Identifier: Apache-2.0
 * The parent of a fault scenario: forks its ranks, watches them against the
 * scenario's hard limit (the parent never touches CUDA), judges what they reported and prints
 * the scenario's line. */
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "gpu/harness.h"
#include "gpu/faults/faults.h"

int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void appendf(char* buf, size_t size, size_t* used, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char* buf, size_t size, size_t* used, const char* fmt, ...) {
  if (*used + 1 >= size)
    return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + *used, size - *used, fmt, ap);
  va_end(ap);
  if (w > 0)
    *used += (size_t)w < size - *used ? (size_t)w : size - *used - 1;
}

/* "r0 TIMEOUT->r3 at sync in 2051 ms, shutdown BOOTSTRAP 2 ms, r1 ..., r3 killed" */
static void summarize(const topo_info_t* ti, const shared_t* sh, const int* exits, char* buf,
                      size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    appendf(buf, size, &used, "%sr%d", r ? ", " : "", r);
    if (m->role != ROLE_SURVIVOR)
      appendf(buf, size, &used, " %s", role_name(m->role));
    if (m->role == ROLE_VICTIM) {
      char e[96];
      describe_exit(e, sizeof e, exits[r]);
      appendf(buf, size, &used, " %s", was_killed(exits[r]) ? "killed" : e);
      if (m->kill_delay_ms > 0) {
        appendf(buf, size, &used, " %.0f ms into creation (a plain creation takes %.0f ms",
                m->kill_delay_ms, m->plain_create_ms);
        if (m->tuned_create_ms > 0)
          appendf(buf, size, &used, ", a tuned one %.0f ms", m->tuned_create_ms);
        appendf(buf, size, &used, ")");
      }
      continue;
    }
    if (m->status != 0) {
      appendf(buf, size, &used, " %s", short_status(m->status));
      if (m->peer >= 0)
        appendf(buf, size, &used, "->r%d", m->peer);
      appendf(buf, size, &used, " at %s in %.0f ms", where_name(m->where), m->detect_ms);
    } else {
      appendf(buf, size, &used, " no error");
    }
    if (m->calls_ok)
      appendf(buf, size, &used, ", %d calls correct", m->calls_ok);
    if (m->checks_ok + m->checks_failed)
      appendf(buf, size, &used, ", %d/%d checks", m->checks_ok, m->checks_ok + m->checks_failed);
    if (m->shutdown_done)
      appendf(buf, size, &used, ", shutdown %s %.0f ms",
              m->shutdown_status ? short_status(m->shutdown_status) : "ok", m->shutdown_ms);
  }
}

/* The hard limit of one scenario: late-peer waits --late-ms on top. */
int scenario_limit_s(const options_t* o, const scenario_t* sc) {
  return strcmp(sc->name, "late-peer") == 0 ? o->limit_s + o->late_ms / 1000 : o->limit_s;
}

int run_scenario(const options_t* o, const topo_info_t* ti, const scenario_t* sc,
                 const char* tmpdir) {
  const int W = ti->world;
  shared_t* sh = harness_map_shared(sizeof *sh, "faults: mmap");
  if (sh == NULL)
    return 0;
  sc->assign(ti, sh);
  rank_ctx_t base;
  memset(&base, 0, sizeof base);
  base.opt = o;
  base.sc = sc;
  base.ti = ti;
  base.sh = sh;
  base.world = W;
  const int port = spawn_free_port();
  snprintf(base.tcp.addr, sizeof base.tcp.addr, "127.0.0.1");
  base.tcp.port = port;
  snprintf(base.tcp.token, sizeof base.tcp.token, "faults-%d-%d", (int)getpid(), port);
  snprintf(base.cache_dir, sizeof base.cache_dir, "%s/%s-%d", tmpdir, sc->name, W);
  mkdir(base.cache_dir, 0700);

  pid_t pids[MAX_RANKS];
  int exits[MAX_RANKS];
  const double t0 = now_ms();
  fflush(stdout);
  fflush(stderr);
  for (int r = 0; r < W; r++) {
    exits[r] = -1;
    pids[r] = fork();
    if (pids[r] < 0) {
      perror("faults: fork");
      for (int k = 0; k < r; k++)
        kill(pids[k], SIGKILL);
      for (int k = 0; k < r; k++)
        waitpid(pids[k], NULL, 0);
      munmap(sh, sizeof *sh);
      return 0;
    }
    if (pids[r] == 0) {
      alarm((unsigned)scenario_limit_s(o, sc) + 5); /* backstop: the parent kills first */
      rank_ctx_t c = base;
      c.rank = r;
      c.me = &sh->r[r];
      int rc = 3;
      if (rank_setup(&c) == 0) {
        sc->rank(&c);
        if (c.h != NULL)
          shutdown_handler(&c);
        rc = 0;
      } else {
        c.me->setup_failed = 1;
      }
      rank_teardown(&c);
      c.me->state = ST_FINISHED;
      fflush(stdout);
      fflush(stderr);
      _exit(rc);
    }
  }
  int remaining = W;
  const double deadline = t0 + scenario_limit_s(o, sc) * 1000.0;
  while (remaining > 0) {
    for (int r = 0; r < W; r++) {
      if (pids[r] <= 0)
        continue;
      int st;
      pid_t p = waitpid(pids[r], &st, WNOHANG);
      if (p == pids[r]) {
        exits[r] = st;
        pids[r] = 0;
        remaining--;
      }
    }
    if (remaining == 0)
      break;
    if (now_ms() > deadline) {
      for (int r = 0; r < W; r++) {
        if (pids[r] > 0) {
          kill(pids[r], SIGKILL);
          waitpid(pids[r], NULL, 0);
          exits[r] = -1;
          pids[r] = 0;
          remaining--;
        }
      }
      break;
    }
    sleep_ms(5);
  }
  const double took = now_ms() - t0;

  judge_t j;
  memset(&j, 0, sizeof j);
  j.ok = 1;
  for (int r = 0; r < W; r++)
    if (sh->r[r].setup_failed)
      jfail(&j, "rank %d could not set up (%s)", r, sh->r[r].note);
  const int ok = j.ok ? sc->judge(o, ti, sh, exits, &j) : 0;
  char summary[2048];
  summarize(ti, sh, exits, summary, sizeof summary);
  if (ok)
    printf("fault %s: ok (%s; %.1f s)\n", sc->name, summary, took / 1000.0);
  else
    printf("fault %s: FAIL (%s | %s; %.1f s)\n", sc->name, j.why, summary, took / 1000.0);
  if (!ok || o->verbose) {
    for (int r = 0; r < W; r++) {
      const rank_result_t* m = &sh->r[r];
      char e[96];
      describe_exit(e, sizeof e, exits[r]);
      printf("    rank %d (%s, %s): %s%s%s%s%s%s%s\n", r, role_name(m->role), e,
             m->status ? short_status(m->status) : "no error", m->msg[0] ? ": " : "", m->msg,
             m->note[0] ? " [notes: " : "", m->note, m->note[0] ? "]" : "",
             m->shutdown_msg[0] ? " [shutdown error]" : "");
    }
  }
  fflush(stdout);
  nftw(base.cache_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  munmap(sh, sizeof *sh);
  return ok;
}
