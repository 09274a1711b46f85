/* io_net: delivery, authentication, refusals, tampering and reconnection on real loopback TCP. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consensus/io_net_uv.h"

#define NMAX 4
#define MSGS 200

struct node {
	struct io_net *net;
	uint32_t id;
	uint32_t got[NMAX + 1]; /* frames received from each peer */
	uint32_t bad_order;	/* frames that arrived out of order or corrupted */
	int up[NMAX + 1];
	uint8_t adopted[IO_NET_CLUSTER_LEN];
	int adopted_set;
	char lastlog[512];
};

static uv_loop_t loop;
static struct node nodes[NMAX + 1];

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void on_recv(void *arg, uint32_t from, const void *body, size_t len)
{
	struct node *n = arg;
	uint32_t seq;

	if (len < 4 + 1000) {
		n->bad_order++;
		return;
	}
	memcpy(&seq, body, 4);
	for (size_t i = 4; i < len; i++)
		if (((const uint8_t *)body)[i] != (uint8_t)(seq + i))
			n->bad_order++;
	if (seq != n->got[from])
		n->bad_order++;
	n->got[from]++;
}

static void on_peer(void *arg, uint32_t id, int up)
{
	struct node *n = arg;

	n->up[id] = up;
}

static void on_log(void *arg, enum io_net_log_level level, const char *msg)
{
	struct node *n = arg;

	snprintf(n->lastlog, sizeof(n->lastlog), "%s", msg);
}

static void on_cluster(void *arg, const uint8_t id[IO_NET_CLUSTER_LEN])
{
	struct node *n = arg;

	memcpy(n->adopted, id, IO_NET_CLUSTER_LEN);
	n->adopted_set = 1;
}

static struct io_net_config base_cfg(uint32_t npeers, const uint16_t *ports)
{
	struct io_net_config c;

	memset(&c, 0, sizeof(c));
	c.npeers = npeers;
	for (uint32_t i = 0; i < npeers; i++) {
		c.peers[i].id = i + 1;
		snprintf(c.peers[i].host, sizeof(c.peers[i].host), "127.0.0.1");
		c.peers[i].port = ports[i];
	}
	memset(c.secret, 0x5a, sizeof(c.secret));
	memset(c.cluster_id, 0x11, sizeof(c.cluster_id));
	c.backoff_min_ms = 5;
	c.backoff_max_ms = 50;
	c.on_recv = on_recv;
	c.on_peer = on_peer;
	c.on_log = on_log;
	c.on_cluster = on_cluster;
	return c;
}

static void start(uint32_t id, struct io_net_config c)
{
	memset(&nodes[id], 0, sizeof(nodes[id]));
	nodes[id].id = id;
	c.self_id = id;
	c.arg = &nodes[id];
	cr_assert_eq(io_net_start(&loop, &c, &nodes[id].net), 0);
}

static void stop(uint32_t id)
{
	io_net_close(nodes[id].net);
	nodes[id].net = NULL;
}

static void tick_cb(uv_timer_t *t)
{
}

/* Run the loop until COND holds or MS milliseconds passed; returns whether COND held. */
#define RUN_UNTIL(cond, ms)                                                                        \
	({                                                                                         \
		uv_timer_t t_;                                                                     \
		uint64_t end_ = uv_now(&loop) + (ms);                                              \
		uv_timer_init(&loop, &t_);                                                         \
		uv_timer_start(&t_, tick_cb, 1, 1);                                                \
		while (!(cond) && uv_now(&loop) < end_)                                            \
			uv_run(&loop, UV_RUN_ONCE);                                                \
		uv_close((uv_handle_t *)&t_, NULL);                                                \
		uv_run(&loop, UV_RUN_NOWAIT);                                                      \
		(cond);                                                                            \
	})

