/*
 * qfs-delayproxy: a TCP proxy on loopback that delays every byte by a fixed time in each direction,
 * for tools/bench's scale-out rows ("cross-machine round trips of 0.2 ms and 1 ms") on a kernel
 * without tc netem. Each LISTEN:TARGET pair accepts connections on 127.0.0.1:LISTEN and forwards
 * them to 127.0.0.1:TARGET; what one side sends is written to the other DELAY microseconds after it
 * was read, in order, so a request and its answer through it take 2 x DELAY more.
 *
 *   qfs-delayproxy --delay-us D LISTEN:TARGET [LISTEN:TARGET ...]     runs until SIGTERM
 *
 * A pair's port accepts connections only while its target port is listening (serve() below), so
 * a dead target's connections are refused as on a real network. One thread per direction of each
 * connection; it waits with ppoll (timer slack 1 µs) for either new bytes or the next chunk's due
 * time. The proxy's own cost (two extra wake-ups a hop) is part
 * of what it adds: tools/bench measures the round trip through it with qfsprobe tcp --via.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static uint64_t delay_ns;
static int verbose; /* QFS_PROXY_VERBOSE=1: log each listener opened or closed */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct chunk {
	struct chunk *next;
	uint64_t due;
	size_t len;
	char data[];
};

struct conn {
	int a, b;
	atomic_int refs; /* the two pumps; the last one closes both sockets */
};

struct pipe_dir {
	int from, to;
	struct conn *conn;
};

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies FROM to TO, each chunk DELAY after it was read. Ends when either side closes. */
static void *pump(void *arg)
{
	struct pipe_dir *d = arg;
	struct chunk *head = NULL, **tail = &head;
	int eof = 0;

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	while (!eof || head) {
		struct pollfd p = {.fd = d->from, .events = POLLIN};
		struct timespec ts, *tsp = NULL;
		uint64_t t = now_ns();

		while (head && head->due <= t) {
			struct chunk *c = head;

			if (write_all(d->to, c->data, c->len) < 0)
				goto out;
			head = c->next;
			if (!head)
				tail = &head;
			free(c);
		}
		if (head) {
			uint64_t w = head->due - t;

			ts = (struct timespec){(time_t)(w / 1000000000u), (long)(w % 1000000000u)};
			tsp = &ts;
		}
		if (eof) {
			if (tsp)
				nanosleep(tsp, NULL);
			continue;
		}
		if (ppoll(&p, 1, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (p.revents) {
			struct chunk *c = malloc(sizeof(*c) + CHUNK);
			ssize_t n;

			if (!c)
				abort();
			n = read(d->from, c->data, CHUNK);
			if (n <= 0) {
				free(c);
				eof = 1;
				continue;
			}
			c->len = (size_t)n;
			c->due = now_ns() + delay_ns;
			c->next = NULL;
			*tail = c;
			tail = &c->next;
		}
	}
out:
	while (head) {
		struct chunk *c = head;

		head = c->next;
		free(c);
	}
	shutdown(d->to, SHUT_WR);
	shutdown(d->from, SHUT_RD);
	if (atomic_fetch_sub(&d->conn->refs, 1) == 1) {
		close(d->conn->a);
		close(d->conn->b);
		free(d->conn);
	}
	free(d);
	return NULL;
}

static void start_pump(struct conn *cn, int from, int to)
{
	struct pipe_dir *d = malloc(sizeof(*d));
	pthread_t th;

	if (!d)
		abort();
	d->from = from;
	d->to = to;
	d->conn = cn;
	if (pthread_create(&th, NULL, pump, d) != 0)
		abort();
	pthread_detach(th);
}

struct listener {
	int fd; /* -1 while the target is not listening */
	int port;
	int target;
};

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Which local TCP ports have a listening socket in this network namespace: UP[port] = 1. Asked
 * of the kernel's socket diagnostics (netlink, listening sockets only, IPv4 and IPv6), so that
 * finding out opens no connection to the target and costs the same however many connections
 * (or TIME_WAIT leftovers of a reconnect storm) the machine holds (/proc/net/tcp lists every
 * socket). 0, or -1 when the kernel could not be asked (UP is then left as it was).
 */
static int scan_listening(uint8_t *up /* [65536] */)
{
	static uint8_t seen[65536];
	static const int families[] = {AF_INET, AF_INET6};
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return -1;
	memset(seen, 0, sizeof(seen));
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		struct {
			struct nlmsghdr nlh;
			struct inet_diag_req_v2 r;
		} req = {
		    .nlh = {.nlmsg_len = sizeof(req),
			    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
		    .r = {.sdiag_family = (uint8_t)families[f],
			  .sdiag_protocol = IPPROTO_TCP,
			  .idiag_states = 1u << 10 /* TCP_LISTEN */},
		};
		int done = 0;

		if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req)) {
			close(fd);
			return -1;
		}
		while (!done) {
			static char buf[32768];
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(fd);
				return -1;
			}
			for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
			     h = NLMSG_NEXT(h, n)) {
				if (h->nlmsg_type == NLMSG_DONE) {
					done = 1;
					break;
				}
				if (h->nlmsg_type == NLMSG_ERROR) {
					close(fd);
					return -1;
				}
				const struct inet_diag_msg *m = NLMSG_DATA(h);

				seen[ntohs(m->id.idiag_sport)] = 1;
			}
		}
	}
	close(fd);
	memcpy(up, seen, sizeof(seen));
	return 0;
}

