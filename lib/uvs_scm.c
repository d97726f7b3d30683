/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * One SCM_RIGHTS message per send. On receipt every SCM_RIGHTS message is walked, so that
 * descriptors a peer sent in more messages than expected are closed too.
 */
#include <string.h>
#include <unistd.h>

#include "uvs_scm.h"

void
uvs_scm_put(struct msghdr *msg, void *cbuf, const int *fds, unsigned int n)
{
	struct cmsghdr *cm;

	if (n == 0) {
		msg->msg_control = NULL;
		msg->msg_controllen = 0;
		return;
	}
	memset(cbuf, 0, UVS_SCM_SPACE(n));
	msg->msg_control = cbuf;
	msg->msg_controllen = UVS_SCM_SPACE(n);
	cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
}

unsigned int
uvs_scm_get(struct msghdr *msg, int *fds, unsigned int max)
{
	unsigned int got = 0;
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (got < max)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	return got;
}
