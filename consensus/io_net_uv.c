/* io_net: the peer network on libuv TCP. The protocol is described in io_net_uv.h. */
#include "consensus/io_net_uv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define HELLO_LEN     64 /* "QFSN" version from to cluster[16] nonce[32] */
#define CHALLENGE_LEN 92 /* "QFSC" status from cluster[16] nonce[32] mac[32] */
#define AUTH_LEN      36 /* "QFSA" mac[32] */
#define TAG_LEN	      16
#define MAC_LEN	      32
#define NONCE_LEN     32
#define MAX_QUEUED    (256u * 1024 * 1024) /* bytes queued to one peer before io_net_send refuses */

enum refusal {
	REFUSE_NONE = 0,
	REFUSE_UNKNOWN_ID = 1,
	REFUSE_WRONG_ID = 2,
	REFUSE_VERSION = 3,
	REFUSE_CLUSTER = 4,
};

static const char *refusal_str(uint32_t r)
{
	switch (r) {
	case REFUSE_UNKNOWN_ID:
		return "node id is not a member of this cluster";
	case REFUSE_WRONG_ID:
		return "node id is not the one this address belongs to";
	case REFUSE_VERSION:
		return "protocol version differs";
	case REFUSE_CLUSTER:
		return "cluster id differs";
	default:
		return "unknown reason";
	}
}

struct rbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

enum out_state { OUT_IDLE, OUT_CONNECTING, OUT_HANDSHAKE, OUT_UP, OUT_CLOSING };

/* The connection this node dials to one peer: carries our frames to it. */
struct out_peer {
	struct io_net *net;
	uint32_t id;
	struct sockaddr_storage addr;
	enum out_state state;
	uv_tcp_t tcp; /* live unless state is OUT_IDLE */
	uv_connect_t connect;
	uv_timer_t timer; /* re-dial back-off */
	uint32_t backoff_ms;
	uint8_t hello[HELLO_LEN];
	uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint64_t seq;
	struct rbuf rb;
	int last_error; /* last logged failure, to log each kind once per streak */
};

enum in_state { IN_HELLO, IN_AUTH, IN_UP, IN_CLOSING };

/* A connection another node dialled to us: carries its frames to us. */
struct in_conn {
	struct io_net *net;
	struct in_conn *next;
	uv_tcp_t tcp;
	enum in_state state;
	uint32_t from;
	uint8_t hello[HELLO_LEN];
	uint8_t challenge[CHALLENGE_LEN];
	uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint64_t seq;
	struct rbuf rb;
};

struct io_net {
	uv_loop_t *loop;
	struct io_net_config cfg;
	uv_tcp_t listener;
	struct out_peer out[IO_NET_MAX_PEERS];
	struct in_conn *in; /* list of accepted connections */
	struct io_net_stats stats;
	int closing;
	unsigned handles; /* open uv handles; NET is freed when closing and this reaches 0 */
	uint32_t proto;	  /* the protocol version this node speaks: IO_NET_PROTO */
};

struct wreq {
	uv_write_t req;
	uint8_t data[];
};

static void net_log(struct io_net *net, enum io_net_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void net_log(struct io_net *net, enum io_net_log_level level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!net->cfg.on_log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	net->cfg.on_log(net->cfg.arg, level, msg);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int cluster_matches(const uint8_t *a, const uint8_t *b)
{
	static const uint8_t zero[IO_NET_CLUSTER_LEN];

	return memcmp(a, zero, IO_NET_CLUSTER_LEN) == 0 ||
	       memcmp(b, zero, IO_NET_CLUSTER_LEN) == 0 || memcmp(a, b, IO_NET_CLUSTER_LEN) == 0;
}

/* HMAC-SHA256(secret, tag | a | b) */
static void mac3(const struct io_net *net, char tag, const uint8_t *a, size_t alen,
		 const uint8_t *b, size_t blen, uint8_t out[MAC_LEN])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, net->cfg.secret, IO_NET_SECRET_LEN);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)&tag, 1);
	crypto_auth_hmacsha256_update(&st, a, alen);
	if (blen)
		crypto_auth_hmacsha256_update(&st, b, blen);
	crypto_auth_hmacsha256_final(&st, out);
}

