// SPDX-License-Identifier: MIT
// benchtool: the small, controllable measuring helpers that bench/*.sh drive.
//
//   benchtool freeport
//       Print a TCP port on 127.0.0.1 that was free a moment ago.
//   benchtool ab [-n RUNS] [-w WARMUP] [-o STDERR_LOG] NAME CMD [NAME CMD]...
//       Whole-process cost, paired: each round runs every CMD once, in order A B C A B C …,
//       timing fork+exec+wait4 with CLOCK_MONOTONIC and keeping each child's peak RSS
//       (ru_maxrss of wait4, which covers the child and the children it reaped). CMD is split
//       on blanks, no quoting: put anything harder in a script; leading NAME=VALUE words are
//       set in the environment (as with env(1), minus its process). stdin/stdout are /dev/null,
//       stderr goes to STDERR_LOG (default /dev/null), so rlock never sees a terminal.
//       Prints one line per command: name, median, p10, p90 (ms), ratio of medians to the
//       first command, median of per-round ratios, mean CPU time (user+system, ms) and its
//       ratio to the first command's, median peak RSS (KiB), failures.
//   benchtool hold FILE [MS]
//       A critical section: note CLOCK_MONOTONIC at entry, sleep MS (default 0), note it again
//       just before exit, and append "START END\n" (ns) to FILE in one O_APPEND write.
//   benchtool handoff FILE...
//       Read the lines `hold` wrote, order them by start, and print the gaps between one
//       section's end and the next one's start (the hand-off latency) as count, p50, p90, p99,
//       max in ms, plus the number of overlapping sections (must be 0: mutual exclusion).
//       Several files (separate runs of one loop) are ordered each on its own and their
//       gaps pooled: the pause between two runs is no hand-off.
//   benchtool permits N FILE...
//       A counting semaphore's run: the lines `hold` wrote in all FILEs (one per worker) are one
//       timeline. Sweeps it in time order and prints the most sections seen running at once
//       (must be <= N), the hand-off gaps (count, p50, p90, p99, max in ms) and the sections
//       per file (min, mean, max; min/mean, max/mean). A hand-off pairs each section's start,
//       once the N first permits are taken, with the oldest section end not yet paired: the
//       permit freed first is the one the next job to start took. Exits 1 when more than N
//       sections overlapped.
//
// Why C and not hyperfine: one process both runs the commands interleaved (so drift in the
// machine's load hits every command alike) and reads wait4's rusage for the RSS column,
// with no shell between the timer and the program measured.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int cmp_i64(const void* a, const void* b) {
  int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return (x > y) - (x < y);
}

static int cmp_long(const void* a, const void* b) {
  long x = *(const long*)a, y = *(const long*)b;
  return (x > y) - (x < y);
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// Nearest-rank percentile of a sorted array.
static int64_t pct_i64(const int64_t* sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

static int cmd_freeport(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0) die("bind");
  socklen_t len = sizeof addr;
  if (getsockname(fd, (struct sockaddr*)&addr, &len) < 0) die("getsockname");
  printf("%u\n", ntohs(addr.sin_port));
  close(fd);
  return 0;
}

typedef struct {
  const char* name;
  char** argv;
  int64_t* ns;
  long* rss;
  int64_t* cpu;   // user+system ns of the child and the children it reaped
  double* ratio;  // per-round ratio to command 0
  int failures;
} Command;

static char** split_blanks(const char* text) {
  char* copy = strdup(text);
  size_t cap = 8, n = 0;
  char** argv = malloc(cap * sizeof *argv);
  for (char* tok = strtok(copy, " \t"); tok != NULL; tok = strtok(NULL, " \t")) {
    if (n + 2 > cap) argv = realloc(argv, (cap *= 2) * sizeof *argv);
    argv[n++] = tok;
  }
  argv[n] = NULL;
  return argv;
}

// Runs argv once; returns wall ns, stores peak RSS (KiB) and whether it exited 0.
static int64_t run_once(char** argv, int err_fd, long* rss, int64_t* cpu, int* ok) {
  int64_t start = now_ns();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(err_fd >= 0 ? err_fd : null_fd, 2);
    // Leading NAME=VALUE words set the environment, as env(1) would, without its process.
    while (argv[0] != NULL && strchr(argv[0], '=') != NULL && argv[0][0] != '/') putenv(*argv++);
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  struct rusage usage;
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) die("wait4");
  }
  int64_t elapsed = now_ns() - start;
  *rss = usage.ru_maxrss;
  *cpu = ((int64_t)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000;
  *ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return elapsed;
}

