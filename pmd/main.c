/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvsockd: command line, EAL start-up, and the polling loop.
 *
 * The loop busy-polls the guests' rings while there is work and, after UVSD_IDLE_SPINS
 * empty passes, re-enables guest kicks and sleeps in epoll on every eventfd and socket it
 * serves (kicks, host programs' anchors and control connections, the vhost mailbox), so an
 * idle daemon costs nothing measurable.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include "uvsockd.h"

/* EAL arguments we build when the user gives none. */
#define UVSD_EAL_ARGS_MAX 16
/* epoll events handled per wake-up. */
#define UVSD_EP_BATCH 64
/* How often the engine's timers run while busy (connect/close timeouts need ~ms). */
#define UVSD_TICK_NS (10ull * 1000000ull)

static struct uvs_daemon daemon_state;

static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: uvsockd [EAL options --] --vm cid=N,socket=PATH [--vm ...] [--control PATH]\n"
			"\n"
			"A userspace virtio-vsock device: serves guests that QEMU attaches with\n"
			"  -chardev socket,id=c0,path=PATH -device vhost-user-vsock-pci,chardev=c0\n"
			"and host programs that use libuvsock.\n"
			"\n"
			"Options:\n"
			"  --vm cid=N,socket=PATH  serve a guest with CID N (3..4294967294) on the vhost-user\n"
			"                          socket PATH (created by the daemon; QEMU connects to it).\n"
			"                          Repeat for several guests (at most %d).\n"
			"  --vm ...,group=NAME     guests with the same group may reach each other's CIDs\n"
			"                          (guest-to-guest traffic; off for guests without one)\n"
			"  --control PATH          control socket for host programs\n"
			"                          (default %s; programs find it through $%s)\n"
			"  --policy FILE           who may listen on which ports and connect to which\n"
			"                          guests: lines 'listen WHO PORTS', 'connect WHO CIDS'\n"
			"                          (WHO: user, uid, @group, @gid or *; PORTS, CIDS: N,\n"
			"                          LO-HI or *); anything else is refused with EACCES\n"
			"                          (default: no policy, everything allowed)\n"
			"  --control-mode MODE     the control socket's permissions (default 0666)\n"
			"  --control-owner U[:G]   the control socket's owner and group\n"
			"  --no-yield              spin without yielding the CPU between idle passes\n"
			"                          (for a dedicated core; default: yield every %u idle\n"
			"                          passes, or passes that moved only packets without\n"
			"                          payload, so guests and programs sharing its CPU run)\n"
			"  -h, --help              this text\n"
			"\n"
			"EAL options: with none, uvsockd runs on one lcore without PCI probing, on hugepages\n"
			"if some are free (--in-memory) and without them otherwise (--no-huge).\n"
			"Given EAL options are used as they are, plus --no-pci.\n"
			"\n"
			"The control socket appears when the daemon is ready. SIGINT/SIGTERM stop it;\n"
			"SIGUSR1 prints per-guest counters (packets, drops by reason, queue state).\n",
			UVSD_MAX_GUESTS, UVS_CONTROL_DEFAULT, UVS_CONTROL_ENV, UVSD_YIELD_EVERY);
}

