/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvs_srv out of file descriptors: programs waiting on the control socket are refused with
 * ENOBUFS and the server's epoll set goes quiet (level-triggered, an unaccepted connection
 * would otherwise be reported on every pass: the daemon spun at 100% of a CPU), with the
 * spare fd and without it (the control socket is then left unwatched until an fd closes);
 * and the fd budget (struct uvs_srv's fd_budget) refuses sockets and programs past it; and a
 * policy's socket quota (sockets rules) refuses a user's sockets past it.
 */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "uvs_policy.h"
#include "uvs_scm.h"
#include "uvs_srv.h"

/* Fds left free when the table is shrunk for a test: enough for its programs' sockets. */
#define FREE_FDS 12
/* /dev/null fds a test may hold to fill the table. */
#define MAX_HELD 64
/* Rounds of events a server must go quiet within (each action queues a few). */
#define QUIET_ROUNDS 16

/* Under valgrind (UVT_VALGRIND set by the test), whose emulated fd limit closes an fd the
 * kernel made past it and reports EMFILE: accept4() then takes the connection itself, so a
 * refused program may see only the end of its connection, not counted by the server. */
static bool under_valgrind;

struct fix {
	struct uvs_srv srv;
	int epfd;
	char dir[64];
	char path[96];
	struct rlimit rl; /* the process's, restored at teardown */
	int held[MAX_HELD];
	int nheld;
};

static struct uvs_peer *
no_peer(void *ctx, uint32_t cid)
{
	(void)ctx;
	(void)cid;
	return NULL;
}

static void
no_kick(void *ctx, struct uvs_peer *p)
{
	(void)ctx;
	(void)p;
}

static void
quiet_log(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

static const struct uvs_srv_ops ops = { .peer_by_cid = no_peer, .kick = no_kick, .log = quiet_log };

static int
setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/uvs-test-srv.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->dir);
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(f->epfd >= 0);
	assert_int_equal(uvs_srv_init(&f->srv, f->epfd, 2, &ops, NULL), 0);
	assert_int_equal(uvs_srv_listen(&f->srv, f->path), 0);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->rl), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	for (int i = 0; i < f->nheld; i++)
		close(f->held[i]);
	setrlimit(RLIMIT_NOFILE, &f->rl);
	uvs_srv_stop(&f->srv);
	uvs_engine_destroy(f->srv.eng);
	free(f->srv.socks);
	close(f->epfd);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Open fds now (the directory read among them, not counted). */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = -1;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 2;
}

/* Shrink the fd table to what is open now and FREE_FDS more. */
static void
shrink_table(struct fix *f)
{
	struct rlimit rl = f->rl;

	rl.rlim_cur = (rlim_t)open_fds() + FREE_FDS;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Take every free fd. */
static void
fill_table(struct fix *f)
{
	int fd;

	while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
		assert_true(f->nheld < MAX_HELD);
		f->held[f->nheld++] = fd;
	}
	assert_int_equal(errno, EMFILE);
}

static void
give_back_one(struct fix *f)
{
	assert_true(f->nheld > 0);
	close(f->held[--f->nheld]);
}

/* A program's control connection (not yet accepted by the server). */
static int
prog_connect(const struct fix *f)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sun.sun_path, f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Serve the server's events as the daemon's loop does; it must go quiet. */
static void
pump(struct fix *f)
{
	struct epoll_event ev[16];

	for (int round = 0; round < QUIET_ROUNDS; round++) {
		int n = epoll_wait(f->epfd, ev, 16, 0);

		assert_true(n >= 0);
		if (n == 0)
			return;
		for (int i = 0; i < n; i++)
			assert_true(uvs_srv_event(&f->srv, ev[i].data.u64, ev[i].events));
	}
	fail_msg("the server's epoll set never went quiet");
}

/* The next response on a program's connection and its fds (in fds, -1 for none). @return its
 * rc. */