static int cmd_ab(int argc, char** argv) {
  int runs = 100, warmup = 5;
  const char* err_path = NULL;
  int i = 0;
  for (; i < argc && argv[i][0] == '-'; i += 2) {
    if (i + 1 >= argc) break;
    if (strcmp(argv[i], "-n") == 0) runs = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-w") == 0) warmup = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-o") == 0) err_path = argv[i + 1];
    else break;
  }
  int count = (argc - i) / 2;
  if (count < 1 || runs < 1 || (argc - i) % 2 != 0) {
    fprintf(stderr, "usage: benchtool ab [-n RUNS] [-w WARMUP] [-o LOG] NAME CMD [NAME CMD]...\n");
    return 64;
  }
  int err_fd = -1;
  if (err_path) {
    err_fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err_fd < 0) die(err_path);
  }
  Command* cmds = calloc((size_t)count, sizeof *cmds);
  for (int c = 0; c < count; ++c) {
    cmds[c].name = argv[i + 2 * c];
    cmds[c].argv = split_blanks(argv[i + 2 * c + 1]);
    cmds[c].ns = calloc((size_t)runs, sizeof(int64_t));
    cmds[c].rss = calloc((size_t)runs, sizeof(long));
    cmds[c].cpu = calloc((size_t)runs, sizeof(int64_t));
    cmds[c].ratio = calloc((size_t)runs, sizeof(double));
  }
  long rss;
  int64_t cpu;
  int ok;
  for (int w = 0; w < warmup; ++w) {
    for (int c = 0; c < count; ++c) run_once(cmds[c].argv, err_fd, &rss, &cpu, &ok);
  }
  for (int r = 0; r < runs; ++r) {
    for (int c = 0; c < count; ++c) {
      cmds[c].ns[r] = run_once(cmds[c].argv, err_fd, &cmds[c].rss[r], &cmds[c].cpu[r], &ok);
      if (!ok) cmds[c].failures++;
    }
    for (int c = 0; c < count; ++c) cmds[c].ratio[r] = (double)cmds[c].ns[r] / (double)cmds[0].ns[r];
  }
  int64_t base = 0, cpu_base = 0;
  printf("%-14s %9s %9s %9s %8s %8s %9s %8s %9s %5s\n", "command", "median_ms", "p10_ms", "p90_ms",
         "ratio", "pair_rt", "cpu_ms", "cpu_rt", "rss_kib", "fail");
  for (int c = 0; c < count; ++c) {
    qsort(cmds[c].ns, (size_t)runs, sizeof(int64_t), cmp_i64);
    qsort(cmds[c].rss, (size_t)runs, sizeof(long), cmp_long);
    qsort(cmds[c].ratio, (size_t)runs, sizeof(double), cmp_double);
    qsort(cmds[c].cpu, (size_t)runs, sizeof(int64_t), cmp_i64);
    int64_t med = pct_i64(cmds[c].ns, (size_t)runs, 50);
    // CPU time is in rusage's (often 1 ms or 4 ms) accounting grain: take the mean, not the median.
    int64_t cpu_sum = 0;
    for (int r = 0; r < runs; ++r) cpu_sum += cmds[c].cpu[r];
    int64_t cpu_mean = cpu_sum / runs;
    if (c == 0) {
      base = med;
      cpu_base = cpu_mean > 0 ? cpu_mean : 1;
    }
    printf("%-14s %9.3f %9.3f %9.3f %7.2fx %7.2fx %8.3f %7.2fx %9ld %5d\n", cmds[c].name,
           (double)med / 1e6, (double)pct_i64(cmds[c].ns, (size_t)runs, 10) / 1e6,
           (double)pct_i64(cmds[c].ns, (size_t)runs, 90) / 1e6, (double)med / (double)base,
           cmds[c].ratio[runs / 2], (double)cpu_mean / 1e6, (double)cpu_mean / (double)cpu_base,
           cmds[c].rss[runs / 2], cmds[c].failures);
  }
  return 0;
}

static int cmd_hold(int argc, char** argv) {
  int64_t start = now_ns();
  if (argc < 1) {
    fprintf(stderr, "usage: benchtool hold FILE [MS]\n");
    return 64;
  }
  int fd = open(argv[0], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) die(argv[0]);
  long ms = argc > 1 ? atol(argv[1]) : 0;
  if (ms > 0) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
  }
  char line[64];
  int64_t end = now_ns();
  int len = snprintf(line, sizeof line, "%lld %lld\n", (long long)start, (long long)end);
  if (write(fd, line, (size_t)len) != len) die("write");
  return 0;
}

typedef struct {
  int64_t start, end;
} Section;

static int cmp_section(const void* a, const void* b) {
  const Section *x = a, *y = b;
  return (x->start > y->start) - (x->start < y->start);
}

// Appends the gaps of the sections in `path` (ordered by start) to *gaps; counts overlaps.
static void file_gaps(const char* path, int64_t** gaps, size_t* g, size_t* gap_cap, int* overlaps) {
  FILE* in = fopen(path, "r");
  if (!in) die(path);
  size_t cap = 256, n = 0;
  Section* s = malloc(cap * sizeof *s);
  long long a, b;
  while (fscanf(in, "%lld %lld", &a, &b) == 2) {
    if (n == cap) s = realloc(s, (cap *= 2) * sizeof *s);
    s[n].start = a;
    s[n].end = b;
    ++n;
  }
  fclose(in);
  qsort(s, n, sizeof *s, cmp_section);
  for (size_t k = 1; k < n; ++k) {
    int64_t gap = s[k].start - s[k - 1].end;
    if (gap < 0) {
      ++*overlaps;
      continue;
    }
    if (*g == *gap_cap) *gaps = realloc(*gaps, (*gap_cap *= 2) * sizeof **gaps);
    (*gaps)[(*g)++] = gap;
  }
  free(s);
}