static int
parse_vm(struct uvs_daemon *d, char *arg)
{
	char *save = NULL, *kv;
	long long cid = -1;
	const char *path = NULL, *group = "";
	struct uvsd_guest *g;

	if (d->nguests == UVSD_MAX_GUESTS) {
		fprintf(stderr, "uvsockd: at most %d --vm\n", UVSD_MAX_GUESTS);
		return -EINVAL;
	}
	for (kv = strtok_r(arg, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
		if (strncmp(kv, "cid=", 4) == 0) {
			char *end;

			errno = 0;
			cid = strtoll(kv + 4, &end, 0);
			if (errno != 0 || *end != '\0' || kv[4] == '\0') {
				fprintf(stderr, "uvsockd: --vm: bad cid '%s'\n", kv + 4);
				return -EINVAL;
			}
		} else if (strncmp(kv, "socket=", 7) == 0) {
			path = kv + 7;
		} else if (strncmp(kv, "group=", 6) == 0) {
			group = kv + 6;
			if (group[0] == '\0' || strlen(group) >= UVSD_GROUP_MAX) {
				fprintf(stderr, "uvsockd: --vm: group name must have 1 to %d characters\n",
						UVSD_GROUP_MAX - 1);
				return -EINVAL;
			}
		} else {
			fprintf(stderr, "uvsockd: --vm: unknown key in '%s' (want cid=N,socket=PATH[,group=NAME])\n",
					kv);
			return -EINVAL;
		}
	}
	if (cid < 0 || path == NULL || path[0] == '\0') {
		fprintf(stderr, "uvsockd: --vm needs cid=N,socket=PATH\n");
		return -EINVAL;
	}
	if (cid <= UVS_CID_HOST || cid >= 0xffffffffLL) {
		fprintf(stderr,
				"uvsockd: --vm: cid %lld is reserved (0 hypervisor, 1 local, 2 host, "
				"0xffffffff any); use 3..4294967294\n",
				cid);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(d->guests[0].path)) {
		fprintf(stderr, "uvsockd: --vm: socket path too long: %s\n", path);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < d->nguests; i++) {
		if (d->guests[i].cid == (uint32_t)cid) {
			fprintf(stderr, "uvsockd: --vm: cid %lld given twice\n", cid);
			return -EINVAL;
		}
		if (strcmp(d->guests[i].path, path) == 0) {
			fprintf(stderr, "uvsockd: --vm: socket %s given twice\n", path);
			return -EINVAL;
		}
	}
	g = &d->guests[d->nguests++];
	g->cid = (uint32_t)cid;
	strcpy(g->path, path);
	strcpy(g->group, group);
	return 0;
}

static int
parse_policy(struct uvs_daemon *d, const char *path)
{
	char err[256];
	int rc;

	uvs_policy_free(&d->policy);
	rc = uvs_policy_load(&d->policy, path, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "uvsockd: --policy: %s\n", err);
		return rc;
	}
	d->has_policy = true;
	return 0;
}

static int
parse_mode(struct uvs_daemon *d, const char *s)
{
	char *end;
	unsigned long m = strtoul(s, &end, 8);

	if (*s == '\0' || *end != '\0' || m > 0777) {
		fprintf(stderr, "uvsockd: --control-mode: want octal permissions such as 0660\n");
		return -EINVAL;
	}
	d->ctl_mode = (mode_t)m;
	return 0;
}

/* USER, USER:GROUP or :GROUP, names or numbers. */
static int
parse_owner(struct uvs_daemon *d, const char *s)
{
	char user[256], *group;
	char *end;

	if (strlen(s) >= sizeof(user)) {
		fprintf(stderr, "uvsockd: --control-owner: too long\n");
		return -EINVAL;
	}
	strcpy(user, s);
	group = strchr(user, ':');
	if (group != NULL)
		*group++ = '\0';
	if (user[0] != '\0') {
		struct passwd *pw = getpwnam(user);
		unsigned long v = strtoul(user, &end, 10);

		if (pw != NULL)
			d->ctl_uid = pw->pw_uid;
		else if (*end == '\0')
			d->ctl_uid = (uid_t)v;
		else {
			fprintf(stderr, "uvsockd: --control-owner: no user '%s'\n", user);
			return -EINVAL;
		}
	}
	if (group != NULL && group[0] != '\0') {
		struct group *gr = getgrnam(group);
		unsigned long v = strtoul(group, &end, 10);

		if (gr != NULL)
			d->ctl_gid = gr->gr_gid;
		else if (*end == '\0')
			d->ctl_gid = (gid_t)v;
		else {
			fprintf(stderr, "uvsockd: --control-owner: no group '%s'\n", group);
			return -EINVAL;
		}
	}
	return 0;
}

