/*
 * px_msg: the messages of the Multi-Paxos core and their stable binary encoding.
 *
 * Wire format, version 2, all integers little-endian:
 *   header (56 bytes): magic u32 "QPXM" (0x4d585051), version u8 (2), type u8, from u8, to u8,
 *                      ballot u64, commit u64, slot u64, aux u64, nent u32, nsub u32, body_len u32
 *   nent entries:      slot u64, ballot u64, flags u32, len u32, len bytes
 *   nsub submissions:  client u64, seq u64, len u32, len bytes
 *   trailer:           crc32c u32 of every byte before it
 * body_len counts the bytes of entries and submissions. A decoder rejects any other version than
 * its own (version 1 had no batch stamps); a future version bumps it.
 *
 * Field use per type (unused fields are 0): see the table below.
 */
#ifndef QFS_CONSENSUS_PX_MSG_H
#define QFS_CONSENSUS_PX_MSG_H

/* clang-format off */
/*
 * Field use per type (every message also carries from, to, and commit = the sender's commit index):
 *   PREPARE       ballot; slot = first slot asked for
 *   PROMISE       ballot = the ballot promised; slot = sender's first held slot; entries: accepted
 *                 (or chosen, flag PX_ENT_CHOSEN) values of slots > commit and >= the asked slot;
 *                 aux = the highest batch stamp (px_batch.h) in a value the sender accepted or
 *                 learnt: the new leader's stamps start above it
 *   ACCEPT        ballot; slot = lstart (first slot proposed fresh in this ballot); entries (none:
 *                 a heartbeat)
 *   ACCEPTED      ballot; entries: slot only (len 0), one per slot accepted durably (to the
 *                 leader; also from a leader about its own acceptances, to the forwarders (3 nodes) or
 *                 every follower, and
 *                 from acceptors of clusters of 5 or more)
 *   REJECT        ballot = the higher ballot the sender promised; aux = the ballot refused
 *   CATCHUP_REQ   slot = first slot wanted
 *   CATCHUP       slot = sender's first held slot; entries: chosen values
 *   SUBMIT        subs: submissions forwarded to the leader
 *   HELLO         (a learner asks for the promised ballot); aux = 1: "leader, run phase 1 again
 *                 with a ballot above slot"
 *   HELLO_REPLY   ballot = promised
 *   PREVOTE       ballot = the ballot the sender would campaign with (nothing changes on receipt)
 *   PREVOTE_REPLY ballot = as asked; aux = 1 granted, 0 refused
 */
/* clang-format on */

#include <stddef.h>
#include <stdint.h>

#define PX_MSG_MAGIC	0x4d585051u
#define PX_MSG_VERSION	2u /* 2: batches carry the leader's stamp (px_batch.h) */
#define PX_MSG_HDR	56u
#define PX_MSG_ENT_HDR	24u
#define PX_MSG_SUB_HDR	20u
#define PX_MSG_MAX_NODE 9u

enum px_msg_type {
	PX_MSG_PREPARE = 1,
	PX_MSG_PROMISE,
	PX_MSG_ACCEPT,
	PX_MSG_ACCEPTED,
	PX_MSG_REJECT,
	PX_MSG_CATCHUP_REQ,
	PX_MSG_CATCHUP,
	PX_MSG_SUBMIT,
	PX_MSG_HELLO,
	PX_MSG_HELLO_REPLY,
	PX_MSG_PREVOTE,
	PX_MSG_PREVOTE_REPLY,
	PX_MSG_TYPE_MAX = PX_MSG_PREVOTE_REPLY,
};

enum { PX_ENT_CHOSEN = 1u << 0 };

/* One log slot's value. data may be NULL when len is 0. */
struct px_entry {
	uint64_t slot;
	uint64_t ballot;
	uint32_t flags;
	uint32_t len;
	const uint8_t *data;
};

/* One client submission: opaque bytes identified by (client, seq). */
struct px_sub {
	uint64_t client;
	uint64_t seq;
	uint32_t len;
	const uint8_t *data;
};

struct px_msg {
	uint8_t type;
	uint8_t from;
	uint8_t to;
	uint64_t ballot;
	uint64_t commit;
	uint64_t slot;
	uint64_t aux;
	uint32_t nent;
	uint32_t nsub;
	const struct px_entry *ent;
	const struct px_sub *sub;
};

/* CRC32C (Castagnoli) of BUF, continuing from CRC (start with 0). Pure. */
uint32_t px_crc32c(uint32_t crc, const void *buf, size_t len);

/* Bytes px_msg_encode needs for MSG. */
size_t px_msg_size(const struct px_msg *msg);

/*
 * Encode MSG into BUF[0..cap). Returns the length written (> 0), -ENOBUFS when cap is too small,
 * -EINVAL for a message no decoder would accept (unknown type, node id >= PX_MSG_MAX_NODE, a value
 * over UINT32_MAX bytes).
 */
long px_msg_encode(const struct px_msg *msg, uint8_t *buf, size_t cap);

/* Growable scratch for decoded entries; zero-initialise, release with px_msg_scratch_free. */
struct px_msg_scratch {
	struct px_entry *ent;
	struct px_sub *sub;
	uint32_t ent_cap;
	uint32_t sub_cap;
};
void px_msg_scratch_free(struct px_msg_scratch *s);

/*
 * Decode BUF[0..len) into *MSG. Entry and submission data point into BUF; the arrays live in
 * SCRATCH. Both must outlive the use of *MSG. Never reads outside BUF.
 * Errors: -EBADMSG (checksum mismatch, bad magic), -EINVAL (truncated, trailing bytes, unknown
 * version or type, node id out of range, counts that do not fit), -ENOMEM (scratch).
 */
int px_msg_decode(const uint8_t *buf, size_t len, struct px_msg *msg,
		  struct px_msg_scratch *scratch);

#endif
