// SPDX-License-Identifier: Apache-2.0
// labnet: the traffic the student labs' graders send and count, compiled and run inside the lab's VMs.
//
//   labnet udp-send IP PORT COUNT                      COUNT datagrams; prints {"sent":N}
//   labnet tcp-syn IP PORT COUNT                       COUNT connection attempts to a closed port (one SYN each
//                                                      while the server answers with RST); prints refused/unanswered
//   labnet udp-sink PIDFILE OUTFILE PORT...            bind the ports, go to the background; on SIGTERM write
//                                                      {"PORT":received,...} to OUTFILE
//   labnet mc-set IP PORT KEY VALUE [KEY VALUE...]     memcached text protocol over TCP; prints {"stored":N}
//   labnet mc-stats IP PORT                            memcached's `stats` as one JSON object
//   labnet mc-get-udp IP PORT WAIT_MS KEY...           one memcache-over-UDP GET per key (request id = its
//                                                      position, from 1); one JSON line per request with the answer
//   labnet ping IP COUNT                               ICMP echo over a raw socket; prints sent and received
//   labnet sink-collect PIDFILE OUTFILE                stop a udp-sink and print what it counted
//   labnet A ... + B ...                               several commands in one process (each start costs time under TCG)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct sockaddr_in addr(const char *ip, const char *port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
    fprintf(stderr, "labnet: bad address %s\n", ip);
    exit(64);
  }
  return a;
}

static void json_str(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static int udp_send(const char *ip, const char *port, int count) {
  struct sockaddr_in a = addr(ip, port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0), sent = 0;
  for (int i = 0; i < count; i++)
    if (sendto(fd, "kflexlab", 8, 0, (struct sockaddr *)&a, sizeof(a)) == 8) sent++;
  printf("{\"sent\":%d}\n", sent);
  return 0;
}

static int tcp_syn(const char *ip, const char *port, int count) {
  struct sockaddr_in a = addr(ip, port);
  int refused = 0, connected = 0, unanswered = 0;
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
      connected++;
    } else if (errno == EINPROGRESS) {
      // 500 ms: an RST comes back at once; a SYN dropped on the way would be sent again only after 1 s.
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int err = 0;
      socklen_t len = sizeof(err);
      if (poll(&p, 1, 500) == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
        err == 0 ? connected++ : err == ECONNREFUSED ? refused++ : unanswered++;
      else
        unanswered++;
    } else {
      errno == ECONNREFUSED ? refused++ : unanswered++;
    }
    // An abortive close: no FIN, nothing more on the wire for this attempt.
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
  }
  printf("{\"attempts\":%d,\"refused\":%d,\"connected\":%d,\"unanswered\":%d}\n", count, refused, connected, unanswered);
  return 0;
}

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static int udp_sink(const char *pidfile, const char *outfile, int n, char **ports) {
  int fds[16];
  long counts[16] = {0};
  if (n > 16) n = 16;
  for (int i = 0; i < n; i++) {
    struct sockaddr_in a = addr("0.0.0.0", ports[i]);
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (bind(fds[i], (struct sockaddr *)&a, sizeof(a))) {
      fprintf(stderr, "labnet: bind %s: %s\n", ports[i], strerror(errno));
      return 1;
    }
  }
  // Bound before the parent returns: the grader's client may send as soon as this command exits.
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid > 0) {
    FILE *f = fopen(pidfile, "w");
    fprintf(f, "%d\n", pid);
    fclose(f);
    return 0;
  }
  setsid();
  // Let go of the caller's stdin/stdout/stderr (an SSH channel waits for every holder to close them).
  int nul = open("/dev/null", O_RDWR);
  dup2(nul, 0);
  dup2(nul, 1);
  dup2(nul, 2);
  signal(SIGTERM, on_term);
  struct pollfd p[16];
  for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
  char buf[2048];
  for (int last = 0; !last;) {
    last = stop;  // one more pass after SIGTERM: what arrived meanwhile is counted
    if (!last) poll(p, n, 200);
    for (int i = 0; i < n; i++)
      while (recv(fds[i], buf, sizeof(buf), 0) >= 0) counts[i]++;
  }
  char tmp[512];
  snprintf(tmp, sizeof(tmp), "%s.tmp", outfile);
  FILE *f = fopen(tmp, "w");
  fputc('{', f);
  for (int i = 0; i < n; i++) fprintf(f, "%s\"%s\":%ld", i ? "," : "", ports[i], counts[i]);
  fputs("}\n", f);
  fclose(f);
  rename(tmp, outfile);
  return 0;
}