static int
parse_args(struct uvs_daemon *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'v' },
		{ "control", required_argument, NULL, 'c' },
		{ "no-yield", no_argument, NULL, 'Y' },
		{ "policy", required_argument, NULL, 'P' },
		{ "control-mode", required_argument, NULL, 'M' },
		{ "control-owner", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	snprintf(d->ctl_path, sizeof(d->ctl_path), "%s", UVS_CONTROL_DEFAULT);
	d->ctl_mode = 0666;
	d->ctl_uid = (uid_t)-1;
	d->ctl_gid = (gid_t)-1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'v':
			if (parse_vm(d, optarg) < 0)
				return -EINVAL;
			break;
		case 'c':
			if (strlen(optarg) + 5 >= sizeof(d->ctl_path)) {
				fprintf(stderr, "uvsockd: --control path too long\n");
				return -EINVAL;
			}
			strcpy(d->ctl_path, optarg);
			break;
		case 'Y':
			d->no_yield = true;
			break;
		case 'P':
			if (parse_policy(d, optarg) < 0)
				return -EINVAL;
			break;
		case 'M':
			if (parse_mode(d, optarg) < 0)
				return -EINVAL;
			break;
		case 'O':
			if (parse_owner(d, optarg) < 0)
				return -EINVAL;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "uvsockd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (d->nguests == 0) {
		fprintf(stderr, "uvsockd: at least one --vm cid=N,socket=PATH is needed (see --help)\n");
		return -EINVAL;
	}
	return 0;
}

static bool
hugepages_free(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
	long n = 0;

	if (f == NULL)
		return false;
	if (fscanf(f, "%ld", &n) != 1)
		n = 0;
	fclose(f);
	return n > 0;
}

/* The handlers store into atomic_ints: only lock-free atomics are safe there. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int must be lock-free");

static void
on_signal(int sig)
{
	(void)sig;
	daemon_state.stop = 1;
}

static void
on_usr1(int sig)
{
	(void)sig;
	daemon_state.dump = 1;
}

static void
mkdir_parent(const char *path)
{
	char buf[sizeof(daemon_state.ctl_path)];
	size_t n = strnlen(path, sizeof(buf) - 1);

	memcpy(buf, path, n);
	buf[n] = '\0';
	mkdir(dirname(buf), 0755);
}

static void
handle_event(struct uvs_daemon *d, const struct epoll_event *ev)
{
	uint64_t tag = ev->data.u64;
	uint64_t val = tag >> 3;

	if (uvs_srv_event(&d->srv, tag, ev->events))
		return;
	switch (UVS_SRV_EP_KIND(tag)) {
	case UVSD_EP_KICK:
		uvsd_guest_kicked(d, &d->guests[val / 2], (int)(val % 2));
		break;
	case UVSD_EP_MAIL:
		uvsd_vhost_mail(d);
		break;
	case UVSD_EP_TEL:
		uvsd_telemetry_serve(d);
		break;
	case UVSD_EP_VHU:
		uvsd_vhu_event(d, val);
		break;
	default:
		break;
	}
}

static void
run(struct uvs_daemon *d)
{
	struct epoll_event evs[UVSD_EP_BATCH];
	uint64_t next_tick = 0, now;
	unsigned int idle = 0, pass = 0, light_passes = 0;
	int n, timeout;

	while (!d->stop) {
		unsigned int work = 0, light = 0;

		if (d->dump) {
			d->dump = 0;
			for (unsigned int i = 0; i < d->nguests; i++)
				uvsd_guest_dump(&d->guests[i], stdout);
			printf("host sockets %u\n", d->srv.nsocks_live);
			printf("host requests refused: malformed %lu, notify %lu, policy %lu, "
			       "out of fds %lu, full %lu, quota %lu\n",
					(unsigned long)d->srv.drops[UVS_SRV_DROP_MALFORMED],
					(unsigned long)d->srv.drops[UVS_SRV_DROP_NOTIFY],
					(unsigned long)d->srv.drops[UVS_SRV_DROP_DENIED],
					(unsigned long)d->srv.drops[UVS_SRV_DROP_NOFD],
					(unsigned long)d->srv.drops[UVS_SRV_DROP_FULL],
					(unsigned long)d->srv.drops[UVS_SRV_DROP_QUOTA]);
			printf("host segments %lu, of them reused %lu; kept %u\n",
					(unsigned long)d->srv.segs_created,
					(unsigned long)d->srv.segs_reused,
					uvs_srv_seg_kept(&d->srv));
			fflush(stdout);
		}

		for (unsigned int i = 0; i < d->nguests; i++)
			work += uvsd_guest_poll(d, &d->guests[i], &light);
		work += uvs_srv_poll(&d->srv); /* programs' writes, without their NOTIFY */
		now = uvs_now_ns();
		if (now >= next_tick) {
			uvs_engine_tick(d->srv.eng, now);
			uvsd_vhu_tick(d, now);
			next_tick = now + UVSD_TICK_NS;
		}
		timeout = 0;
		if (work == 0 && ++idle >= UVSD_IDLE_SPINS) {
			bool again = false;

			for (unsigned int i = 0; i < d->nguests; i++)
				again |= uvsd_guest_arm(&d->guests[i]);
			again |= uvs_srv_arm(&d->srv);
			if (!again)
				timeout = UVSD_IDLE_SLEEP_MS;
			idle = 0;
		} else if (work > 0) {
			idle = 0;
			/* only packets without payload: yield as an idle pass would (see
			 * UVSD_YIELD_EVERY), though the loop does not sleep */
			if (work == light && !d->no_yield && ++light_passes % UVSD_YIELD_EVERY == 0)
				sched_yield();
		} else if (!d->no_yield && idle % UVSD_YIELD_EVERY == 0) {
			/* Nothing to do for now: let whoever shares this CPU (a guest's vCPU, the
			 * program we wait for) run. Spinning on instead, on an oversubscribed
			 * machine, holds the CPU until the scheduler's tick: 64 B ping-pong p50
			 * 150 us instead of 14 us on 2 vCPUs (doc/BENCHMARKS.md). */
			sched_yield();
		}
		/* Until it sleeps, the loop looks at sockets and mail every few passes only: an
		 * epoll_wait() per pass would cost more than the pass (a program's notification
		 * waits at most those few passes). */
		if (timeout == 0 && (++pass & (UVSD_EPOLL_EVERY - 1)) != 0)
			continue;
		n = epoll_wait(d->epfd, evs, UVSD_EP_BATCH, timeout);
		for (int i = 0; i < n; i++)
			handle_event(d, &evs[i]);
		if (timeout != 0 && n == 0)
			idle = UVSD_IDLE_SPINS -
			       1; /* a timer wake-up: one pass, then sleep again */
		if (timeout != 0) {
			for (unsigned int i = 0; i < d->nguests; i++)
				if (d->guests[i].running && !d->guests[i].paused)
					for (int q = 0; q < 2; q++)
						uvs_virtq_set_notify(&d->guests[i].vq[q], false);
		}
	}
}