/*
 * One thread serves every pair's port. A peer on another machine whose process is dead refuses
 * connections; a proxy that accepted them and then hung up (because its own connection to the
 * target failed) would look like a live server that drops its clients, which is not what a real
 * network does: ZooKeeper's follower, for one, treats a connection to the new leader that opens
 * and then ends as a failed leader and goes back to the election (seen: ~20 s failovers), where a
 * refused one is simply retried. So each pair's port listens only while its target does, as the
 * kernel reports every 5 ms (scan_listening): for at most 5 ms after a target dies a connection
 * can still be accepted and then closed.
 */
static void serve(struct listener *ls, int n)
{
	static uint8_t up[65536];
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	int one = 1;

	if (!p)
		abort();
	for (;;) {
		if (scan_listening(up) != 0)
			fprintf(stderr, "qfs-delayproxy: cannot list listening sockets: %s\n",
				strerror(errno));
		for (int i = 0; i < n; i++) {
			struct listener *l = &ls[i];

			if (up[l->target] && l->fd < 0) {
				l->fd = listen_on(l->port);
				if (l->fd < 0)
					fprintf(stderr, "qfs-delayproxy: listen %d: %s\n", l->port,
						strerror(errno));
				else if (verbose)
					fprintf(stderr, "qfs-delayproxy: %" PRIu64 " ms: %d open\n",
						now_ns() / 1000000, l->port);
			} else if (!up[l->target] && l->fd >= 0) {
				close(l->fd); /* connections still in its backlog are reset */
				l->fd = -1;
				if (verbose)
					fprintf(stderr, "qfs-delayproxy: %" PRIu64 " ms: %d closed\n",
						now_ns() / 1000000, l->port);
			}
			p[i] = (struct pollfd){.fd = l->fd, .events = POLLIN};
		}
		if (poll(p, (nfds_t)n, 5) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			struct listener *l = &ls[i];
			struct sockaddr_in a = {.sin_family = AF_INET,
						.sin_port = htons((uint16_t)l->target),
						.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			int c, s;

			if (!(p[i].revents & POLLIN))
				continue;
			c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue; /* EAGAIN, ECONNABORTED, ... */
			s = socket(AF_INET, SOCK_STREAM, 0);
			if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
				/* the target died since the last scan: so does this connection */
				if (s >= 0)
					close(s);
				close(c);
				continue;
			}
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			struct conn *cn = malloc(sizeof(*cn));

			if (!cn)
				abort();
			cn->a = c;
			cn->b = s;
			atomic_init(&cn->refs, 2);
			start_pump(cn, c, s);
			start_pump(cn, s, c);
		}
	}
}

int main(int argc, char **argv)
{
	struct listener *ls;
	int i = 1, n = 0;

	signal(SIGPIPE, SIG_IGN);
	verbose = getenv("QFS_PROXY_VERBOSE") && strcmp(getenv("QFS_PROXY_VERBOSE"), "0") != 0;
	if (argc > 2 && strcmp(argv[1], "--delay-us") == 0) {
		delay_ns = (uint64_t)(atof(argv[2]) * 1000.0);
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr,
			"usage: qfs-delayproxy --delay-us D LISTEN:TARGET [LISTEN:TARGET ...]\n");
		return 2;
	}
	ls = calloc((size_t)(argc - i), sizeof(*ls));
	if (!ls)
		abort();
	for (; i < argc; i++, n++) {
		struct listener *l = &ls[n];

		if (sscanf(argv[i], "%d:%d", &l->port, &l->target) != 2 || l->port < 1 ||
		    l->port > 65535 || l->target < 1 || l->target > 65535) {
			fprintf(stderr, "qfs-delayproxy: bad pair %s (LISTEN:TARGET)\n", argv[i]);
			return 2;
		}
		l->fd = -1;
	}
	serve(ls, n); /* until SIGTERM */
	return 0;
}
