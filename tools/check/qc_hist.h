/*
 * qc_hist: the history file that fault-test clients write, and its parser.
 *
 * Format, version 1 (see tools/check/README.md for examples). A text file of lines; each line is a
 * record: a word naming the record type, then fields KEY=VALUE separated by spaces or tabs. Blank
 * lines and lines whose first non-blank character is '#' are ignored. Unknown fields are ignored,
 * so writers may add their own (node=, mount=...); a field given twice is an error.
 *
 *   history version=1 [seed=S] ...          optional, before any other record; S: the run's seed
 *   init key=K value=V version=N            optional initial state of key K, before any op of K
 *                                           (default: value empty, version 0)
 *   inv  p=P op=O t=T key=K f=F [value=V] [expect=N]      invocation
 *   ok   p=P op=O t=T [value=V] [version=N]               completion: succeeded
 *   fail p=P op=O t=T [err=E]                              completion: definitely took no effect
 *   info p=P op=O t=T [err=E]                              completion: unknown (timeout, crash)
 *
 * P: process (client) id, u32. O: op id, u64, unique per process. T: CLOCK_MONOTONIC nanoseconds,
 * the same clock for every process of the history (one machine). A process runs one op at a time:
 * it may invoke again only after a completion record for its previous op. An invocation with no
 * completion at the end of the file counts as info. Times of one op: t(completion) >= t(inv).
 *
 * Op types F:
 *   read     fresh read (made after sync): linearizable. ok carries value= and version=.
 *   lread    plain local read: only sequentially consistent. ok carries value= and version=.
 *   write    value=V: sets the value, version + 1. ok may carry the new version=.
 *   cas      expect=N value=V: compare-and-set by version, succeeds iff version == N, then as a
 *            write. ok may carry version= (must be N + 1). fail with err=badversion says the op
 *            happened and saw a version other than N; any other fail: it took no effect.
 *   create-seq, lock, unlock     reserved for later workloads: parsed, not checked yet.
 *
 * Values V and keys K are byte strings written as one token: bytes 0x21..0x7e except '%' as they
 * are, any other byte as %XX (two hex digits). An empty value is written "value=".
 */
#ifndef QFS_TOOLS_CHECK_QC_HIST_H
#define QFS_TOOLS_CHECK_QC_HIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QC_T_INF INT64_MAX /* completion time of an op whose outcome is unknown */
#define QC_NOVER (-1)	   /* no version reported */

enum qc_f {
	QC_READ = 1,
	QC_LREAD,
	QC_WRITE,
	QC_CAS,
	QC_CREATE_SEQ,
	QC_LOCK,
	QC_UNLOCK,
};

enum qc_status {
	QC_OK = 1,
	QC_FAIL,    /* took no effect */
	QC_BADVER,  /* cas only: fail err=badversion, happened and saw another version */
	QC_UNKNOWN, /* info, or no completion */
};

struct qc_op {
	uint32_t proc;
	uint64_t id;
	int64_t call;
	int64_t ret; /* QC_T_INF when status is QC_UNKNOWN */
	enum qc_f f;
	enum qc_status st;
	uint32_t key;	/* index into qc_history.keys */
	uint32_t arg;	/* value id written (write, cas) */
	int64_t expect; /* cas */
	uint32_t rval;	/* value id read (ok read/lread); 0 otherwise */
	int64_t rver;	/* version read or written, QC_NOVER if not reported */
	uint32_t line_inv;
	uint32_t line_done; /* 0 when there was no completion record */
};

struct qc_key {
	char *name; /* decoded, NUL-terminated (a key holding NUL is cut there for display) */
	size_t len;
	uint32_t init_val; /* value id */
	int64_t init_ver;
};

struct qc_history {
	struct qc_op *ops; /* in invocation order (file order) */
	size_t nops;
	struct qc_key *keys;
	uint32_t nkeys;
	char **vals; /* value id -> decoded bytes (NUL-terminated copy); id 0 is "" */
	size_t *val_len;
	uint32_t nvals;
	int has_seed;
	uint64_t seed;
	/* private: hash tables for interning */
	uint32_t *kh, *vh;
	uint32_t kh_cap, vh_cap, keys_cap, vals_cap;
	size_t ops_cap;
};

/* Where parsing failed: the 1-based line number (0: not tied to a line) and what was wrong. */
struct qc_perr {
	unsigned line;
	char msg[160];
};

/*
 * Parse the history in BUF[0..len) (need not be NUL-terminated) into *H, which must be zeroed.
 * Returns 0, -EINVAL (malformed: *err says where and why; *H is then empty) or -ENOMEM.
 * Release *H with qc_history_free in every case.
 */
int qc_history_parse(const char *buf, size_t len, struct qc_history *h, struct qc_perr *err);

/* Read all of F and parse it as qc_history_parse. -EIO when F cannot be read. */
int qc_history_read(FILE *f, struct qc_history *h, struct qc_perr *err);

void qc_history_free(struct qc_history *h);

/* Name of op type F ("read", "cas", ...). */
const char *qc_f_name(enum qc_f f);

/* Write value id V of H to OUT in the file's escaped form. */
void qc_write_value(FILE *out, const struct qc_history *h, uint32_t v);

/* Write BYTES[0..len) to OUT escaped as the format requires. */
void qc_write_escaped(FILE *out, const void *bytes, size_t len);

#endif