/* Every host socket costs two fds (anchor, segment): ask for what UVSD_MAX_SOCKS of them need
 * with the programs' control connections, the guests and the daemon (raising the hard limit
 * works with CAP_SYS_RESOURCE, up to fs.nr_open), or else take the hard limit. */
static void
fds_raise(void)
{
	const rlim_t want = 2 * (rlim_t)UVS_SRV_MAX_SOCKS + UVS_SRV_SEG_CACHE + UVSD_FD_CLIENTS +
			    UVSD_MAX_GUESTS * UVSD_FD_PER_GUEST + UVSD_FD_SLACK;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want) {
		struct rlimit more = { .rlim_cur = want, .rlim_max = want };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* The fds the control server may hold: what RLIMIT_NOFILE leaves after the fds open now and
 * the reserve for guests and the daemon (UVSD_FD_PER_GUEST, UVSD_FD_SLACK). */
static uint32_t
fd_budget(const struct uvs_daemon *d)
{
	uint64_t reserve = (uint64_t)d->nguests * UVSD_FD_PER_GUEST + UVSD_FD_SLACK;
	struct rlimit rl;
	struct dirent *e;
	uint64_t open_now = 0;
	DIR *dir;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	dir = opendir("/proc/self/fd");
	while (dir != NULL && (e = readdir(dir)) != NULL)
		open_now += e->d_name[0] != '.';
	if (dir != NULL)
		closedir(dir);
	if (rl.rlim_cur > UINT32_MAX)
		rl.rlim_cur = UINT32_MAX;
	if ((uint64_t)rl.rlim_cur < open_now + reserve + UVSD_FD_BUDGET_MIN)
		return UVSD_FD_BUDGET_MIN;
	return (uint32_t)(rl.rlim_cur - open_now - reserve);
}

int
main(int argc, char **argv)
{
	struct uvs_daemon *d = &daemon_state;
	char *eal_argv[UVSD_EAL_ARGS_MAX + 64];
	char prefix[64];
	int eal_argc = 0, sep = -1, rc;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UVS_SRV_EP_TAG(UVSD_EP_MAIL, 0) };

	fds_raise();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			sep = i;
			break;
		}
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
	}
	if (parse_args(d, sep < 0 ? argc : argc - sep, sep < 0 ? argv : argv + sep) < 0)
		return 2;

	eal_argv[eal_argc++] = argv[0];
	if (sep < 0) {
		snprintf(prefix, sizeof(prefix), "--file-prefix=uvsockd-%d", (int)getpid());
		eal_argv[eal_argc++] = (char *)(uintptr_t) "-l";
		eal_argv[eal_argc++] = (char *)(uintptr_t) "0";
		eal_argv[eal_argc++] = prefix;
		eal_argv[eal_argc++] = (char *)(uintptr_t) "--log-level=lib.eal:warning";
		d->hugepages = hugepages_free();
		eal_argv[eal_argc++] =
				(char *)(uintptr_t)(d->hugepages ? "--in-memory" : "--no-huge");
		if (!d->hugepages) {
			eal_argv[eal_argc++] = (char *)(uintptr_t) "-m";
			eal_argv[eal_argc++] = (char *)(uintptr_t) "64";
		}
	} else {
		if (sep - 1 > 60) {
			fprintf(stderr, "uvsockd: too many EAL options\n");
			return 2;
		}
		for (int i = 1; i < sep; i++)
			eal_argv[eal_argc++] = argv[i];
	}
	eal_argv[eal_argc++] = (char *)(uintptr_t) "--no-pci";
	eal_argv[eal_argc] = NULL;
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "uvsockd: EAL initialisation failed: %s\n",
				rte_strerror(rte_errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_usr1);
	pthread_mutex_init(&d->mail_lock, NULL);
	pthread_cond_init(&d->mail_cond, NULL);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->mail_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->epfd < 0 || d->mail_efd < 0 || uvsd_host_init(d) < 0) {
		fprintf(stderr, "uvsockd: out of resources\n");
		return 1;
	}
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->mail_efd, &ev);
	rc = uvsd_telemetry_init(d);
	if (rc < 0)
		fprintf(stderr, "uvsockd: telemetry commands not registered: %s\n", strerror(-rc));
	rc = uvsd_vhost_start(d);
	if (rc < 0) {
		fprintf(stderr, "uvsockd: cannot serve the vhost-user sockets\n");
		return 1;
	}
	mkdir_parent(d->ctl_path);
	d->srv.ctl_mode = d->ctl_mode;
	d->srv.ctl_uid = d->ctl_uid;
	d->srv.ctl_gid = d->ctl_gid;
	d->srv.policy = d->has_policy ? &d->policy : NULL;
	d->srv.fd_budget = fd_budget(d);
	rc = uvs_srv_listen(&d->srv, d->ctl_path);
	if (rc < 0) {
		fprintf(stderr, "uvsockd: control socket %s: %s\n", d->ctl_path, strerror(-rc));
		uvsd_vhost_stop(d);
		return 1;
	}
	d->hugepages = rte_eal_has_hugepages() != 0;
	printf("uvsockd: ready: %u guest(s), control %s, %s\n", d->nguests, d->ctl_path,
			d->hugepages ? "hugepages" : "no hugepages");
	for (unsigned int i = 0; i < d->nguests; i++)
		printf("uvsockd: guest cid %u on %s\n", d->guests[i].cid, d->guests[i].path);
	if (d->srv.fd_budget != 0 && (d->srv.fd_budget - UVS_SRV_SEG_CACHE) / 2 < UVS_SRV_MAX_SOCKS)
		printf("uvsockd: host sockets: at most %u (RLIMIT_NOFILE leaves %u fds to programs)\n",
				(d->srv.fd_budget - UVS_SRV_SEG_CACHE) / 2, d->srv.fd_budget);
	printf("uvsockd: telemetry %s/dpdk_telemetry.v2 (uvsock-ss, dpdk-telemetry.py)\n",
			rte_eal_get_runtime_dir());
	fflush(stdout);
	run(d);
	uvs_srv_stop(&d->srv);
	uvsd_telemetry_stop(d);
	pthread_mutex_lock(&d->mail_lock);
	pthread_cond_broadcast(&d->mail_cond);
	pthread_mutex_unlock(&d->mail_lock);
	uvsd_vhost_stop(d);
	printf("uvsockd: stopped\n");
	return 0;
}