/* A TCP connection, retried for up to 10 s while refused: the server may still be starting. */
static int tcp_connect(const char *ip, const char *port) {
  struct sockaddr_in a = addr(ip, port);
  for (int tries = 0;; tries++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) return fd;
    int err = errno;
    close(fd);
    if (err != ECONNREFUSED || tries >= 200) {
      fprintf(stderr, "labnet: connect %s:%s: %s\n", ip, port, strerror(err));
      exit(1);
    }
    usleep(50000);
  }
}

/* Read until the buffer ends with `end` (or the peer stops); returns the length. */
static size_t read_until(int fd, char *buf, size_t cap, const char *end) {
  size_t len = 0, el = strlen(end);
  while (len + 1 < cap) {
    ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = 0;
    if (len >= el && !strcmp(buf + len - el, end)) break;
  }
  buf[len] = 0;
  return len;
}

static int mc_set(const char *ip, const char *port, int n, char **kv) {
  int fd = tcp_connect(ip, port), stored = 0;
  char buf[4096];
  for (int i = 0; i + 1 < n; i += 2) {
    int l = snprintf(buf, sizeof(buf), "set %s 0 0 %zu\r\n%s\r\n", kv[i], strlen(kv[i + 1]), kv[i + 1]);
    if (send(fd, buf, (size_t)l, 0) != l) break;
    read_until(fd, buf, sizeof(buf), "\r\n");
    if (!strcmp(buf, "STORED\r\n")) stored++;
  }
  printf("{\"stored\":%d}\n", stored);
  return 0;
}

static int mc_stats(const char *ip, const char *port) {
  int fd = tcp_connect(ip, port);
  static char buf[65536];
  send(fd, "stats\r\n", 7, 0);
  read_until(fd, buf, sizeof(buf), "END\r\n");
  putchar('{');
  int first = 1;
  for (char *line = strtok(buf, "\r\n"); line; line = strtok(NULL, "\r\n")) {
    char name[128], value[256];
    if (sscanf(line, "STAT %127s %255s", name, value) != 2) continue;
    printf("%s\"%s\":", first ? "" : ",", name);
    json_str(value, strlen(value));
    first = 0;
  }
  puts("}");
  return 0;
}

/* The 8-byte frame header memcached puts before each UDP datagram: request id, sequence, total, reserved. */
static int mc_get_udp(const char *ip, const char *port, int wait_ms, int n, char **keys) {
  struct sockaddr_in a = addr(ip, port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char buf[2048];
  for (int i = 0; i < n; i++) {
    unsigned short hdr[4] = {htons((unsigned short)(i + 1)), 0, htons(1), 0};
    memcpy(buf, hdr, 8);
    int l = 8 + snprintf(buf + 8, sizeof(buf) - 8, "get %s\r\n", keys[i]);
    sendto(fd, buf, (size_t)l, 0, (struct sockaddr *)&a, sizeof(a));
  }
  char **answers = calloc((size_t)n, sizeof(char *));
  int *lens = calloc((size_t)n, sizeof(int)), got = 0, other = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (got < n && poll(&p, 1, wait_ms) == 1) {
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    if (r < 8 || from.sin_addr.s_addr != a.sin_addr.s_addr || from.sin_port != a.sin_port) {
      other++;
      continue;
    }
    int id = ntohs(*(unsigned short *)buf);
    if (id < 1 || id > n || answers[id - 1]) {
      other++;
      continue;
    }
    answers[id - 1] = malloc((size_t)r - 8);
    memcpy(answers[id - 1], buf + 8, (size_t)r - 8);
    lens[id - 1] = (int)r - 8;
    got++;
  }
  for (int i = 0; i < n; i++) {
    printf("{\"id\":%d,\"key\":", i + 1);
    json_str(keys[i], strlen(keys[i]));
    if (answers[i]) {
      printf(",\"answer\":");
      json_str(answers[i], (size_t)lens[i]);
    }
    puts("}");
  }
  printf("{\"answered\":%d,\"unmatched\":%d}\n", got, other);
  return 0;
}

static unsigned short icmp_sum(const void *p, size_t n) {
  const unsigned short *w = p;
  unsigned long sum = 0;
  for (; n > 1; n -= 2) sum += *w++;
  if (n) sum += *(const unsigned char *)w;
  sum = (sum >> 16) + (sum & 0xffff);
  sum += sum >> 16;
  return (unsigned short)~sum;
}

/* COUNT echo requests, 20 ms apart, then up to 2 s for the last replies; prints {"ping_sent":N,"ping_received":M}. */
static int ping(const char *ip, int count) {
  struct sockaddr_in a = addr(ip, "0");
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd < 0) {
    fprintf(stderr, "labnet: raw socket: %s\n", strerror(errno));
    return 1;
  }
  unsigned short id = (unsigned short)getpid();
  int got = 0;
  char seen[256] = {0};
  for (int i = 0; i <= count; i++) {
    if (i < count) {
      unsigned char pkt[16] = {8, 0, 0, 0, id >> 8, id & 0xff, 0, (unsigned char)i};
      memcpy(pkt + 8, "kflexlab", 8);
      unsigned short c = icmp_sum(pkt, sizeof(pkt));
      memcpy(pkt + 2, &c, 2);
      sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&a, sizeof(a));
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (int wait = i < count ? 20 : 2000; got < count && poll(&p, 1, wait) == 1; wait = i < count ? 0 : 2000) {
      unsigned char buf[1500];
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r < 28) continue;
      size_t ihl = (buf[0] & 15) * 4u;
      if ((size_t)r < ihl + 8 || buf[ihl] != 0 || buf[ihl + 4] != id >> 8 || buf[ihl + 5] != (id & 0xff)) continue;
      unsigned seq = buf[ihl + 7];
      if (seq < 256 && !seen[seq]) seen[seq] = 1, got++;
    }
  }
  printf("{\"ping_sent\":%d,\"ping_received\":%d}\n", count, got);
  return 0;
}

