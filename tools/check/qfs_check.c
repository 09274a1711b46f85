/*
 * qfs-check: checks a history file (tools/check/README.md) and prints what it found.
 * Exit status: 0 no anomaly, 1 anomalies, 2 bad input or usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/check/qc_check.h"

static void usage(FILE *out)
{
	fputs(
	    "usage: qfs-check [--shrink-seconds S] [--quiet] [FILE | -]\n"
	    "       qfs-check --generate [--seed S] [--ops N] [--procs P] [--keys K]\n"
	    "                 [--unknown PCT] [--fail PCT] [--lread PCT] [--mutate]\n"
	    "Checks a history (linearizability per key, sequential consistency of reads).\n"
	    "Exit: 0 no anomaly, 1 anomalies found, 2 bad input.\n"
	    "--generate writes a random valid history (of a real sequential execution) instead.\n",
	    out);
}

static int num(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct qc_gen_opts g = {.seed = 1,
				.procs = 10,
				.keys = 3,
				.ops = 10000,
				.pct_unknown = 2,
				.pct_fail = 2,
				.pct_lread = 20};
	struct qc_opts opts = {.shrink_seconds = 10};
	const char *file = "-";
	int generate = 0, quiet = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		unsigned long long v = 0;
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--generate") == 0) {
			generate = 1;
		} else if (strcmp(a, "--mutate") == 0) {
			g.mutate = 1;
		} else if (strcmp(a, "--quiet") == 0) {
			quiet = 1;
		} else if (strcmp(a, "--shrink-seconds") == 0 && val) {
			char *end;
			opts.shrink_seconds = strtod(val, &end);
			if (*end || opts.shrink_seconds < 0) {
				usage(stderr);
				return 2;
			}
			i++;
		} else if (a[0] == '-' && a[1] == '-' && val && num(val, &v) == 0) {
			i++;
			if (strcmp(a, "--seed") == 0)
				g.seed = v;
			else if (strcmp(a, "--ops") == 0)
				g.ops = (size_t)v;
			else if (strcmp(a, "--procs") == 0 && v > 0 && v <= 100000)
				g.procs = (unsigned)v;
			else if (strcmp(a, "--keys") == 0 && v > 0 && v <= 100000)
				g.keys = (unsigned)v;
			else if (strcmp(a, "--unknown") == 0 && v <= 100)
				g.pct_unknown = (unsigned)v;
			else if (strcmp(a, "--fail") == 0 && v <= 100)
				g.pct_fail = (unsigned)v;
			else if (strcmp(a, "--lread") == 0 && v <= 100)
				g.pct_lread = (unsigned)v;
			else {
				usage(stderr);
				return 2;
			}
		} else if (a[0] != '-' || strcmp(a, "-") == 0) {
			file = a;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (generate) {
		int rc = qc_gen(stdout, &g);
		if (rc) {
			fprintf(stderr, "qfs-check: generate: %s\n", strerror(-rc));
			return 2;
		}
		return 0;
	}

	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!f) {
		fprintf(stderr, "qfs-check: %s: %s\n", file, strerror(errno));
		return 2;
	}
	struct qc_history h = {0};
	struct qc_perr perr;
	int rc = qc_history_read(f, &h, &perr);
	if (f != stdin)
		fclose(f);
	if (rc) {
		if (perr.line)
			fprintf(stderr, "qfs-check: %s:%u: %s\n", file, perr.line, perr.msg);
		else
			fprintf(stderr, "qfs-check: %s: %s\n", file,
				perr.msg[0] ? perr.msg : strerror(-rc));
		qc_history_free(&h);
		return 2;
	}
	struct qc_result r = {0};
	rc = qc_check(&h, &opts, &r);
	if (rc) {
		fprintf(stderr, "qfs-check: %s: %s\n", file, strerror(-rc));
		qc_result_free(&r);
		qc_history_free(&h);
		return 2;
	}
	if (!quiet)
		qc_report(stdout, &h, &r);
	double secs = r.lin_seconds + r.seq_seconds;
	printf("qfs-check: %s file=%s ops=%zu keys=%" PRIu32
	       " lin_ops=%zu reads=%zu states=%" PRIu64
	       " lin_s=%.3f seq_s=%.3f ops_per_s=%.0f anomalies=%zu",
	       r.nan ? "ANOMALIES" : "ok", file, h.nops, h.nkeys, r.lin_ops, r.seq_reads, r.states,
	       r.lin_seconds, r.seq_seconds, secs > 0 ? (double)h.nops / secs : 0.0, r.nan);
	if (h.has_seed)
		printf(" seed=%" PRIu64, h.seed);
	printf("\n");
	int status = r.nan ? 1 : 0;
	qc_result_free(&r);
	qc_history_free(&h);
	return status;
}