static void frame_nonce(uint64_t seq, uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
	memset(nonce, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(seq >> (8 * i));
}

static const struct io_net_peer *peer_cfg(const struct io_net *net, uint32_t id)
{
	for (uint32_t i = 0; i < net->cfg.npeers; i++)
		if (net->cfg.peers[i].id == id)
			return &net->cfg.peers[i];
	return NULL;
}

static struct out_peer *out_peer(struct io_net *net, uint32_t id)
{
	for (uint32_t i = 0; i < net->cfg.npeers; i++)
		if (net->out[i].id == id && id != net->cfg.self_id)
			return &net->out[i];
	return NULL;
}

static void net_maybe_free(struct io_net *net)
{
	if (!net->closing || net->handles > 0)
		return;
	for (uint32_t i = 0; i < net->cfg.npeers; i++)
		free(net->out[i].rb.data);
	sodium_memzero(net->cfg.secret, sizeof(net->cfg.secret));
	free(net);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct io_net *net = h->data;

	net->handles--;
	net_maybe_free(net);
}

/* Make room for at least MIN more bytes at the end of RB. */
static int rbuf_reserve(struct rbuf *rb, size_t min)
{
	size_t cap;
	uint8_t *p;

	if (rb->cap - rb->len >= min)
		return 0;
	cap = rb->cap ? rb->cap : 65536;
	while (cap - rb->len < min)
		cap *= 2;
	p = realloc(rb->data, cap);
	if (!p)
		return -ENOMEM;
	rb->data = p;
	rb->cap = cap;
	return 0;
}

static void rbuf_consume(struct rbuf *rb, size_t n)
{
	memmove(rb->data, rb->data + n, rb->len - n);
	rb->len -= n;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf, struct rbuf *rb)
{
	if (rbuf_reserve(rb, suggested < 65536 ? 65536 : suggested) < 0) {
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	buf->base = (char *)rb->data + rb->len;
	buf->len = rb->cap - rb->len;
}

static void on_write_done(uv_write_t *req, int status)
{
	free(req);
}

/* Write LEN bytes of DATA (copied) on STREAM. */
static int write_copy(uv_stream_t *stream, const void *data, size_t len)
{
	struct wreq *w = malloc(sizeof(*w) + len);
	uv_buf_t buf;
	int rv;

	if (!w)
		return -ENOMEM;
	memcpy(w->data, data, len);
	buf = uv_buf_init((char *)w->data, (unsigned)len);
	rv = uv_write(&w->req, stream, &buf, 1, on_write_done);
	if (rv < 0)
		free(w);
	return rv;
}

/* ---- the dialling side ---- */

static void out_dial(struct out_peer *p);

static void out_timer_closed(uv_handle_t *h)
{
	struct out_peer *p = h->data;

	p->net->handles--;
	net_maybe_free(p->net);
}

static void out_on_timer(uv_timer_t *t)
{
	out_dial(t->data);
}

static void out_on_closed(uv_handle_t *h)
{
	struct out_peer *p = h->data;
	struct io_net *net = p->net;
	uint32_t delay;

	p->state = OUT_IDLE;
	p->rb.len = 0;
	net->handles--;
	if (net->closing) {
		net_maybe_free(net);
		return;
	}
	delay = p->backoff_ms / 2 + randombytes_uniform(p->backoff_ms / 2 + 1);
	p->backoff_ms *= 2;
	if (p->backoff_ms > net->cfg.backoff_max_ms)
		p->backoff_ms = net->cfg.backoff_max_ms;
	uv_timer_start(&p->timer, out_on_timer, delay, 0);
}

/* Close the dialled connection; ERR (a negative errno, or 1 for a refusal) is logged once a streak.
 */
static void out_fail(struct out_peer *p, int err, enum io_net_log_level level, const char *why)
{
	struct io_net *net = p->net;
	int was_up = p->state == OUT_UP;

	if (p->state == OUT_CLOSING || p->state == OUT_IDLE)
		return;
	if (err != p->last_error || was_up)
		net_log(net, level, "peer %u: %s", p->id, why);
	p->last_error = err;
	p->state = OUT_CLOSING;
	sodium_memzero(p->key, sizeof(p->key));
	uv_close((uv_handle_t *)&p->tcp, out_on_closed);
	if (was_up && net->cfg.on_peer)
		net->cfg.on_peer(net->cfg.arg, p->id, 0);
}

static void out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct out_peer *p = h->data;

	on_alloc(h, suggested, buf, &p->rb);
}

static void out_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct out_peer *p = s->data;
	struct io_net *net = p->net;
	const uint8_t *c;
	uint8_t mac[MAC_LEN], auth[AUTH_LEN];
	uint32_t status;
	char why[160];

	if (n == 0)
		return;
	if (n < 0) {
		snprintf(why, sizeof(why), "connection lost: %s", uv_strerror((int)n));
		out_fail(p, (int)n, p->state == OUT_UP ? IO_NET_WARN : IO_NET_DEBUG, why);
		return;
	}
	p->rb.len += (size_t)n;
	if (p->state != OUT_HANDSHAKE) {
		out_fail(p, -EPROTO, IO_NET_WARN,
			 "protocol error: unexpected bytes from the listener");
		return;
	}
	if (p->rb.len < CHALLENGE_LEN)
		return;
	c = p->rb.data;
	mac3(net, 'L', p->hello, HELLO_LEN, c, CHALLENGE_LEN - MAC_LEN, mac);
	if (memcmp(c, "QFSC", 4) != 0 || get32(c + 8) != p->id ||
	    sodium_memcmp(mac, c + CHALLENGE_LEN - MAC_LEN, MAC_LEN) != 0) {
		net->stats.auth_failures++;
		out_fail(
		    p, -EACCES, IO_NET_ERROR,
		    "authentication failed: the peer does not hold our shared secret (or is not "
		    "quorumfs)");
		return;
	}
	status = get32(c + 4);
	if (status != REFUSE_NONE) {
		net->stats.refused++;
		snprintf(why, sizeof(why), "refused our connection: %s", refusal_str(status));
		out_fail(p, (int)status, IO_NET_ERROR, why);
		return;
	}
	if (!cluster_matches(net->cfg.cluster_id, c + 12)) {
		net->stats.refused++;
		out_fail(p, REFUSE_CLUSTER, IO_NET_ERROR,
			 "refused: peer belongs to another cluster");
		return;
	}
	memcpy(auth, "QFSA", 4);
	mac3(net, 'D', p->hello, HELLO_LEN, c, CHALLENGE_LEN, auth + 4);
	mac3(net, 'K', p->hello, HELLO_LEN, c, CHALLENGE_LEN, mac);
	memcpy(p->key, mac, sizeof(p->key));
	rbuf_consume(&p->rb, CHALLENGE_LEN);
	if (write_copy((uv_stream_t *)&p->tcp, auth, AUTH_LEN) < 0) {
		out_fail(p, -EIO, IO_NET_WARN, "write failed during handshake");
		return;
	}
	p->state = OUT_UP;
	p->seq = 0;
	p->backoff_ms = net->cfg.backoff_min_ms;
	if (p->last_error != 0)
		net_log(net, IO_NET_INFO, "peer %u: connected", p->id);
	p->last_error = 0;
	if (net->cfg.on_peer)
		net->cfg.on_peer(net->cfg.arg, p->id, 1);
}

