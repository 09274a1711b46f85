/*
 * qc: the cluster settings of the quorumfs daemon, from its command line (--id, --peers, ...) and
 * from a zoo.cfg-like file (--config FILE), turned into an rp_cluster_config.
 *
 * The command line wins over the file. Without --peers (or server.N lines in the file) the daemon
 * is the single-node replica (rp_open_local), as before.
 *
 * Config file: one "key=value" a line; '#' starts a comment; blank lines are ignored; keys are
 * case-sensitive; an unknown key is an error (a typo must not silently change nothing).
 *   id=N                     this node's id (1..255)          (--id)
 *   server.N=HOST:PORT       one line per node, self included  (--peers N=HOST:PORT,...)
 *                            ([ADDR]:PORT for IPv6; host names are resolved at start)
 *   dataDir=DIR              the data directory                (--data)
 *   secretFile=FILE          the shared secret                 (--secret-file)
 *   tickTime=MS              leader heartbeat (default 50)     (--tick)
 *   electionTicks=N          election timeout in ticks (10)    (--election-ticks)
 *   sessionTimeout=MS        session timeout asked for (10000) (--session-timeout)
 *   minSessionTimeout=MS     its lower limit (2 ticks)         (--min-session-timeout)
 *   maxSessionTimeout=MS     its upper limit (20 ticks)        (--max-session-timeout)
 *   writeTimeout=MS          a write not applied by then fails with ETIMEDOUT (10000)
 *                                                              (--write-timeout)
 *   snapCount=N              applied slots between snapshots (10000) (--snapshot-interval)
 *   snapKeep=N               log slots kept below a snapshot (1000)  (--snapshot-keep)
 *   clusterId=HEX            32 hex digits; default: the stored one, or chosen at first start
 *                                                              (--cluster-id)
 *   join=true|false          an empty data directory replaces a lost disk (--join)
 * Relative paths in the file (dataDir, secretFile) are relative to the file's directory.
 *
 * Secret file: at least 16 bytes (one trailing newline is not part of the secret), hashed with
 * BLAKE2b (crypto_generichash) to the 32-byte key every node must share.
 *
 * Only tools/ use this; errors are printed to stderr with "quorumfs: " in front, and out of memory
 * aborts. Single-threaded (start-up).
 */
#ifndef QFS_TOOLS_QFS_CONFIG_H
#define QFS_TOOLS_QFS_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "consensus/rp.h"

/* getopt_long codes of the cluster options: add QC_LONG_OPTIONS to the daemon's option table. */
enum {
	QC_OPT_ID = 1000,
	QC_OPT_PEERS,
	QC_OPT_CONFIG,
	QC_OPT_SECRET_FILE,
	QC_OPT_TICK,
	QC_OPT_ELECTION_TICKS,
	QC_OPT_SESSION_TIMEOUT,
	QC_OPT_WRITE_TIMEOUT,
	QC_OPT_SNAPSHOT_INTERVAL,
	QC_OPT_SNAPSHOT_KEEP,
	QC_OPT_CLUSTER_ID,
	QC_OPT_JOIN,
	QC_OPT_MIN_SESSION_TIMEOUT,
	QC_OPT_MAX_SESSION_TIMEOUT,
};

#define QC_LONG_OPTIONS                                                                            \
	{"id", required_argument, NULL, QC_OPT_ID},                                                \
	    {"peers", required_argument, NULL, QC_OPT_PEERS},                                      \
	    {"config", required_argument, NULL, QC_OPT_CONFIG},                                    \
	    {"secret-file", required_argument, NULL, QC_OPT_SECRET_FILE},                          \
	    {"tick", required_argument, NULL, QC_OPT_TICK},                                        \
	    {"election-ticks", required_argument, NULL, QC_OPT_ELECTION_TICKS},                    \
	    {"session-timeout", required_argument, NULL, QC_OPT_SESSION_TIMEOUT},                  \
	    {"min-session-timeout", required_argument, NULL, QC_OPT_MIN_SESSION_TIMEOUT},          \
	    {"max-session-timeout", required_argument, NULL, QC_OPT_MAX_SESSION_TIMEOUT},          \
	    {"write-timeout", required_argument, NULL, QC_OPT_WRITE_TIMEOUT},                      \
	    {"snapshot-interval", required_argument, NULL, QC_OPT_SNAPSHOT_INTERVAL},              \
	    {"snapshot-keep", required_argument, NULL, QC_OPT_SNAPSHOT_KEEP},                      \
	    {"cluster-id", required_argument, NULL, QC_OPT_CLUSTER_ID},                            \
	{                                                                                          \
		"join", no_argument, NULL, QC_OPT_JOIN                                             \
	}

/* The settings as given (strings and numbers; 0 / NULL: not given). */
struct qc_opts {
	const char *config;	 /* --config */
	const char *peers;	 /* --peers, or built from the file's server.N lines */
	const char *secret_file; /* --secret-file / secretFile */
	const char *data_dir;	 /* dataDir from the file (the caller's --data wins) */
	const char *cluster_id;	 /* hex */
	uint32_t id;
	uint32_t tick_ms;
	uint32_t election_ticks;
	uint32_t session_timeout_ms;
	uint32_t min_session_timeout_ms;
	uint32_t max_session_timeout_ms;
	uint32_t write_timeout_ms;
	uint32_t snapshot_every;
	uint32_t snapshot_keep;
	int join; /* 1: yes, -1: explicitly no (file), 0: not given */
};

/* Handle option C (one of QC_OPT_*) with ARG. 1: handled; 0: not a cluster option; -1: bad value
 * (printed). */
int qc_getopt(struct qc_opts *o, int c, const char *arg);

/* Print the cluster options' usage lines. */
void qc_usage(FILE *f);

/* After the command line: read --config (if any) for what the command line did not give.
 * 0 or -1 (printed; also when cluster settings are given without any peers). */
int qc_finish(struct qc_opts *o);

/* The negotiated session timeout (ZooKeeper's rule): the one asked for (default 10000 ms) within
 * [min, max] (defaults 2 and 20 ticks of tick_ms, default 50). 0 or -1 (printed: min > max). */
int qc_session_timeout(const struct qc_opts *o, uint32_t *out);

/* Cluster mode: peers were given. */
int qc_is_cluster(const struct qc_opts *o);

/*
 * Build CL from O: resolve each host to a numeric address, read and hash the secret, check that
 * the id is among the peers. CL's on_log/log_arg are left NULL for the caller. 0 or -1 (printed:
 * a missing secret file, an unresolvable host, a bad peer list, ...).
 */
int qc_build(const struct qc_opts *o, struct rp_cluster_config *cl);

/* The replica's log callback (rp_log_cb) into the daemon's logger (fs/log.h); ARG unused. */
void qc_on_log(void *arg, enum rp_log_level level, const char *msg);

#endif
