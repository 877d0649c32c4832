/* SPDX-License-Identifier: Apache-2.0
 * The registry of live handlers, so a call on a handler that was shut down (or shut down twice)
 * is a clear INVALID_USAGE error instead of a read of freed memory. Every other handler file
 * builds on it; it calls none of them. */
#include <pthread.h>
#include <stdlib.h>

#include "core/error.h"
#include "handler/handler.h"

typedef struct live_entry {
  const mixcomm_handler_t* h;
  struct live_entry* next;
} live_entry_t;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static live_entry_t* live_list;

int mixcomm__handler_register(const mixcomm_handler_t* h) {
  live_entry_t* e = malloc(sizeof *e);
  if (e == NULL)
    return 0;
  e->h = h;
  pthread_mutex_lock(&live_lock);
  e->next = live_list;
  live_list = e;
  pthread_mutex_unlock(&live_lock);
  return 1;
}

void mixcomm__handler_unregister(const mixcomm_handler_t* h) {
  pthread_mutex_lock(&live_lock);
  for (live_entry_t** p = &live_list; *p != NULL; p = &(*p)->next) {
    if ((*p)->h == h) {
      live_entry_t* dead = *p;
      *p = dead->next;
      free(dead);
      break;
    }
  }
  pthread_mutex_unlock(&live_lock);
}

int mixcomm__handler_live(const mixcomm_handler_t* h) {
  int found = 0;
  pthread_mutex_lock(&live_lock);
  for (live_entry_t* e = live_list; e != NULL && !found; e = e->next)
    found = e->h == h;
  pthread_mutex_unlock(&live_lock);
  return found;
}

mixcomm_status_t mixcomm__handler_usable(const mixcomm_handler_t* h, const char* what) {
  if (h == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%s: handler is NULL", what);
  if (!mixcomm__handler_live(h))
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "%s: not a live handler (used after shutdown?)", what);
  return MIXCOMM_SUCCESS;
}