static int cmd_handoff(int argc, char** argv) {
  if (argc < 1) {
    fprintf(stderr, "usage: benchtool handoff FILE...\n");
    return 64;
  }
  size_t cap = 256, g = 0;
  int64_t* gaps = malloc(cap * sizeof *gaps);
  int overlaps = 0;
  for (int f = 0; f < argc; ++f) file_gaps(argv[f], &gaps, &g, &cap, &overlaps);
  qsort(gaps, g, sizeof *gaps, cmp_i64);
  printf("handoffs=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f overlaps=%d\n", g,
         (double)pct_i64(gaps, g, 50) / 1e6, (double)pct_i64(gaps, g, 90) / 1e6,
         (double)pct_i64(gaps, g, 99) / 1e6, g ? (double)gaps[g - 1] / 1e6 : 0.0, overlaps);
  return overlaps > 0 ? 1 : 0;
}

typedef struct {
  int64_t at;
  int is_start;
} Event;

static int cmp_event(const void* a, const void* b) {
  const Event *x = a, *y = b;
  if (x->at != y->at) return (x->at > y->at) - (x->at < y->at);
  return x->is_start - y->is_start;  // at the same instant an end frees before a start takes
}

static int cmd_permits(int argc, char** argv) {
  if (argc < 2 || atoi(argv[0]) < 1) {
    fprintf(stderr, "usage: benchtool permits N FILE...\n");
    return 64;
  }
  int limit = atoi(argv[0]);
  size_t cap = 1024, n = 0;
  Event* ev = malloc(cap * sizeof *ev);
  long lo = -1, hi = 0, total = 0;
  for (int f = 1; f < argc; ++f) {
    FILE* in = fopen(argv[f], "r");
    if (!in) die(argv[f]);
    long count = 0;
    long long a, b;
    while (fscanf(in, "%lld %lld", &a, &b) == 2) {
      if (n + 2 > cap) ev = realloc(ev, (cap *= 2) * sizeof *ev);
      ev[n++] = (Event){a, 1};
      ev[n++] = (Event){b, 0};
      ++count;
    }
    fclose(in);
    if (lo < 0 || count < lo) lo = count;
    if (count > hi) hi = count;
    total += count;
  }
  qsort(ev, n, sizeof *ev, cmp_event);
  // Ends not yet paired with a start, oldest first (a FIFO in a plain array: each is paired once).
  int64_t* ends = malloc((n / 2 + 1) * sizeof *ends);
  int64_t* gaps = malloc((n / 2 + 1) * sizeof *gaps);
  size_t head = 0, tail = 0, g = 0;
  int running = 0, most = 0, fresh = limit;
  for (size_t k = 0; k < n; ++k) {
    if (!ev[k].is_start) {
      --running;
      ends[tail++] = ev[k].at;
      continue;
    }
    if (++running > most) most = running;
    if (fresh > 0) {
      --fresh;  // one of the N permits nobody had held yet
    } else if (head < tail) {
      gaps[g++] = ev[k].at - ends[head++];
    }
  }
  qsort(gaps, g, sizeof *gaps, cmp_i64);
  double mean = argc > 1 ? (double)total / (argc - 1) : 0;
  printf("limit=%d max_concurrent=%d sections=%ld handoffs=%zu p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
         "max_ms=%.3f per_worker_min=%ld per_worker_max=%ld min/mean=%.2f max/mean=%.2f\n",
         limit, most, total, g, (double)pct_i64(gaps, g, 50) / 1e6, (double)pct_i64(gaps, g, 90) / 1e6,
         (double)pct_i64(gaps, g, 99) / 1e6, g ? (double)gaps[g - 1] / 1e6 : 0.0, lo, hi,
         mean > 0 ? (double)lo / mean : 0.0, mean > 0 ? (double)hi / mean : 0.0);
  return most > limit ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: benchtool freeport|ab|hold|handoff|permits ...\n");
    return 64;
  }
  if (strcmp(argv[1], "freeport") == 0) return cmd_freeport();
  if (strcmp(argv[1], "ab") == 0) return cmd_ab(argc - 2, argv + 2);
  if (strcmp(argv[1], "hold") == 0) return cmd_hold(argc - 2, argv + 2);
  if (strcmp(argv[1], "handoff") == 0) return cmd_handoff(argc - 2, argv + 2);
  if (strcmp(argv[1], "permits") == 0) return cmd_permits(argc - 2, argv + 2);
  fprintf(stderr, "benchtool: unknown command %s\n", argv[1]);
  return 64;
}