/* Stop a udp-sink (SIGTERM) and print what it counted once it has written it (up to 5 s). */
static int sink_collect(const char *pidfile, const char *outfile) {
  FILE *f = fopen(pidfile, "r");
  int pid = 0;
  if (!f || fscanf(f, "%d", &pid) != 1) return 1;
  fclose(f);
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    FILE *o = fopen(outfile, "r");
    if (o) {
      char buf[512];
      size_t n = fread(buf, 1, sizeof(buf) - 1, o);
      buf[n] = 0;
      fputs(buf, stdout);
      return 0;
    }
    usleep(50000);
  }
  return 1;
}

static int one(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "udp-send")) return udp_send(argv[2], argv[3], atoi(argv[4]));
  if (argc == 5 && !strcmp(argv[1], "tcp-syn")) return tcp_syn(argv[2], argv[3], atoi(argv[4]));
  if (argc == 4 && !strcmp(argv[1], "ping")) return ping(argv[2], atoi(argv[3]) > 255 ? 255 : atoi(argv[3]));
  if (argc >= 5 && !strcmp(argv[1], "udp-sink")) return udp_sink(argv[2], argv[3], argc - 4, argv + 4);
  if (argc == 4 && !strcmp(argv[1], "sink-collect")) return sink_collect(argv[2], argv[3]);
  if (argc >= 6 && !strcmp(argv[1], "mc-set")) return mc_set(argv[2], argv[3], argc - 4, argv + 4);
  if (argc == 4 && !strcmp(argv[1], "mc-stats")) return mc_stats(argv[2], argv[3]);
  if (argc >= 6 && !strcmp(argv[1], "mc-get-udp")) return mc_get_udp(argv[2], argv[3], atoi(argv[4]), argc - 5, argv + 5);
  fprintf(stderr, "usage: labnet udp-send|tcp-syn|ping|udp-sink|sink-collect|mc-set|mc-stats|mc-get-udp ... [+ another ...]\n");
  return 64;
}

/* Several commands in one process, separated by "+" (under emulation each process start costs time). */
int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int rc = 0, start = 1;
  for (int i = 1; i <= argc; i++) {
    if (i < argc && strcmp(argv[i], "+")) continue;
    char *saved = argv[start - 1];
    argv[start - 1] = argv[0];
    int r = one(i - start + 1, argv + start - 1);
    argv[start - 1] = saved;
    if (r) rc = r;
    start = i + 1;
  }
  return rc;
}
