/*
 * px_sim: runs randomised simulated-cluster scenarios (sim.h).
 *
 *   px_sim [--nodes N] [--scenarios K] [--seed S] [--oom PERMILLE]
 *          [--bug NAME --budget B [--end-to-end]]
 *
 * Without --bug: runs K scenarios with seeds S, S+1, ... and fails on the first violation, printing
 * the seed and the command that replays it (PX_SIM_TRACE=1 adds a trace). PX_SIM_SEED=S runs only
 * seed S. --oom P (test builds) makes one of the core's allocations fail in P per mille of the
 * steps of the faulty phase; the node is then re-created from its disk. With --bug NAME
 * (accept-below-promise, forget-promise, skip-repropose, reply-before-persist,
 * learner-votes-early; test builds only): switches that
 * deliberate protocol bug on and succeeds only if the simulator reports a violation within B
 * scenarios, printing how many it took; PX_SIM_BUG=NAME PX_SIM_SEED=S replays one of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus/px_node.h"
#include "tests/consensus/sim.h"

static unsigned bug_of(const char *name)
{
#ifdef QFS_TEST_HOOKS
	if (!strcmp(name, "accept-below-promise"))
		return PX_BUG_ACCEPT_BELOW_PROMISE;
	if (!strcmp(name, "forget-promise"))
		return PX_BUG_FORGET_PROMISE;
	if (!strcmp(name, "skip-repropose"))
		return PX_BUG_SKIP_REPROPOSE;
	if (!strcmp(name, "reply-before-persist"))
		return PX_BUG_REPLY_BEFORE_PERSIST;
	if (!strcmp(name, "learner-votes-early"))
		return PX_BUG_LEARNER_VOTES_EARLY;
	if (!strcmp(name, "admit-gaps"))
		return PX_BUG_ADMIT_GAPS;
	if (!strcmp(name, "learn-mixed-ballots"))
		return PX_BUG_LEARN_MIXED_BALLOTS;
	if (!strcmp(name, "propose-into-chosen"))
		return PX_BUG_PROPOSE_INTO_CHOSEN;
#endif
	(void)name;
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t n = 3, count = 1000;
	uint64_t seed = 1, budget = 0;
	const char *bug = NULL, *env = getenv("PX_SIM_SEED");
	uint64_t first_any = 0;
	uint32_t oom = 0;
	struct sim_stats tot = {0};
	clock_t c0 = clock();
	char why[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
			n = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--scenarios") && i + 1 < argc)
			count = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--bug") && i + 1 < argc)
			bug = argv[++i];
		else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
			budget = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--end-to-end"))
			sim_end_to_end = true;
		else if (!strcmp(argv[i], "--oom") && i + 1 < argc)
			oom = (uint32_t)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr,
				"usage: %s [--nodes N] [--scenarios K] [--seed S] "
				"[--oom PERMILLE] [--bug NAME --budget B [--end-to-end]]\n",
				argv[0]);
			return 2;
		}
	}
	if (env && *env) {
		const char *b = getenv("PX_SIM_BUG");
		seed = strtoull(env, NULL, 0);
		count = 1;
		if (b && *b && !bug) {
			/* replay a bug run: the scenario as the --bug run saw it */
			if (!bug_of(b)) {
				fprintf(stderr, "px_sim: unknown bug %s\n", b);
				return 2;
			}
#ifdef QFS_TEST_HOOKS
			px_debug_bugs = bug_of(b);
#endif
		}
	}
	if (bug) {
		unsigned b = bug_of(bug);
		if (!b) {
			fprintf(stderr, "px_sim: unknown bug %s (or not a QFS_TEST_HOOKS build)\n",
				bug);
			return 2;
		}
#ifdef QFS_TEST_HOOKS
		px_debug_bugs = b;
#endif
		if (!budget)
			budget = count;
		/* A safety violation (prefix "SAFETY") is what counts; other reports (an acceptor
		 * invariant, liveness) are printed and the search goes on. --end-to-end also turns
		 * the acceptor invariants off. */
		for (uint64_t k = 0; k < budget; k++) {
			if (sim_scenario(n, seed + k, why, sizeof(why), NULL) == 0)
				continue;
			if (!first_any)
				first_any = k + 1;
			if (!strstr(why, "SAFETY")) {
				if (first_any == k + 1)
					printf("px_sim: bug %s: scenario %llu (seed %llu) reports: "
					       "%s\n",
					       bug, (unsigned long long)k + 1,
					       (unsigned long long)(seed + k), why);
				continue;
			}
			printf("px_sim: bug %s caught: first report in scenario %llu, first SAFETY "
			       "violation in scenario %llu of %llu (n=%u seed=%llu%s, %.2fs CPU; "
			       "replay: PX_SIM_BUG=%s PX_SIM_SEED=%llu): %s\n",
			       bug, (unsigned long long)first_any, (unsigned long long)k + 1,
			       (unsigned long long)budget, n, (unsigned long long)(seed + k),
			       sim_end_to_end ? ", end-to-end checks only" : "",
			       (double)(clock() - c0) / CLOCKS_PER_SEC, bug,
			       (unsigned long long)(seed + k), why);
			return 0;
		}
		printf(
		    "px_sim: bug %s: NO safety violation reported in %llu scenarios (n=%u; first "
		    "report of any kind: %llu): the checker is too weak\n",
		    bug, (unsigned long long)budget, n, (unsigned long long)first_any);
		return 1;
	}
	for (uint32_t k = 0; k < count; k++) {
		struct sim_stats st;
		if (sim_scenario_oom(n, seed + k, oom, why, sizeof(why), &st)) {
			printf("px_sim: FAILED: n=%u seed=%llu: %s\n", n,
			       (unsigned long long)(seed + k), why);
			printf(
			    "px_sim: replay with: PX_SIM_SEED=%llu PX_SIM_TRACE=1 %s --nodes %u\n",
			    (unsigned long long)(seed + k), argv[0], n);
			return 1;
		}
		tot.events += st.events;
		tot.msgs += st.msgs;
		tot.dropped += st.dropped;
		tot.applied_ops += st.applied_ops;
		tot.acked += st.acked;
		tot.stale += st.stale;
		tot.unknown += st.unknown;
		tot.failed += st.failed;
		tot.snapshots += st.snapshots;
		tot.installs += st.installs;
		tot.elections += st.elections;
		tot.learners_graduated += st.learners_graduated;
		tot.oom_restarts += st.oom_restarts;
	}
	printf("px_sim: %u scenarios of %u nodes passed (seeds %llu..%llu) in %.2fs CPU: %llu "
	       "events, %llu messages (%llu dropped), %llu ops applied, %llu acked, %llu stale, "
	       "%llu unknown, %llu failed, %llu elections, %llu snapshots, %llu installs, %llu "
	       "empty-disk nodes rejoined, %llu restarts after an injected allocation failure\n",
	       count, n, (unsigned long long)seed, (unsigned long long)(seed + count - 1),
	       (double)(clock() - c0) / CLOCKS_PER_SEC, (unsigned long long)tot.events,
	       (unsigned long long)tot.msgs, (unsigned long long)tot.dropped,
	       (unsigned long long)tot.applied_ops, (unsigned long long)tot.acked,
	       (unsigned long long)tot.stale, (unsigned long long)tot.unknown,
	       (unsigned long long)tot.failed, (unsigned long long)tot.elections,
	       (unsigned long long)tot.snapshots, (unsigned long long)tot.installs,
	       (unsigned long long)tot.learners_graduated, (unsigned long long)tot.oom_restarts);
	return 0;
}
