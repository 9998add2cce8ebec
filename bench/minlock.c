// SPDX-License-Identifier: MIT
// minlock: the floor for an uncontended Redis lock around a command — what the hardware costs.
//
//   minlock PORT KEY CMD [ARG...]
// One TCP connection to 127.0.0.1:PORT (numeric, no resolver), `SET KEY TOKEN NX PX 30000`,
// fork+execvp CMD, wait, then a compare-and-delete EVAL: two round trips, no renewal, no
// waiting, no metadata. bench/run-all.sh builds it statically. Not a tool: a yardstick.
#define _GNU_SOURCE
#include "local_redis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int roundtrip(int fd, const char* req, char* reply, size_t cap) {
  size_t len = strlen(req);
  if (write(fd, req, len) != (ssize_t)len) return -1;
  ssize_t n = read(fd, reply, cap - 1);
  if (n <= 0) return -1;
  reply[n] = '\0';
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: minlock PORT KEY CMD [ARG...]\n");
    return 64;
  }
  int fd = connect_local_redis(argv[1]);
  if (fd < 0) return 69;
  unsigned char raw[16];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw) return 71;
  char token[33];
  for (int i = 0; i < 16; ++i) snprintf(token + 2 * i, 3, "%02x", raw[i]);
  const char* key = argv[2];
  char req[1024], reply[512];
  snprintf(req, sizeof req, "*6\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$32\r\n%s\r\n$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n30000\r\n",
           strlen(key), key, token);
  if (roundtrip(fd, req, reply, sizeof reply) < 0) return 69;
  if (strncmp(reply, "+OK", 3) != 0) return 75;
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[3], argv + 3);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  static const char script[] =
      "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) end return 0";
  snprintf(req, sizeof req, "*5\r\n$4\r\nEVAL\r\n$%zu\r\n%s\r\n$1\r\n1\r\n$%zu\r\n%s\r\n$32\r\n%s\r\n",
           strlen(script), script, strlen(key), key, token);
  if (roundtrip(fd, req, reply, sizeof reply) < 0) return 69;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
