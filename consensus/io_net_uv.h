/*
 * io_net: the peer network of a cluster on libuv TCP (the network seam of the consensus backend).
 *
 * Every node listens on its own address and dials every other peer. A dialled connection carries
 * frames one way only, from the dialler to the listener, so there is nothing to de-duplicate when
 * two nodes dial each other at once: each direction of a pair is its own connection.
 *
 * Handshake (dialler D, listener L), all integers little-endian:
 *   D->L HELLO      magic "QFSN", protocol version, D's id, the id D expects L to have, D's cluster
 * id, a 32-byte random nonce. L->D CHALLENGE  status (0 or a refusal reason), L's cluster id, L's
 * nonce, HMAC-SHA256(secret, "L" | HELLO | status | L's cluster id | L's nonce). D->L AUTH
 * HMAC-SHA256(secret, "D" | HELLO | CHALLENGE). Both sides thus prove they hold the shared secret
 * without sending it. The frame key is HMAC-SHA256(secret, "K" | HELLO | CHALLENGE), fresh for
 * every connection; every frame after the handshake carries a 16-byte Poly1305 tag
 * (ChaCha20-Poly1305 with an empty plaintext) over its length, its body and its sequence number, so
 * a process that does not hold the secret can neither join nor inject, replay or reorder frames of
 * an existing connection. Refusals (logged on both sides with the reason): unknown node id, node id
 * not the one expected, protocol version, cluster id mismatch (an all-zero cluster id means "not
 * known yet" and matches any), failed authentication.
 *
 * Delivery is best effort, as Paxos expects of its network: frames to a peer that is not connected
 * are dropped (io_net_send answers -ENOTCONN), connections are re-dialled with exponential
 * back-off, and frames of one connection arrive in order, at most once.
 *
 * Threads: everything runs on the loop thread passed to io_net_start.
 */
#ifndef QFS_CONSENSUS_IO_NET_UV_H
#define QFS_CONSENSUS_IO_NET_UV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define IO_NET_MAX_PEERS   9
#define IO_NET_MAX_FRAME   (64u * 1024 * 1024) /* one frame's body at most */
#define IO_NET_PROTO	   2u /* = PX_MSG_VERSION: nodes of other releases are refused */
#define IO_NET_SECRET_LEN  32
#define IO_NET_CLUSTER_LEN 16

enum io_net_log_level { IO_NET_DEBUG = 0, IO_NET_INFO = 1, IO_NET_WARN = 2, IO_NET_ERROR = 3 };

/* A frame from peer FROM; BODY is valid only during the call. */
typedef void (*io_net_recv_cb)(void *arg, uint32_t from, const void *body, size_t len);
/* The dialled connection to peer ID came up (up = 1) or went down (up = 0). */
typedef void (*io_net_peer_cb)(void *arg, uint32_t id, int up);
typedef void (*io_net_log_cb)(void *arg, enum io_net_log_level level, const char *msg);
/* The listener side learnt a cluster id from an authenticated peer while its own was all zero. */
typedef void (*io_net_cluster_cb)(void *arg, const uint8_t cluster_id[IO_NET_CLUSTER_LEN]);

struct io_net_peer {
	uint32_t id;   /* 1..255 */
	char host[64]; /* numeric IPv4 or IPv6 address */
	uint16_t port;
};

struct io_net_config {
	uint32_t self_id; /* must appear in peers[] (its address is where we listen) */
	uint32_t npeers;  /* including self */
	struct io_net_peer peers[IO_NET_MAX_PEERS];
	uint8_t cluster_id[IO_NET_CLUSTER_LEN]; /* all zero: not known yet */
	uint8_t secret[IO_NET_SECRET_LEN];
	uint32_t backoff_min_ms; /* 0: 20 ms */
	uint32_t backoff_max_ms; /* 0: 1000 ms */
	io_net_recv_cb on_recv;
	io_net_peer_cb on_peer;	      /* may be NULL */
	io_net_log_cb on_log;	      /* may be NULL */
	io_net_cluster_cb on_cluster; /* may be NULL */
	void *arg;
};

struct io_net;

/*
 * Validate CFG, listen on self's address and start dialling the others.
 * Errors: -EINVAL (bad config: self not in peers, duplicate ids, bad address), -EADDRINUSE and the
 * other errors of uv_listen/uv_tcp_bind (negated errno), -ENOMEM. On failure nothing is left
 * running.
 */
int io_net_start(uv_loop_t *loop, const struct io_net_config *cfg, struct io_net **out);

/*
 * Queue one frame to peer TO; BODY is copied. 0 once queued; -ENOTCONN when that peer is not
 * connected (the frame is dropped); -EINVAL for an unknown peer or a body over IO_NET_MAX_FRAME;
 * -ENOBUFS when too much is already queued to that peer (the frame is dropped); -ENOMEM.
 */
int io_net_send(struct io_net *net, uint32_t to, const void *body, size_t len);

/* Whether the dialled connection to TO is up (authenticated). */
int io_net_connected(const struct io_net *net, uint32_t to);

/* Set the cluster id (e.g. once it was chosen); later handshakes use it. */
void io_net_set_cluster_id(struct io_net *net, const uint8_t cluster_id[IO_NET_CLUSTER_LEN]);

/* Frames received and frames dropped by authentication failures, for status and tests. */
struct io_net_stats {
	uint64_t frames_in, frames_out, bytes_in, bytes_out, refused, auth_failures;
};
void io_net_get_stats(const struct io_net *net, struct io_net_stats *out);

/* Close every handle; NET is freed once the loop has run the close callbacks (run it after this).
 */
void io_net_close(struct io_net *net);

#endif
