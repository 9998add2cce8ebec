// SPDX-License-Identifier: MIT
// scanfloor: the floor for listing every key of a pattern — what one SCAN walk costs.
//
//   scanfloor PORT [PATTERN]
// One TCP connection to 127.0.0.1:PORT (numeric, no resolver), `SCAN CURSOR MATCH PATTERN
// COUNT 1000` until the cursor comes back 0, each key printed on a line of stdout (buffered).
// No reading of the keys, no sorting, no JSON: what `rlock status` cannot do in less.
// redis-cli 7.0's --scan has no --count (it asks 10 keys a call), so it is no floor.
// bench/status.sh builds it statically, as bench/minlock.c. Not a tool: a yardstick.
#define _GNU_SOURCE
#include "local_redis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// The reply being read: buf[0, len), parsed from pos.
static char* buf;
static size_t len, cap, pos;

static int fill(int fd) {
  if (cap - len < 65536) {
    cap = cap * 2 + 65536;
    buf = realloc(buf, cap);
    if (!buf) return -1;
  }
  ssize_t n = read(fd, buf + len, cap - len);
  if (n <= 0) return -1;
  len += (size_t)n;
  return 0;
}

// The line at pos, without its CRLF; reads more when it is not all here.
static char* line(int fd, size_t* size) {
  for (;;) {
    char* end = len > pos ? memchr(buf + pos, '\r', len - pos) : NULL;
    if (end && (size_t)(end - buf) + 1 < len) {
      char* start = buf + pos;
      *size = (size_t)(end - start);
      pos = (size_t)(end - buf) + 2;
      return start;
    }
    if (fill(fd) < 0) return NULL;
  }
}

// A bulk string's bytes at pos (after its $LEN line); reads more when they are not all here.
static char* bulk(int fd, size_t* size) {
  size_t header;
  char* text = line(fd, &header);
  if (!text || text[0] != '$') return NULL;
  long n = strtol(text + 1, NULL, 10);
  if (n < 0) return NULL;
  while (len - pos < (size_t)n + 2) {
    if (fill(fd) < 0) return NULL;
  }
  char* start = buf + pos;
  *size = (size_t)n;
  pos += (size_t)n + 2;
  return start;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: scanfloor PORT [PATTERN]\n");
    return 64;
  }
  const char* pattern = argc > 2 ? argv[2] : "*";
  int fd = connect_local_redis(argv[1]);
  if (fd < 0) return 69;
  char cursor[32] = "0";
  char req[1024];
  do {
    int n = snprintf(req, sizeof req, "*6\r\n$4\r\nSCAN\r\n$%zu\r\n%s\r\n$5\r\nMATCH\r\n$%zu\r\n%s\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n",
                     strlen(cursor), cursor, strlen(pattern), pattern);
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) return 69;
    len = pos = 0;
    size_t size;
    char* text = line(fd, &size);
    if (!text || text[0] != '*') return 70;
    char* next = bulk(fd, &size);
    if (!next || size >= sizeof cursor) return 70;
    memcpy(cursor, next, size);
    cursor[size] = '\0';
    text = line(fd, &size);
    if (!text || text[0] != '*') return 70;
    long keys = strtol(text + 1, NULL, 10);
    for (long i = 0; i < keys; ++i) {
      char* key = bulk(fd, &size);
      if (!key) return 70;
      fwrite(key, 1, size, stdout);
      putchar('\n');
    }
  } while (strcmp(cursor, "0") != 0);
  return fflush(stdout) == 0 ? 0 : 74;
}
