/* SPDX-License-Identifier: Apache-2.0
 * Fault scenarios that hit handler creation: a rank killed right before or half-way
 * through mixcomm_handler_create, or while autotune measures, and a rank whose node-workspace
 * mapping fails; the rank sides and the judges. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gpu/faults/faults.h"

/* Survivor side shared by the scenarios whose fault hits creation: create; if that succeeded,
 * one call (one-shot), which must fail. */
static void survive_creation(rank_ctx_t* c, int autotune) {
  double ms = 0;
  const double t0 = now_ms();
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, autotune, &ms);
  c->me->create_ms = ms;
  if (st != MIXCOMM_SUCCESS) {
    record_error(c, st, -1, AT_CREATE, t0, mixcomm_last_error());
  } else {
    notef(c, "creation succeeded after %.0f ms; running a call", ms);
    const int64_t rows = rows_in_for(c, c->ti->ops[0], 8);
    if (unchecked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, rows, 1024) ==
        MIXCOMM_SUCCESS)
      notef(c, "the call after creation succeeded although a rank is dead");
  }
  report_and_shutdown(c, c->opt->bs_timeout_ms + c->opt->timeout_ms + c->opt->margin_ms);
}

/* (a) The victim dies right before mixcomm_handler_create (its bootstrap is connected). */
void rank_kill_before_create(rank_ctx_t* c) {
  if (my_role(c) == ROLE_VICTIM)
    die_now(c, "right before mixcomm_handler_create");
  survive_creation(c, 0);
}

/* (a') The victim dies half-way through its creation (by a plain creation's duration). */
void rank_kill_in_create(rank_ctx_t* c) {
  if (calibrate(c) != 0)
    return;
  if (my_role(c) == ROLE_VICTIM) {
    double delay = c->me->plain_create_ms * 0.5;
    if (delay < 1)
      delay = 1;
    c->me->kill_delay_ms = delay;
    pthread_t t;
    pthread_create(&t, NULL, killer_thread, &delay);
    create_handler(c, c->opt->timeout_ms, 0, NULL);
    /* Still alive: creation was quicker than the delay; die idle. */
    sleep_ms(delay * 4 + 1000);
    die_now(c, "after creation (the killer thread was late)");
  }
  survive_creation(c, 0);
}

/* Point c->cache_dir at <scenario cache dir>/<sub>, a directory made fresh for one creation,
 * and check that it is empty (rank 0 alone reads the cache, but every rank checks). Returns 0
 * if it is empty, -1 otherwise (noted). */
static int fresh_cache_dir(rank_ctx_t* c, const char* base, const char* sub) {
  char dir[sizeof c->cache_dir];
  if (snprintf(dir, sizeof dir, "%s/%s", base, sub) >= (int)sizeof dir) {
    notef(c, "cache dir path too long");
    return -1;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    notef(c, "cannot make the cache dir %s: %s", dir, strerror(errno));
    return -1;
  }
  memcpy(c->cache_dir, dir, sizeof dir);
  DIR* d = opendir(dir);
  if (d == NULL) {
    notef(c, "cannot open the cache dir %s: %s", dir, strerror(errno));
    return -1;
  }
  int entries = 0;
  for (struct dirent* e; (e = readdir(d)) != NULL;)
    entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  if (entries != 0) {
    notef(c, "the cache dir %s is not empty: autotune would not measure", dir);
    return -1;
  }
  return 0;
}

/* (b) The victim dies during autotune at creation. A fixed delay cannot work: how long autotune
 * takes depends on the GPU, the topology (ops, modes, buckets) and how many ranks share the
 * GPU, and on an H100 it can be over within ~100 ms. So the scenario measures it, in the same
 * run, on the same ranks:
 *   1. calibrate(): a plain creation (no autotune) takes P ms;
 *   2. a throw-away creation with autotune takes T ms (every rank; its own fresh, empty cache
 *      dir "probe", so it really measures; rank 0 writes its result there);
 *   3. the real creation with autotune (another fresh, empty cache dir "kill", which nobody has
 *      written, so the victim and everybody else measure again); a thread on the victim
 *      SIGKILLs it P + 0.3 * (T - P) ms after it entered creation, i.e. when the plain part is
 *      over and about a third of the measurements are done.
 * The fraction is below one half on purpose: an early kill is harmless (it lands in the plain
 * part of creation, which fails on every survivor just the same), a late one lets creation
 * succeed; and the probe, being the first tuned creation, includes one-time costs (first
 * launches of the kernels of every op and mode), so it tends to overestimate T - P. The kill
 * is late only if the real autotune is over 3x faster than the measured one. */