static void out_on_connect(uv_connect_t *req, int status)
{
	struct out_peer *p = req->data;
	struct io_net *net = p->net;
	uint8_t *h = p->hello;
	char why[160];

	if (p->state != OUT_CONNECTING)
		return; /* closed meanwhile */
	if (status < 0) {
		snprintf(why, sizeof(why), "cannot connect: %s", uv_strerror(status));
		out_fail(p, status, IO_NET_DEBUG, why);
		return;
	}
	uv_tcp_nodelay(&p->tcp, 1);
	memcpy(h, "QFSN", 4);
	put32(h + 4, net->proto);
	put32(h + 8, net->cfg.self_id);
	put32(h + 12, p->id);
	memcpy(h + 16, net->cfg.cluster_id, IO_NET_CLUSTER_LEN);
	randombytes_buf(h + 32, NONCE_LEN);
	p->state = OUT_HANDSHAKE;
	if (uv_read_start((uv_stream_t *)&p->tcp, out_alloc, out_on_read) < 0 ||
	    write_copy((uv_stream_t *)&p->tcp, h, HELLO_LEN) < 0)
		out_fail(p, -EIO, IO_NET_WARN, "cannot start the handshake");
}

static void out_dial(struct out_peer *p)
{
	struct io_net *net = p->net;
	int rv;

	if (net->closing || p->state != OUT_IDLE)
		return;
	rv = uv_tcp_init(net->loop, &p->tcp);
	if (rv < 0) {
		uv_timer_start(&p->timer, out_on_timer, p->backoff_ms, 0);
		return;
	}
	p->tcp.data = p;
	net->handles++;
	p->state = OUT_CONNECTING;
	p->connect.data = p;
	rv =
	    uv_tcp_connect(&p->connect, &p->tcp, (const struct sockaddr *)&p->addr, out_on_connect);
	if (rv < 0)
		out_fail(p, rv, IO_NET_DEBUG, "cannot connect");
}