static void send_msgs(uint32_t from, uint32_t to, uint32_t count, uint32_t *next)
{
	uint8_t buf[4 + 1000];

	for (uint32_t k = 0; k < count; k++) {
		uint32_t seq = (*next)++;

		memcpy(buf, &seq, 4);
		for (size_t i = 4; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(seq + i);
		cr_assert_eq(io_net_send(nodes[from].net, to, buf, sizeof(buf)), 0);
	}
}

static void setup(void)
{
	cr_assert_eq(uv_loop_init(&loop), 0);
	memset(nodes, 0, sizeof(nodes));
}

static void teardown(void)
{
	for (uint32_t i = 1; i <= NMAX; i++)
		if (nodes[i].net)
			stop(i);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
}

TestSuite(io_net, .init = setup, .fini = teardown, .timeout = 60);

Test(io_net, three_nodes_deliver_in_order)
{
	uint16_t ports[3] = {free_port(), free_port(), free_port()};
	struct io_net_config c = base_cfg(3, ports);
	uint32_t next[4][4] = {{0}};

	for (uint32_t i = 1; i <= 3; i++)
		start(i, c);
	cr_assert(RUN_UNTIL(nodes[1].up[2] && nodes[1].up[3] && nodes[2].up[1] && nodes[2].up[3] &&
				nodes[3].up[1] && nodes[3].up[2],
			    5000),
		  "mesh did not come up: %s", nodes[1].lastlog);
	for (uint32_t a = 1; a <= 3; a++)
		for (uint32_t b = 1; b <= 3; b++)
			if (a != b)
				send_msgs(a, b, MSGS, &next[a][b]);
	cr_assert(RUN_UNTIL(nodes[1].got[2] == MSGS && nodes[1].got[3] == MSGS &&
				nodes[2].got[1] == MSGS && nodes[2].got[3] == MSGS &&
				nodes[3].got[1] == MSGS && nodes[3].got[2] == MSGS,
			    5000));
	for (uint32_t i = 1; i <= 3; i++)
		cr_assert_eq(nodes[i].bad_order, 0);
	cr_assert_eq(io_net_send(nodes[1].net, 1, "x", 1), -EINVAL, "self is not a peer");
	cr_assert_eq(io_net_send(nodes[1].net, 9, "x", 1), -EINVAL);
}

Test(io_net, wrong_secret_is_refused_both_ways)
{
	uint16_t ports[2] = {free_port(), free_port()};
	struct io_net_config c = base_cfg(2, ports);
	struct io_net_stats s1, s2;

	start(1, c);
	c.secret[0] ^= 1;
	start(2, c);
	cr_assert(RUN_UNTIL(0, 300) == 0);
	cr_assert(!io_net_connected(nodes[1].net, 2));
	cr_assert(!io_net_connected(nodes[2].net, 1));
	cr_assert_eq(io_net_send(nodes[1].net, 2, "x", 1), -ENOTCONN);
	io_net_get_stats(nodes[1].net, &s1);
	io_net_get_stats(nodes[2].net, &s2);
	cr_assert(s1.auth_failures > 0 && s2.auth_failures > 0);
	cr_assert(strstr(nodes[1].lastlog, "secret") != NULL, "log: %s", nodes[1].lastlog);
}

Test(io_net, other_cluster_is_refused)
{
	uint16_t ports[2] = {free_port(), free_port()};
	struct io_net_config c = base_cfg(2, ports);

	start(1, c);
	c.cluster_id[3] ^= 0xff;
	start(2, c);
	cr_assert(RUN_UNTIL(0, 300) == 0);
	cr_assert(!io_net_connected(nodes[1].net, 2));
	cr_assert(!io_net_connected(nodes[2].net, 1));
	cr_assert(strstr(nodes[1].lastlog, "cluster") != NULL, "log: %s", nodes[1].lastlog);
}

Test(io_net, unknown_cluster_id_is_learnt)
{
	uint16_t ports[2] = {free_port(), free_port()};
	struct io_net_config c = base_cfg(2, ports);
	uint8_t want[IO_NET_CLUSTER_LEN];

	memcpy(want, c.cluster_id, sizeof(want));
	start(1, c);
	memset(c.cluster_id, 0, sizeof(c.cluster_id));
	start(2, c);
	cr_assert(RUN_UNTIL(nodes[2].adopted_set && io_net_connected(nodes[2].net, 1), 3000));
	cr_assert_eq(memcmp(nodes[2].adopted, want, sizeof(want)), 0);
}

Test(io_net, unknown_node_is_refused)
{
	uint16_t ports[3] = {free_port(), free_port(), free_port()};
	struct io_net_config c = base_cfg(3, ports);
	struct io_net_config small = base_cfg(2, ports);
	struct io_net_stats s;

	start(1, small); /* node 1 knows only nodes 1 and 2 */
	start(3, c);	 /* node 3 dials node 1 */
	cr_assert(RUN_UNTIL(0, 300) == 0);
	cr_assert(!io_net_connected(nodes[3].net, 1));
	io_net_get_stats(nodes[1].net, &s);
	cr_assert(s.refused > 0);
	cr_assert(strstr(nodes[1].lastlog, "not a member") != NULL, "log: %s", nodes[1].lastlog);
}

/* A byte-flipping man in the middle between node 1 and node 2. */
struct mitm {
	uv_tcp_t server, client, upstream;
	uv_connect_t conn;
	struct sockaddr_in up_addr;
	size_t forwarded;
	size_t flip_at;
	char buf[65536];
};

static void mitm_write_done(uv_write_t *req, int status)
{
	free(req);
}

static void mitm_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct mitm *m = h->data;

	b->base = m->buf;
	b->len = sizeof(m->buf);
}

