/* SPDX-License-Identifier: Apache-2.0
 * The expectations the scenarios' judges share (parent side, after every rank has
 * exited): clean exits, bounded shutdowns, survivors' errors naming the culprit in time. */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "gpu/faults/faults.h"

void jfail(judge_t* j, const char* fmt, ...) {
  j->ok = 0;
  if (j->used + 4 >= sizeof j->why)
    return;
  if (j->used > 0)
    j->used += (size_t)snprintf(j->why + j->used, sizeof j->why - j->used, "; ");
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(j->why + j->used, sizeof j->why - j->used, fmt, ap);
  va_end(ap);
  if (w > 0)
    j->used += (size_t)w < sizeof j->why - j->used ? (size_t)w : sizeof j->why - j->used - 1;
}

/* Whether msg blames rank k: "rank k" (also "world rank k", "local rank k": one node) not
 * followed by another digit, and not "rank k of N", which is how a rank describes itself. */
int names_rank(const char* msg, int k) {
  for (const char* p = strstr(msg, "rank "); p != NULL; p = strstr(p + 5, "rank ")) {
    const char* q = p + 5;
    if (!isdigit((unsigned char)*q))
      continue;
    char* end;
    long v = strtol(q, &end, 10);
    if (v != k)
      continue;
    if (strncmp(end, " of ", 4) == 0)
      continue;
    return 1;
  }
  return 0;
}

int exited_ok(int st) { return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0; }
int was_killed(int st) { return st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL; }

void describe_exit(char* buf, size_t size, int st) {
  if (st < 0)
    snprintf(buf, size, "killed by the watchdog (scenario limit)");
  else if (WIFEXITED(st))
    snprintf(buf, size, "exit %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    snprintf(buf, size, "signal %d", WTERMSIG(st));
  else
    snprintf(buf, size, "status 0x%x", st);
}

/* Exits: the victim killed itself; everybody else exited 0 after finishing its scenario. */
void judge_exits(const topo_info_t* ti, const shared_t* sh, const int* exits, judge_t* j) {
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    char e[96];
    describe_exit(e, sizeof e, exits[r]);
    if (m->role == ROLE_VICTIM) {
      if (!was_killed(exits[r]))
        jfail(j, "victim rank %d: %s, expected SIGKILL", r, e);
    } else if (!exited_ok(exits[r]) || m->state != ST_FINISHED) {
      jfail(j, "rank %d did not finish cleanly (%s, state %d%s%s)", r, e, m->state,
            m->note[0] ? ": " : "", m->note);
    }
  }
}

/* Survivors' shutdown: returned (an error is fine) within the bootstrap timeout + margin. */
void judge_shutdown(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                    judge_t* j, int must_succeed) {
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role == ROLE_VICTIM || !m->had_handler)
      continue;
    if (!m->shutdown_done)
      jfail(j, "rank %d never returned from shutdown", r);
    else if (m->shutdown_ms > o->bs_timeout_ms + o->margin_ms)
      jfail(j, "rank %d: shutdown took %.0f ms", r, m->shutdown_ms);
    else if (must_succeed && m->shutdown_status != MIXCOMM_SUCCESS)
      jfail(j, "rank %d: shutdown %s: %s", r, short_status(m->shutdown_status), m->shutdown_msg);
  }
}

/* Every survivor observed an error naming `culprit` (strict) or naming some rank, with at least
 * one naming the culprit (lenient), within bound_ms. allowed: bit mask of accepted statuses
 * (0: any error). */
void judge_named(const topo_info_t* ti, const shared_t* sh, judge_t* j, int culprit,
                 int strict, unsigned allowed, double bound_ms) {
  int naming = 0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role != ROLE_SURVIVOR)
      continue;
    if (m->status == 0) {
      jfail(j, "rank %d saw no error%s%s", r, m->note[0] ? ": " : "", m->note);
      continue;
    }
    if (allowed && !(allowed & (1u << m->status)))
      jfail(j, "rank %d: %s, not an expected status", r, short_status(m->status));
    const int names_culprit = m->peer == culprit || names_rank(m->msg, culprit);
    const int names_someone = m->peer >= 0 || strstr(m->msg, "rank ") != NULL;
    naming += names_culprit;
    if (strict && !names_culprit)
      jfail(j, "rank %d's error does not name rank %d (peer %d): %.300s", r, culprit, m->peer,
            m->msg);
    else if (!strict && !names_someone)
      jfail(j, "rank %d's error names no rank: %.300s", r, m->msg);
    if (m->detect_ms > bound_ms)
      jfail(j, "rank %d took %.0f ms to see the error (limit %.0f ms)", r, m->detect_ms,
            bound_ms);
    if (m->wrong)
      jfail(j, "rank %d: %lld wrong elements in the checked calls", r, m->wrong);
  }
  if (!strict && naming == 0)
    jfail(j, "no survivor names rank %d", culprit);
}