/* ---- the listening side ---- */

static void in_on_closed(uv_handle_t *h)
{
	struct in_conn *c = h->data;
	struct io_net *net = c->net;
	struct in_conn **pp;

	for (pp = &net->in; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	sodium_memzero(c->key, sizeof(c->key));
	free(c->rb.data);
	free(c);
	net->handles--;
	net_maybe_free(net);
}

static void in_close(struct in_conn *c)
{
	if (c->state == IN_CLOSING)
		return;
	c->state = IN_CLOSING;
	uv_close((uv_handle_t *)&c->tcp, in_on_closed);
}

static void in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct in_conn *c = h->data;

	on_alloc(h, suggested, buf, &c->rb);
}

/* Answer a HELLO. 0 to go on; -1 when the connection was refused (and is being closed). */
static int in_hello(struct in_conn *c)
{
	struct io_net *net = c->net;
	const uint8_t *h = c->rb.data;
	uint8_t *ch = c->challenge;
	uint32_t status = REFUSE_NONE, from;

	if (memcmp(h, "QFSN", 4) != 0) {
		net_log(net, IO_NET_WARN, "incoming connection: not a quorumfs peer; closed");
		in_close(c);
		return -1;
	}
	memcpy(c->hello, h, HELLO_LEN);
	from = get32(h + 8);
	if (get32(h + 4) != net->proto)
		status = REFUSE_VERSION;
	else if (!peer_cfg(net, from) || from == net->cfg.self_id)
		status = REFUSE_UNKNOWN_ID;
	else if (get32(h + 12) != net->cfg.self_id)
		status = REFUSE_WRONG_ID;
	else if (!cluster_matches(net->cfg.cluster_id, h + 16))
		status = REFUSE_CLUSTER;
	memcpy(ch, "QFSC", 4);
	put32(ch + 4, status);
	put32(ch + 8, net->cfg.self_id);
	memcpy(ch + 12, net->cfg.cluster_id, IO_NET_CLUSTER_LEN);
	randombytes_buf(ch + 28, NONCE_LEN);
	mac3(net, 'L', c->hello, HELLO_LEN, ch, CHALLENGE_LEN - MAC_LEN,
	     ch + CHALLENGE_LEN - MAC_LEN);
	rbuf_consume(&c->rb, HELLO_LEN);
	if (write_copy((uv_stream_t *)&c->tcp, ch, CHALLENGE_LEN) < 0) {
		in_close(c);
		return -1;
	}
	if (status != REFUSE_NONE) {
		net->stats.refused++;
		net_log(net, IO_NET_ERROR, "refused a connection from node %u (protocol %u): %s",
			from, get32(h + 4), refusal_str(status));
		in_close(c);
		return -1;
	}
	c->from = from;
	c->state = IN_AUTH;
	return 0;
}

static int in_auth(struct in_conn *c)
{
	struct io_net *net = c->net;
	uint8_t mac[MAC_LEN];
	static const uint8_t zero[IO_NET_CLUSTER_LEN];

	mac3(net, 'D', c->hello, HELLO_LEN, c->challenge, CHALLENGE_LEN, mac);
	if (memcmp(c->rb.data, "QFSA", 4) != 0 ||
	    sodium_memcmp(mac, c->rb.data + 4, MAC_LEN) != 0) {
		net->stats.auth_failures++;
		net_log(
		    net, IO_NET_ERROR,
		    "refused node %u: authentication failed (it does not hold the shared secret)",
		    c->from);
		in_close(c);
		return -1;
	}
	mac3(net, 'K', c->hello, HELLO_LEN, c->challenge, CHALLENGE_LEN, mac);
	memcpy(c->key, mac, sizeof(c->key));
	rbuf_consume(&c->rb, AUTH_LEN);
	c->state = IN_UP;
	c->seq = 0;
	if (memcmp(net->cfg.cluster_id, zero, IO_NET_CLUSTER_LEN) == 0 &&
	    memcmp(c->hello + 16, zero, IO_NET_CLUSTER_LEN) != 0 && net->cfg.on_cluster)
		net->cfg.on_cluster(net->cfg.arg, c->hello + 16);
	return 0;
}