static void mitm_forward(uv_stream_t *to, const char *data, size_t n)
{
	struct {
		uv_write_t req;
		char data[];
	} *w = malloc(sizeof(*w) + n);
	uv_buf_t b;

	memcpy(w->data, data, n);
	b = uv_buf_init(w->data, (unsigned)n);
	uv_write(&w->req, to, &b, 1, mitm_write_done);
}

static void mitm_read_down(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct mitm *m = s->data;

	if (n <= 0)
		return;
	for (ssize_t i = 0; i < n; i++, m->forwarded++)
		if (m->forwarded == m->flip_at)
			b->base[i] ^= 0x01;
	mitm_forward((uv_stream_t *)&m->upstream, b->base, (size_t)n);
}

static void mitm_read_up(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct mitm *m = s->data;

	if (n <= 0)
		return;
	mitm_forward((uv_stream_t *)&m->client, b->base, (size_t)n);
}

static void mitm_connected(uv_connect_t *req, int status)
{
	struct mitm *m = req->data;

	cr_assert_eq(status, 0);
	uv_read_start((uv_stream_t *)&m->upstream, mitm_alloc, mitm_read_up);
	uv_read_start((uv_stream_t *)&m->client, mitm_alloc, mitm_read_down);
}

static void mitm_accept(uv_stream_t *server, int status)
{
	struct mitm *m = server->data;

	uv_tcp_init(&loop, &m->client);
	m->client.data = m;
	cr_assert_eq(uv_accept(server, (uv_stream_t *)&m->client), 0);
	uv_tcp_init(&loop, &m->upstream);
	m->upstream.data = m;
	m->conn.data = m;
	uv_tcp_connect(&m->conn, &m->upstream, (struct sockaddr *)&m->up_addr, mitm_connected);
}

