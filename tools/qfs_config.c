#include "tools/qfs_config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

#include "fs/log.h"

#define QC_SECRET_MIN 16
#define QC_SECRET_MAX (64 * 1024)

/* Strings read from the config file live here (one daemon, one config). */
static char qc__peer_buf[RP_MAX_PEERS * 320];
static char qc__data_dir[PATH_MAX];
static char qc__secret_file[PATH_MAX];
static char qc__cluster_id[64];

static int qc__u32(const char *what, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "quorumfs: bad %s '%s' (%u..%u)\n", what, s, min, max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int qc_getopt(struct qc_opts *o, int c, const char *arg)
{
	switch (c) {
	case QC_OPT_ID:
		return qc__u32("--id", arg, 1, 255, &o->id) == 0 ? 1 : -1;
	case QC_OPT_PEERS:
		o->peers = arg;
		return 1;
	case QC_OPT_CONFIG:
		o->config = arg;
		return 1;
	case QC_OPT_SECRET_FILE:
		o->secret_file = arg;
		return 1;
	case QC_OPT_TICK:
		return qc__u32("--tick", arg, 1, 10000, &o->tick_ms) == 0 ? 1 : -1;
	case QC_OPT_ELECTION_TICKS:
		return qc__u32("--election-ticks", arg, 2, 1000, &o->election_ticks) == 0 ? 1 : -1;
	case QC_OPT_SESSION_TIMEOUT:
		return qc__u32("--session-timeout", arg, 1, 3600000, &o->session_timeout_ms) == 0
			   ? 1
			   : -1;
	case QC_OPT_MIN_SESSION_TIMEOUT:
		return qc__u32("--min-session-timeout", arg, 1, 3600000,
			       &o->min_session_timeout_ms) == 0
			   ? 1
			   : -1;
	case QC_OPT_MAX_SESSION_TIMEOUT:
		return qc__u32("--max-session-timeout", arg, 1, 3600000,
			       &o->max_session_timeout_ms) == 0
			   ? 1
			   : -1;
	case QC_OPT_WRITE_TIMEOUT:
		return qc__u32("--write-timeout", arg, 1, 3600000, &o->write_timeout_ms) == 0 ? 1
											      : -1;
	case QC_OPT_SNAPSHOT_INTERVAL:
		return qc__u32("--snapshot-interval", arg, 1, UINT32_MAX, &o->snapshot_every) == 0
			   ? 1
			   : -1;
	case QC_OPT_SNAPSHOT_KEEP:
		return qc__u32("--snapshot-keep", arg, 1, UINT32_MAX, &o->snapshot_keep) == 0 ? 1
											      : -1;
	case QC_OPT_CLUSTER_ID:
		o->cluster_id = arg;
		return 1;
	case QC_OPT_JOIN:
		o->join = 1;
		return 1;
	default:
		return 0;
	}
}

void qc_usage(FILE *f)
{
	fprintf(
	    f,
	    "\n"
	    "cluster options (without --peers: one node on its own):\n"
	    "  --id N                this node's id (1..255)\n"
	    "  --peers N=HOST:PORT,...  every node of the cluster, this one included (same list\n"
	    "                        on every node; [ADDR]:PORT for IPv6)\n"
	    "  --secret-file F       the shared secret (>= 16 bytes; required with --peers)\n"
	    "  --config FILE         settings in zoo.cfg style (id=, server.N=HOST:PORT, "
	    "dataDir=,\n"
	    "                        secretFile=, tickTime=, electionTicks=, sessionTimeout=,\n"
	    "                        minSessionTimeout=, maxSessionTimeout=,\n"
	    "                        writeTimeout=, snapCount=, snapKeep=, clusterId=, join=);\n"
	    "                        the command line wins\n"
	    "  --tick MS             leader heartbeat (default 50)\n"
	    "  --election-ticks N    election timeout in ticks, randomised up to twice (10)\n"
	    "  --write-timeout MS    a write not applied by then fails with ETIMEDOUT (10000)\n"
	    "  --session-timeout MS  session timeout asked for (10000), negotiated within:\n"
	    "  --min-session-timeout MS  (default 2 ticks) and\n"
	    "  --max-session-timeout MS  (default 20 ticks): a node cut off from the leader for\n"
	    "                        longer loses its ephemeral nodes\n"
	    "  --snapshot-interval N applied operations between snapshots (10000)\n"
	    "  --snapshot-keep N     log entries kept below a snapshot (1000)\n"
	    "  --cluster-id HEX      32 hex digits (default: stored, or chosen at first start)\n"
	    "  --join                this empty data directory replaces a node that lost its "
	    "disk\n");
}

/* PATH relative to the directory of the config file CFG, into OUT. */
static int qc__rel(const char *cfg, const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(cfg, '/');
	int n;

	if (path[0] == '/' || !slash)
		n = snprintf(out, cap, "%s", path);
	else
		n = snprintf(out, cap, "%.*s/%s", (int)(slash - cfg), cfg, path);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static char *qc__trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* One "key=value" of the file into F (the file's values; the caller merges). */
static int qc__file_kv(struct qc_opts *f, const char *cfg, int line, char *key, char *val)
{
	char what[64];

	snprintf(what, sizeof(what), "%s (%s:%d)", key, cfg, line);
	if (strcmp(key, "id") == 0 || strcmp(key, "myid") == 0)
		return qc__u32(what, val, 1, 255, &f->id);
	if (strncmp(key, "server.", 7) == 0) {
		uint32_t id;
		size_t used = strlen(qc__peer_buf);
		int n;

		if (qc__u32(what, key + 7, 1, 255, &id) != 0)
			return -1;
		n = snprintf(qc__peer_buf + used, sizeof(qc__peer_buf) - used, "%s%u=%s",
			     used ? "," : "", id, val);
		if (n < 0 || (size_t)n >= sizeof(qc__peer_buf) - used) {
			fprintf(stderr, "quorumfs: %s:%d: too many servers\n", cfg, line);
			return -1;
		}
		f->peers = qc__peer_buf;
		return 0;
	}
	if (strcmp(key, "dataDir") == 0) {
		if (qc__rel(cfg, val, qc__data_dir, sizeof(qc__data_dir)) != 0)
			goto toolong;
		f->data_dir = qc__data_dir;
		return 0;
	}
	if (strcmp(key, "secretFile") == 0) {
		if (qc__rel(cfg, val, qc__secret_file, sizeof(qc__secret_file)) != 0)
			goto toolong;
		f->secret_file = qc__secret_file;
		return 0;
	}
	if (strcmp(key, "clusterId") == 0) {
		snprintf(qc__cluster_id, sizeof(qc__cluster_id), "%s", val);
		f->cluster_id = qc__cluster_id;
		return 0;
	}
	if (strcmp(key, "join") == 0) {
		if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0 || strcmp(val, "1") == 0)
			f->join = 1;
		else if (strcmp(val, "false") == 0 || strcmp(val, "no") == 0 ||
			 strcmp(val, "0") == 0)
			f->join = -1;
		else {
			fprintf(stderr, "quorumfs: %s:%d: join must be true or false\n", cfg, line);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "tickTime") == 0)
		return qc__u32(what, val, 1, 10000, &f->tick_ms);
	if (strcmp(key, "electionTicks") == 0)
		return qc__u32(what, val, 2, 1000, &f->election_ticks);
	if (strcmp(key, "sessionTimeout") == 0)
		return qc__u32(what, val, 1, 3600000, &f->session_timeout_ms);
	if (strcmp(key, "minSessionTimeout") == 0)
		return qc__u32(what, val, 1, 3600000, &f->min_session_timeout_ms);
	if (strcmp(key, "maxSessionTimeout") == 0)
		return qc__u32(what, val, 1, 3600000, &f->max_session_timeout_ms);
	if (strcmp(key, "writeTimeout") == 0)
		return qc__u32(what, val, 1, 3600000, &f->write_timeout_ms);
	if (strcmp(key, "snapCount") == 0)
		return qc__u32(what, val, 1, UINT32_MAX, &f->snapshot_every);
	if (strcmp(key, "snapKeep") == 0)
		return qc__u32(what, val, 1, UINT32_MAX, &f->snapshot_keep);
	fprintf(stderr, "quorumfs: %s:%d: unknown setting '%s'\n", cfg, line, key);
	return -1;
toolong:
	fprintf(stderr, "quorumfs: %s:%d: path too long\n", cfg, line);
	return -1;
}

static int qc__load(const char *path, struct qc_opts *f)
{
	FILE *fp = fopen(path, "r");
	char buf[1024];
	int line = 0, rv = 0;

	if (!fp) {
		fprintf(stderr, "quorumfs: config file %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (rv == 0 && fgets(buf, sizeof(buf), fp)) {
		char *s, *eq, *hash;

		line++;
		if (!strchr(buf, '\n') && !feof(fp)) {
			fprintf(stderr, "quorumfs: %s:%d: line too long\n", path, line);
			rv = -1;
			break;
		}
		hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		s = qc__trim(buf);
		if (!*s)
			continue;
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "quorumfs: %s:%d: expected key=value\n", path, line);
			rv = -1;
			break;
		}
		*eq = '\0';
		rv = qc__file_kv(f, path, line, qc__trim(s), qc__trim(eq + 1));
	}
	if (rv == 0 && ferror(fp)) {
		fprintf(stderr, "quorumfs: config file %s: read error\n", path);
		rv = -1;
	}
	fclose(fp);
	return rv;
}

int qc_finish(struct qc_opts *o)
{
	struct qc_opts f = {0};

	if (o->config && qc__load(o->config, &f) != 0)
		return -1;
#define QC__MERGE(field)                                                                           \
	do {                                                                                       \
		if (!o->field)                                                                     \
			o->field = f.field;                                                        \
	} while (0)
	QC__MERGE(peers);
	QC__MERGE(secret_file);
	QC__MERGE(data_dir);
	QC__MERGE(cluster_id);
	QC__MERGE(id);
	QC__MERGE(tick_ms);
	QC__MERGE(election_ticks);
	QC__MERGE(session_timeout_ms);
	QC__MERGE(min_session_timeout_ms);
	QC__MERGE(max_session_timeout_ms);
	QC__MERGE(write_timeout_ms);
	QC__MERGE(snapshot_every);
	QC__MERGE(snapshot_keep);
	QC__MERGE(join);
#undef QC__MERGE
	/* A forgotten --peers must not silently start a single node with these settings ignored. */
	if (!o->peers && (o->id || o->secret_file || o->cluster_id || o->join > 0 || o->tick_ms ||
			  o->election_ticks || o->session_timeout_ms || o->min_session_timeout_ms ||
			  o->max_session_timeout_ms || o->write_timeout_ms || o->snapshot_every ||
			  o->snapshot_keep)) {
		fprintf(stderr,
			"quorumfs: cluster settings (--id, --secret-file, timing, snapshots, "
			"--join) need --peers or server.N lines in the config file\n");
		return -1;
	}
	return 0;
}

int qc_session_timeout(const struct qc_opts *o, uint32_t *out)
{
	uint64_t tick = o->tick_ms ? o->tick_ms : 50;
	uint64_t lo = o->min_session_timeout_ms ? o->min_session_timeout_ms : 2 * tick;
	uint64_t hi = o->max_session_timeout_ms ? o->max_session_timeout_ms : 20 * tick;
	uint64_t t = o->session_timeout_ms ? o->session_timeout_ms : 10000;

	if (lo > hi) {
		fprintf(stderr,
			"quorumfs: the minimum session timeout (%" PRIu64
			" ms) is above the maximum "
			"(%" PRIu64 " ms)\n",
			lo, hi);
		return -1;
	}
	if (hi > 3600000)
		hi = 3600000;
	*out = (uint32_t)(t < lo ? lo : t > hi ? hi : t);
	return 0;
}

int qc_is_cluster(const struct qc_opts *o)
{
	return o->peers != NULL;
}

/* HOST (a name or an address) to a numeric address in OUT. */
static int qc__resolve(const char *host, char *out, size_t cap)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rv = getaddrinfo(host, NULL, &hints, &res);

	if (rv != 0) {
		fprintf(stderr, "quorumfs: cannot resolve peer host '%s': %s\n", host,
			gai_strerror(rv));
		return -1;
	}
	rv = getnameinfo(res->ai_addr, res->ai_addrlen, out, (socklen_t)cap, NULL, 0,
			 NI_NUMERICHOST);
	freeaddrinfo(res);
	if (rv != 0) {
		fprintf(stderr, "quorumfs: peer host '%s': %s\n", host, gai_strerror(rv));
		return -1;
	}
	return 0;
}

