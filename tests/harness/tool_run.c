/* SPDX-License-Identifier: Apache-2.0
 * Running a built tool from a CPU test (tool_run.h). */
#include "harness/tool_run.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/task.h"

char* tool_run_slurp(FILE* f) {
  fflush(f);
  long n = ftell(f);
  ASSERT(n >= 0);
  char* buf = malloc((size_t)n + 1);
  ASSERT(buf != NULL);
  rewind(f);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  return buf;
}

tool_run_t tool_run(const char* path, const char* args) {
  char copy[1024];
  char* argv[64];
  int argc = 0;
  snprintf(copy, sizeof copy, "%s", args);
  argv[argc++] = (char*)path;
  for (char* tok = strtok(copy, " "); tok != NULL && argc < 63; tok = strtok(NULL, " "))
    argv[argc++] = tok;
  argv[argc] = NULL;

  FILE* out = tmpfile();
  FILE* err = tmpfile();
  ASSERT(out != NULL && err != NULL);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    unsetenv("RANK");
    unsetenv("WORLD_SIZE");
    dup2(fileno(out), 1);
    dup2(fileno(err), 2);
    execv(path, argv);
    _exit(127);
  }
  int st = 0;
  ASSERT(waitpid(pid, &st, 0) == pid);
  tool_run_t r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  fseek(out, 0, SEEK_END);
  fseek(err, 0, SEEK_END);
  r.out = tool_run_slurp(out);
  r.err = tool_run_slurp(err);
  fclose(out);
  fclose(err);
  if (r.status == 127)
    FAIL("could not run %s", path);
  return r;
}