/* Deliver every complete frame in C's buffer. -1 when C was closed. */
static int in_frames(struct in_conn *c)
{
	struct io_net *net = c->net;
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	uint8_t empty[1];
	size_t off = 0;

	while (c->rb.len - off >= 4) {
		const uint8_t *f = c->rb.data + off;
		uint32_t len = get32(f);

		if (len > IO_NET_MAX_FRAME) {
			net_log(net, IO_NET_ERROR, "node %u sent a frame of %u bytes; closed",
				c->from, len);
			in_close(c);
			return -1;
		}
		if (c->rb.len - off < 4 + (size_t)len + TAG_LEN)
			break;
		frame_nonce(c->seq, nonce);
		if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
			empty, NULL, empty, 0, f + 4 + len, f, 4 + (unsigned long long)len, nonce,
			c->key) != 0) {
			net->stats.auth_failures++;
			net_log(net, IO_NET_ERROR,
				"frame from node %u failed authentication (tampered, replayed or "
				"reordered); connection closed",
				c->from);
			in_close(c);
			return -1;
		}
		c->seq++;
		net->stats.frames_in++;
		net->stats.bytes_in += len;
		off += 4 + (size_t)len + TAG_LEN;
		net->cfg.on_recv(net->cfg.arg, c->from, f + 4, len);
		if (c->state != IN_UP)
			return -1;
	}
	rbuf_consume(&c->rb, off);
	return 0;
}

static void in_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct in_conn *c = s->data;

	if (n == 0 || c->state == IN_CLOSING)
		return;
	if (n < 0) {
		if (c->state == IN_UP && n != UV_EOF)
			net_log(c->net, IO_NET_DEBUG, "connection from node %u lost: %s", c->from,
				uv_strerror((int)n));
		in_close(c);
		return;
	}
	c->rb.len += (size_t)n;
	if (c->state == IN_HELLO) {
		if (c->rb.len < HELLO_LEN || in_hello(c) < 0)
			return;
	}
	if (c->state == IN_AUTH) {
		if (c->rb.len < AUTH_LEN || in_auth(c) < 0)
			return;
	}
	if (c->state == IN_UP)
		in_frames(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct io_net *net = server->data;
	struct in_conn *c;

	if (status < 0 || net->closing)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->net = net;
	if (uv_tcp_init(net->loop, &c->tcp) < 0) {
		free(c);
		return;
	}
	c->tcp.data = c;
	net->handles++;
	c->next = net->in;
	net->in = c;
	c->state = IN_HELLO;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, in_alloc, in_on_read) < 0) {
		in_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
}

/* ---- public ---- */

static int parse_addr(const struct io_net_peer *p, struct sockaddr_storage *out)
{
	if (uv_ip4_addr(p->host, p->port, (struct sockaddr_in *)out) == 0)
		return 0;
	if (uv_ip6_addr(p->host, p->port, (struct sockaddr_in6 *)out) == 0)
		return 0;
	return -EINVAL;
}

static int check_config(const struct io_net_config *cfg)
{
	int self = 0;

	if (cfg->npeers == 0 || cfg->npeers > IO_NET_MAX_PEERS || !cfg->on_recv)
		return -EINVAL;
	for (uint32_t i = 0; i < cfg->npeers; i++) {
		if (cfg->peers[i].id == 0 || cfg->peers[i].id > 255)
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++)
			if (cfg->peers[j].id == cfg->peers[i].id)
				return -EINVAL;
		if (cfg->peers[i].id == cfg->self_id)
			self = 1;
	}
	return self ? 0 : -EINVAL;
}

