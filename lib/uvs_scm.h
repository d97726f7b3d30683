/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Descriptors passed with SCM_RIGHTS, both ways, for every unix-socket protocol of the project
 * (the control socket, vhost-user). Receiving never leaks: descriptors beyond what the caller
 * takes are closed.
 */
#ifndef UVS_SCM_H
#define UVS_SCM_H

#include <sys/socket.h>

/* Control buffer bytes for n descriptors. */
#define UVS_SCM_SPACE(n) CMSG_SPACE((n) * sizeof(int))

/** Attach fds[0..n-1] to msg as one SCM_RIGHTS message built in cbuf (UVS_SCM_SPACE(n) bytes
 * at least; zeroed here, padding included). n == 0 leaves msg without control data. */
void uvs_scm_put(struct msghdr *msg, void *cbuf, const int *fds, unsigned int n);

/** After recvmsg(): move the descriptors msg carried into fds (at most max; the rest are
 * closed). @return how many fds holds. */
unsigned int uvs_scm_get(struct msghdr *msg, int *fds, unsigned int max);

#endif /* UVS_SCM_H */