/* One "ID=HOST:PORT" (ITEM is modified) into P. */
static int qc__peer(char *item, struct rp_peer *p)
{
	char *eq = strchr(item, '='), *host, *colon, *port;
	char orig[320];
	uint32_t port_v;

	snprintf(orig, sizeof(orig), "%s", item);
	if (!eq)
		goto bad;
	*eq = '\0';
	if (qc__u32("peer id", item, 1, 255, &p->id) != 0)
		return -1;
	host = eq + 1;
	if (host[0] == '[') {
		char *close = strchr(host, ']');

		if (!close || close[1] != ':')
			goto bad;
		*close = '\0';
		host++;
		port = close + 2;
	} else {
		colon = strrchr(host, ':');
		if (!colon)
			goto bad;
		*colon = '\0';
		port = colon + 1;
	}
	if (!*host)
		goto bad;
	if (qc__u32("peer port", port, 1, 65535, &port_v) != 0)
		return -1;
	p->port = (uint16_t)port_v;
	return qc__resolve(host, p->host, sizeof(p->host));
bad:
	fprintf(stderr, "quorumfs: bad peer '%s' (expected ID=HOST:PORT)\n", orig);
	return -1;
}

static int qc__peers(const char *spec, struct rp_cluster_config *cl)
{
	char *copy = strdup(spec), *save = NULL, *item;
	int rv = 0;

	if (!copy)
		abort();
	cl->npeers = 0;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		item = qc__trim(item);
		if (!*item)
			continue;
		if (cl->npeers == RP_MAX_PEERS) {
			fprintf(stderr, "quorumfs: more than %d peers\n", RP_MAX_PEERS);
			rv = -1;
			break;
		}
		rv = qc__peer(item, &cl->peers[cl->npeers]);
		if (rv != 0)
			break;
		for (uint32_t i = 0; i < cl->npeers; i++) {
			if (cl->peers[i].id == cl->peers[cl->npeers].id) {
				fprintf(stderr, "quorumfs: peer id %u given twice\n",
					cl->peers[i].id);
				rv = -1;
			}
		}
		if (rv != 0)
			break;
		cl->npeers++;
	}
	free(copy);
	if (rv == 0 && (cl->npeers == 0 || cl->npeers % 2 == 0)) {
		fprintf(stderr,
			"quorumfs: a cluster needs an odd number of nodes (1, 3, 5, 7 or 9); "
			"got %u\n",
			cl->npeers);
		rv = -1;
	}
	return rv;
}