void rank_kill_in_autotune(rank_ctx_t* c) {
  char base[sizeof c->cache_dir];
  memcpy(base, c->cache_dir, sizeof base);
  if (calibrate(c) != 0)
    return;
  if (fresh_cache_dir(c, base, "probe") != 0)
    return;
  double tuned = 0;
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, 1, &tuned);
  if (st != MIXCOMM_SUCCESS) {
    notef(c, "tuned calibration create failed: %s", mixcomm_last_error());
    return;
  }
  c->me->tuned_create_ms = tuned;
  st = mixcomm_handler_shutdown(c->h);
  c->h = NULL;
  if (st != MIXCOMM_SUCCESS) {
    notef(c, "tuned calibration shutdown failed: %s", mixcomm_last_error());
    return;
  }
  if (fresh_cache_dir(c, base, "kill") != 0)
    return;
  if (my_role(c) == ROLE_VICTIM) {
    const double plain = c->me->plain_create_ms;
    double delay = plain + 0.3 * (tuned > plain ? tuned - plain : 0.0);
    if (delay < 1)
      delay = 1;
    c->me->kill_delay_ms = delay;
    pthread_t t;
    pthread_create(&t, NULL, killer_thread, &delay);
    double ms = 0;
    create_handler(c, c->opt->timeout_ms, 1, &ms);
    notef(c, "autotuned creation finished after %.0f ms, before the kill", ms);
    sleep_ms(delay * 4 + 1000);
    die_now(c, "after creation (the killer thread was late)");
  }
  survive_creation(c, 1);
}

/* (i) The culprit's node-workspace mapping fails (MIXCOMM_DEBUG_FAIL_MAP, as a failed
 * cuMemSetAccess would): every rank's creation must fail at once, naming it. */
void rank_map_fails(rank_ctx_t* c) {
  char v[16];
  snprintf(v, sizeof v, "%d", c->ti->victim);
  setenv("MIXCOMM_DEBUG_FAIL_MAP", v, 1);
  double ms = 0;
  const double t0 = now_ms();
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, 0, &ms);
  unsetenv("MIXCOMM_DEBUG_FAIL_MAP");
  c->me->create_ms = ms;
  if (st != MIXCOMM_SUCCESS)
    record_error(c, st, -1, AT_CREATE, t0, mixcomm_last_error());
  else
    notef(c, "creation succeeded although rank %d's mapping failed", c->ti->victim);
  c->me->state = ST_REPORTED;
}

int judge_kill_before_create(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                             const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  judge_named(ti, sh, j, ti->victim, 1, 0,
              (o->bs_timeout_ms > o->timeout_ms ? o->bs_timeout_ms : o->timeout_ms) + o->margin_ms);
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

int judge_kill_in_create(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                         const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const double delay = sh->r[ti->victim].kill_delay_ms;
  judge_named(ti, sh, j, ti->victim, 1, 0,
              delay + o->bs_timeout_ms + o->timeout_ms + o->margin_ms);
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

int judge_kill_in_autotune(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                           const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const rank_result_t* v = &sh->r[ti->victim];
  judge_named(ti, sh, j, ti->victim, 0, 0,
              v->kill_delay_ms + o->bs_timeout_ms + o->timeout_ms + o->margin_ms);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role == ROLE_SURVIVOR && m->status != 0 && m->where != AT_CREATE)
      jfail(j,
            "rank %d: creation succeeded: the kill (%.0f ms in) landed after autotune (a plain "
            "creation took %.0f ms, a tuned one %.0f ms)",
            r, v->kill_delay_ms, v->plain_create_ms, v->tuned_create_ms);
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

int judge_map_fails(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                    const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const double bound = o->bs_timeout_ms / 2.0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status == 0) {
      jfail(j, "rank %d: creation succeeded%s%s", r, m->note[0] ? ": " : "", m->note);
      continue;
    }
    if (m->where != AT_CREATE)
      jfail(j, "rank %d failed at %s, not in creation", r, where_name(m->where));
    if (!names_rank(m->msg, ti->victim) || strstr(m->msg, "MIXCOMM_DEBUG_FAIL_MAP") == NULL)
      jfail(j, "rank %d's error does not name rank %d's injected failure: %.300s", r, ti->victim,
            m->msg);
    if (m->detect_ms > bound)
      jfail(j, "rank %d's creation took %.0f ms to fail (limit %.0f ms, half the bootstrap "
            "timeout)", r, m->detect_ms, bound);
  }
  return j->ok;
}