Test(io_net, tampered_frame_is_rejected)
{
	uint16_t ports[2] = {free_port(), free_port()};
	uint16_t mport = free_port();
	struct io_net_config c = base_cfg(2, ports);
	struct mitm m;
	struct sockaddr_in addr;
	struct io_net_stats s;
	uint32_t next = 0;

	memset(&m, 0, sizeof(m));
	/* flip a bit inside the first frame's body: after HELLO (64) + AUTH (36) + length (4) */
	m.flip_at = 64 + 36 + 4 + 10;
	uv_ip4_addr("127.0.0.1", ports[1], &m.up_addr);
	uv_ip4_addr("127.0.0.1", mport, &addr);
	uv_tcp_init(&loop, &m.server);
	m.server.data = &m;
	cr_assert_eq(uv_tcp_bind(&m.server, (struct sockaddr *)&addr, 0), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&m.server, 4, mitm_accept), 0);

	start(2, c);
	c.peers[1].port = mport;  /* node 1 reaches node 2 through the man in the middle */
	c.backoff_min_ms = 10000; /* and does not re-dial during the test */
	c.backoff_max_ms = 10000;
	start(1, c);
	cr_assert(RUN_UNTIL(io_net_connected(nodes[1].net, 2), 3000), "%s", nodes[1].lastlog);
	send_msgs(1, 2, 3, &next);
	cr_assert(RUN_UNTIL(strstr(nodes[2].lastlog, "failed authentication") != NULL, 3000),
		  "log: %s", nodes[2].lastlog);
	io_net_get_stats(nodes[2].net, &s);
	cr_assert_eq(s.frames_in, 0, "a tampered frame was delivered");
	cr_assert_eq(nodes[2].got[1], 0);
	stop(1);
	stop(2);
	uv_close((uv_handle_t *)&m.server, NULL);
	if (uv_is_active((uv_handle_t *)&m.client) || m.client.loop)
		uv_close((uv_handle_t *)&m.client, NULL);
	if (m.upstream.loop)
		uv_close((uv_handle_t *)&m.upstream, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
}

Test(io_net, reconnects_after_peer_restart)
{
	uint16_t ports[2] = {free_port(), free_port()};
	struct io_net_config c = base_cfg(2, ports);
	uint32_t next = 0;

	start(1, c);
	start(2, c);
	cr_assert(RUN_UNTIL(io_net_connected(nodes[1].net, 2), 3000));
	send_msgs(1, 2, 10, &next);
	cr_assert(RUN_UNTIL(nodes[2].got[1] == 10, 3000));
	stop(2);
	cr_assert(RUN_UNTIL(!io_net_connected(nodes[1].net, 2), 3000));
	cr_assert_eq(io_net_send(nodes[1].net, 2, "x", 1), -ENOTCONN);
	start(2, c);
	cr_assert(RUN_UNTIL(io_net_connected(nodes[1].net, 2), 3000), "%s", nodes[1].lastlog);
	next = 0; /* node 2 is a new process: its counters start again */
	send_msgs(1, 2, 10, &next);
	cr_assert(RUN_UNTIL(nodes[2].got[1] == 10, 3000));
	cr_assert_eq(nodes[2].bad_order, 0);
}

Test(io_net, bad_config_is_refused)
{
	uint16_t ports[2] = {free_port(), free_port()};
	struct io_net_config c = base_cfg(2, ports);
	struct io_net *net;

	c.self_id = 7;
	c.arg = &nodes[1];
	cr_assert_eq(io_net_start(&loop, &c, &net), -EINVAL, "self not in peers");
	c.self_id = 1;
	c.peers[1].id = 1;
	cr_assert_eq(io_net_start(&loop, &c, &net), -EINVAL, "duplicate id");
	c = base_cfg(2, ports);
	c.self_id = 1;
	snprintf(c.peers[0].host, sizeof(c.peers[0].host), "not-an-address");
	cr_assert_eq(io_net_start(&loop, &c, &net), -EINVAL);
	c = base_cfg(2, ports);
	c.self_id = 1;
	c.arg = &nodes[1];
	cr_assert_eq(io_net_start(&loop, &c, &nodes[1].net), 0);
	c.self_id = 1;
	cr_assert_eq(io_net_start(&loop, &c, &net), UV_EADDRINUSE);
}