static int
response(int fd, uint32_t op, int fds[2], unsigned int *nfds)
{
	struct uvs_ctl_resp resp;
	char cbuf[UVS_SCM_SPACE(2)];
	struct iovec iov = { .iov_base = &resp, .iov_len = sizeof(resp) };
	struct msghdr msg = { .msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	assert_int_equal(n, sizeof(resp));
	assert_int_equal(resp.op, op);
	fds[0] = fds[1] = -1;
	*nfds = uvs_scm_get(&msg, fds, 2);
	return resp.rc;
}

/* A refused program: ENOBUFS in place of HELLO's answer, then the end of the connection. */
static void
assert_refused(int fd)
{
	unsigned int nfds;
	int fds[2];
	char b;

	if (under_valgrind && recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 0) {
		close(fd);
		return;
	}
	assert_int_equal(response(fd, UVS_CTL_HELLO, fds, &nfds), -ENOBUFS);
	assert_int_equal(nfds, 0);
	assert_int_equal(recv(fd, &b, 1, MSG_DONTWAIT), 0);
	close(fd);
}

static void
waiting_programs_refused_when_out_of_fds(void **state)
{
	struct fix *f = *state;
	int prog[3];

	shrink_table(f);
	for (int i = 0; i < 3; i++)
		prog[i] = prog_connect(f);
	fill_table(f);
	pump(f); /* each accept fails with EMFILE: each program is refused through the spare */
	for (int i = 0; i < 3; i++)
		assert_refused(prog[i]);
	if (!under_valgrind) /* there, some or all were closed by valgrind instead */
		assert_int_equal(f->srv.drops[UVS_SRV_DROP_NOFD], 3);
	assert_int_equal(f->srv.nclients, 0);
	assert_true(f->srv.spare_fd >= 0 && !f->srv.ctl_paused);

	/* fds again: the next program is served */
	for (int i = 0; i < 3; i++)
		give_back_one(f);
	prog[0] = prog_connect(f);
	pump(f);
	assert_int_equal(f->srv.nclients, 1);
	close(prog[0]);
	pump(f);
	assert_int_equal(f->srv.nclients, 0);
}

static void
without_spare_the_control_socket_waits_for_a_close(void **state)
{
	struct fix *f = *state;
	int served, waiting, taker;

	shrink_table(f);
	served = prog_connect(f);
	pump(f);
	assert_int_equal(f->srv.nclients, 1);
	fill_table(f);
	/* another thread took the spare's number: the server cannot refuse anyone now */
	close(f->srv.spare_fd);
	f->srv.spare_fd = -1;
	taker = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(taker >= 0);
	give_back_one(f);
	waiting = prog_connect(f); /* the table is full again */
	pump(f);		   /* no spare: the control socket is unwatched, and quiet */
	assert_true(f->srv.ctl_paused);
	assert_int_equal(f->srv.drops[UVS_SRV_DROP_NOFD], 0);
	/* a program leaves (its end's number taken again here, as the table stays full): the
	 * server's end is the new spare, and the waiting program is refused */
	close(served);
	fill_table(f);
	pump(f);
	assert_false(f->srv.ctl_paused);
	assert_true(f->srv.spare_fd >= 0);
	if (!under_valgrind)
		assert_int_equal(f->srv.drops[UVS_SRV_DROP_NOFD], 1);
	assert_refused(waiting);
	close(taker);
}

/* Program prog asks for a STREAM socket. @return the rc; *anchor is its fd (or -1). */
static int
new_socket(struct fix *f, int prog, int *anchor)
{
	struct uvs_ctl_req req = { .op = UVS_CTL_SOCKET, .seq = 1, .a = UVS_TYPE_STREAM };
	unsigned int nfds;
	int fds[2], rc;

	assert_int_equal(send(prog, &req, sizeof(req), MSG_NOSIGNAL), sizeof(req));
	pump(f);
	rc = response(prog, UVS_CTL_SOCKET, fds, &nfds);
	assert_int_equal(nfds, rc == 0 ? 1 : 0);
	*anchor = fds[0];
	return rc;
}

static void
budget_refuses_sockets_and_programs_past_it(void **state)
{
	struct fix *f = *state;
	int anchors[2], prog, other;

	/* one program and two sockets, counted at most (each with its segment) */
	f->srv.fd_budget = UVS_SRV_SEG_CACHE + 1 + 2 * 2;
	prog = prog_connect(f);
	pump(f);
	assert_int_equal(f->srv.nclients, 1);
	for (int i = 0; i < 3; i++) {
		int fd;

		assert_int_equal(new_socket(f, prog, &fd), i < 2 ? 0 : -ENOBUFS);
		if (i < 2)
			anchors[i] = fd;
	}
	assert_int_equal(f->srv.drops[UVS_SRV_DROP_FULL], 1);
	assert_int_equal(f->srv.nsocks_live, 2);
	/* a second program does not fit either */
	other = prog_connect(f);
	pump(f);
	assert_refused(other);
	assert_int_equal(f->srv.drops[UVS_SRV_DROP_NOFD], 1);
	/* a socket closed makes room for it */
	close(anchors[0]);
	pump(f);
	assert_int_equal(f->srv.nsocks_live, 1);
	other = prog_connect(f);
	pump(f);
	assert_int_equal(f->srv.nclients, 2);
	close(other);
	close(anchors[1]);
	close(prog);
	pump(f);
	assert_int_equal(f->srv.nclients, 0);
	assert_int_equal(f->srv.nsocks_live, 0);
}

static void
quota_refuses_a_users_sockets_past_it(void **state)
{
	struct fix *f = *state;
	struct uvs_policy pol;
	char err[128];
	int prog, other, anchors[3];

	/* this process's user (root or not) may hold 2, whoever it is */
	assert_int_equal(uvs_policy_parse(&pol, "sockets * 2\n", err, sizeof(err)), 0);
	f->srv.policy = &pol;
	prog = prog_connect(f);
	other = prog_connect(f); /* the same user's other program shares the quota */
	pump(f);
	assert_int_equal(new_socket(f, prog, &anchors[0]), 0);
	assert_int_equal(new_socket(f, other, &anchors[1]), 0);
	assert_int_equal(new_socket(f, prog, &anchors[2]), -ENOBUFS);
	assert_int_equal(f->srv.drops[UVS_SRV_DROP_QUOTA], 1);
	assert_int_equal(f->srv.drops[UVS_SRV_DROP_FULL], 0);
	/* one closed: room for one more */
	close(anchors[0]);
	pump(f);
	assert_int_equal(f->srv.nsocks_live, 1);
	assert_int_equal(new_socket(f, prog, &anchors[0]), 0);
	assert_int_equal(new_socket(f, other, &anchors[2]), -ENOBUFS);
	assert_int_equal(f->srv.drops[UVS_SRV_DROP_QUOTA], 2);
	/* a quota of 0 allows none */
	uvs_policy_free(&pol);
	assert_int_equal(uvs_policy_parse(&pol, "sockets * 0\n", err, sizeof(err)), 0);
	assert_int_equal(new_socket(f, prog, &anchors[2]), -ENOBUFS);
	close(anchors[0]);
	close(anchors[1]);
	close(prog);
	close(other);
	pump(f);
	assert_int_equal(f->srv.nsocks_live, 0);
	/* every count went back: nobody holds a socket */
	for (unsigned int i = 0; i < UVS_SRV_QUOTA_USERS; i++)
		assert_int_equal(f->srv.quota[i].nsocks, 0);
	f->srv.policy = NULL;
	uvs_policy_free(&pol);
}

int
main(void)
{
	under_valgrind = getenv("UVT_VALGRIND") != NULL;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
				waiting_programs_refused_when_out_of_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(without_spare_the_control_socket_waits_for_a_close,
				setup, teardown),
		cmocka_unit_test_setup_teardown(
				budget_refuses_sockets_and_programs_past_it, setup, teardown),
		cmocka_unit_test_setup_teardown(
				quota_refuses_a_users_sockets_past_it, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