int io_net_start(uv_loop_t *loop, const struct io_net_config *cfg, struct io_net **out)
{
	struct io_net *net;
	struct sockaddr_storage self_addr;
	int rv;

	if (sodium_init() < 0)
		return -EIO;
	rv = check_config(cfg);
	if (rv < 0)
		return rv;
	net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->loop = loop;
	net->cfg = *cfg;
	net->proto = IO_NET_PROTO;
#ifdef QFS_TEST_HOOKS
	/* test builds: QFS_TEST_NET_PROTO=N makes this node speak protocol version N (a node of
	 * another release), to show that the others refuse it at the handshake */
	{
		const char *v = getenv("QFS_TEST_NET_PROTO");
		if (v && *v)
			net->proto = (uint32_t)strtoul(v, NULL, 10);
	}
#endif
	if (!net->cfg.backoff_min_ms)
		net->cfg.backoff_min_ms = 20;
	if (!net->cfg.backoff_max_ms)
		net->cfg.backoff_max_ms = 1000;
	for (uint32_t i = 0; i < cfg->npeers; i++) {
		struct out_peer *p = &net->out[i];

		p->net = net;
		p->id = cfg->peers[i].id;
		p->backoff_ms = net->cfg.backoff_min_ms;
		p->last_error = 1; /* log the first successful connection */
		rv = parse_addr(&cfg->peers[i], p->id == cfg->self_id ? &self_addr : &p->addr);
		if (rv < 0)
			goto err;
	}

	rv = uv_tcp_init(loop, &net->listener);
	if (rv < 0)
		goto err;
	net->listener.data = net;
	net->handles++;
	rv = uv_tcp_bind(&net->listener, (const struct sockaddr *)&self_addr, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&net->listener, 64, on_connection);
	if (rv < 0)
		goto err_close;
	for (uint32_t i = 0; i < cfg->npeers; i++) {
		struct out_peer *p = &net->out[i];

		if (p->id == cfg->self_id)
			continue;
		uv_timer_init(loop, &p->timer);
		p->timer.data = p;
		net->handles++;
		out_dial(p);
	}
	*out = net;
	return 0;

err_close:
	net->closing = 1;
	uv_close((uv_handle_t *)&net->listener, on_handle_closed); /* frees NET */
	return rv;
err:
	free(net);
	return rv;
}

int io_net_send(struct io_net *net, uint32_t to, const void *body, size_t len)
{
	struct out_peer *p = out_peer(net, to);
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	uint8_t empty[1];
	struct wreq *w;
	uv_buf_t buf;
	int rv;

	if (!p || len > IO_NET_MAX_FRAME)
		return -EINVAL;
	if (p->state != OUT_UP)
		return -ENOTCONN;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&p->tcp) > MAX_QUEUED)
		return -ENOBUFS;
	w = malloc(sizeof(*w) + 4 + len + TAG_LEN);
	if (!w)
		return -ENOMEM;
	put32(w->data, (uint32_t)len);
	if (len)
		memcpy(w->data + 4, body, len);
	frame_nonce(p->seq, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(empty, w->data + 4 + len, NULL, empty, 0,
							   w->data, 4 + len, NULL, nonce, p->key);
	buf = uv_buf_init((char *)w->data, (unsigned)(4 + len + TAG_LEN));
	rv = uv_write(&w->req, (uv_stream_t *)&p->tcp, &buf, 1, on_write_done);
	if (rv < 0) {
		free(w);
		return rv;
	}
	p->seq++;
	net->stats.frames_out++;
	net->stats.bytes_out += len;
	return 0;
}

int io_net_connected(const struct io_net *net, uint32_t to)
{
	for (uint32_t i = 0; i < net->cfg.npeers; i++)
		if (net->out[i].id == to)
			return net->out[i].state == OUT_UP;
	return 0;
}

void io_net_set_cluster_id(struct io_net *net, const uint8_t cluster_id[IO_NET_CLUSTER_LEN])
{
	memcpy(net->cfg.cluster_id, cluster_id, IO_NET_CLUSTER_LEN);
}

void io_net_get_stats(const struct io_net *net, struct io_net_stats *out)
{
	*out = net->stats;
}

void io_net_close(struct io_net *net)
{
	net->closing = 1;
	for (uint32_t i = 0; i < net->cfg.npeers; i++) {
		struct out_peer *p = &net->out[i];

		if (p->id == net->cfg.self_id)
			continue;
		uv_timer_stop(&p->timer);
		uv_close((uv_handle_t *)&p->timer, out_timer_closed);
		if (p->state != OUT_IDLE && p->state != OUT_CLOSING) {
			p->state = OUT_CLOSING;
			uv_close((uv_handle_t *)&p->tcp, out_on_closed);
		}
	}
	for (struct in_conn *c = net->in; c; c = c->next)
		in_close(c);
	uv_close((uv_handle_t *)&net->listener, on_handle_closed);
}