static int qc__secret(const char *path, uint8_t out[RP_SECRET_LEN])
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, rv = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "quorumfs: secret file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > QC_SECRET_MAX) {
		fprintf(stderr,
			"quorumfs: secret file %s: not a regular file of at most %d bytes\n", path,
			QC_SECRET_MAX);
		goto out;
	}
	if (st.st_mode & 077)
		fprintf(stderr, "quorumfs: warning: secret file %s is readable by others\n", path);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		abort();
	while (len < (size_t)st.st_size + 1) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "quorumfs: secret file %s: %s\n", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len < QC_SECRET_MIN) {
		fprintf(stderr, "quorumfs: secret file %s: a secret needs at least %d bytes\n",
			path, QC_SECRET_MIN);
		goto out;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "quorumfs: libsodium failed to initialise\n");
		goto out;
	}
	crypto_generichash(out, RP_SECRET_LEN, buf, len, NULL, 0);
	rv = 0;
out:
	if (buf) {
		sodium_memzero(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	close(fd);
	return rv;
}

static int qc__hex(const char *s, uint8_t out[RP_CLUSTER_LEN])
{
	if (strlen(s) != 2 * RP_CLUSTER_LEN)
		goto bad;
	for (int i = 0; i < RP_CLUSTER_LEN; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			goto bad;
		out[i] = (uint8_t)v;
	}
	return 0;
bad:
	fprintf(stderr, "quorumfs: bad cluster id '%s' (expected %d hex digits)\n", s,
		2 * RP_CLUSTER_LEN);
	return -1;
}

int qc_build(const struct qc_opts *o, struct rp_cluster_config *cl)
{
	int found = 0;

	memset(cl, 0, sizeof(*cl));
	if (!o->id) {
		fprintf(stderr, "quorumfs: --peers needs --id N (this node's id)\n");
		return -1;
	}
	if (qc__peers(o->peers, cl) != 0)
		return -1;
	for (uint32_t i = 0; i < cl->npeers; i++)
		found |= cl->peers[i].id == o->id;
	if (!found) {
		fprintf(stderr, "quorumfs: this node's id %u is not in the peer list\n", o->id);
		return -1;
	}
	if (!o->secret_file) {
		fprintf(stderr, "quorumfs: a cluster needs a shared secret: --secret-file FILE "
				"(the same file on every node, at least 16 bytes; e.g. "
				"'head -c 32 /dev/urandom | base64 > FILE')\n");
		return -1;
	}
	if (qc__secret(o->secret_file, cl->secret) != 0)
		return -1;
	if (o->cluster_id && qc__hex(o->cluster_id, cl->cluster_id) != 0)
		return -1;
	cl->self_id = o->id;
	cl->tick_ms = o->tick_ms;
	cl->election_ticks = o->election_ticks;
	cl->session_timeout_ms = o->session_timeout_ms;
	cl->write_timeout_ms = o->write_timeout_ms;
	cl->snapshot_every = o->snapshot_every;
	cl->snapshot_keep = o->snapshot_keep;
	cl->join = o->join > 0;
	return 0;
}

void qc_on_log(void *arg, enum rp_log_level level, const char *msg)
{
	enum fs_log_level l = level >= RP_LOG_ERROR  ? FS_LOG_ERROR
			      : level == RP_LOG_WARN ? FS_LOG_WARN
			      : level == RP_LOG_INFO ? FS_LOG_INFO
						     : FS_LOG_DEBUG;

	(void)arg;
	if (l == FS_LOG_DEBUG && fs_log_level() < FS_LOG_DEBUG)
		return;
	fs_log(l, "replica: %s", msg);
}
