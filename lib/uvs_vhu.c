/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Payload layouts are those of the vhost-user specification (little-endian, packed where
 * the spec packs). Replies are read with one recvmsg: the back-end sends header and payload
 * in one message. A reply of the wrong request, without the reply flag, or with a size that
 * does not fit, is -EPROTO: the caller drops the connection.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "uvs_scm.h"
#include "uvs_vhu.h"

struct vhu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vhu_state {
	uint32_t index;
	uint32_t num;
};

struct vhu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhu_mem {
	uint32_t nregions;
	uint32_t padding;
	struct {
		uint64_t gpa, size, uaddr, offset;
	} r[UVS_VHU_MAX_REGIONS];
};

struct vhu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[256];
} __attribute__((packed));

int
uvs_vhu_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

int
uvs_vhu_send(int fd, uint32_t req, const void *payload, uint32_t size, const int *fds,
		unsigned int nfds)
{
	struct vhu_hdr h = { .request = req, .flags = UVS_VHU_VERSION, .size = size };
	char cbuf[UVS_SCM_SPACE(UVS_VHU_MAX_REGIONS)];
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)(uintptr_t)payload, size } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = size > 0 ? 2 : 1 };
	ssize_t n;

	if (size > UVS_VHU_MAX_PAYLOAD || nfds > UVS_VHU_MAX_REGIONS)
		return -EINVAL;
	uvs_scm_put(&msg, cbuf, fds, nfds);
	do {
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)(sizeof(h) + size) ? 0 : -EIO;
}

int
uvs_vhu_recv(int fd, uint32_t req, void *payload, uint32_t cap)
{
	struct vhu_hdr h;
	uint8_t buf[UVS_VHU_MAX_PAYLOAD];
	struct iovec iov[2] = { { &h, sizeof(h) }, { buf, sizeof(buf) } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	do {
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	if ((size_t)n < sizeof(h) || h.request != req || !(h.flags & UVS_VHU_FLAG_REPLY) ||
			h.size != (size_t)n - sizeof(h) || h.size > cap)
		return -EPROTO;
	memcpy(payload, buf, h.size);
	return (int)h.size;
}

int
uvs_vhu_get_u64(int fd, uint32_t req, uint64_t *val)
{
	int rc = uvs_vhu_send(fd, req, NULL, 0, NULL, 0);

	if (rc == 0)
		rc = uvs_vhu_recv(fd, req, val, sizeof(*val));
	if (rc >= 0 && rc != (int)sizeof(*val))
		return -EPROTO;
	return rc < 0 ? rc : 0;
}

int
uvs_vhu_set_u64(int fd, uint32_t req, uint64_t val)
{
	return uvs_vhu_send(fd, req, &val, sizeof(val), NULL, 0);
}

int
uvs_vhu_get_config(int fd, uint32_t offset, void *buf, uint32_t size)
{
	struct vhu_config c = { .offset = offset, .size = size };
	uint32_t len = (uint32_t)offsetof(struct vhu_config, region) + size;
	int rc;

	if (size > sizeof(c.region))
		return -EINVAL;
	rc = uvs_vhu_send(fd, UVS_VHU_GET_CONFIG, &c, len, NULL, 0);
	if (rc == 0)
		rc = uvs_vhu_recv(fd, UVS_VHU_GET_CONFIG, &c, sizeof(c));
	if (rc < 0)
		return rc;
	if ((uint32_t)rc != len || c.size != size)
		return -EPROTO;
	memcpy(buf, c.region, size);
	return 0;
}

int
uvs_vhu_set_mem_table(int fd, const struct uvs_vhu_region *r, unsigned int n)
{
	struct vhu_mem m = { .nregions = n };
	int fds[UVS_VHU_MAX_REGIONS];

	if (n == 0 || n > UVS_VHU_MAX_REGIONS)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) {
		m.r[i].gpa = r[i].gpa;
		m.r[i].size = r[i].size;
		m.r[i].uaddr = r[i].uaddr;
		m.r[i].offset = r[i].offset;
		fds[i] = r[i].fd;
	}
	return uvs_vhu_send(fd, UVS_VHU_SET_MEM_TABLE, &m, sizeof(m), fds, n);
}

int
uvs_vhu_set_vring(int fd, unsigned int index, const struct uvs_vhu_vring *v, bool enable)
{
	struct vhu_state st = { .index = index, .num = v->num };
	struct vhu_addr a = { .index = index,
		.desc = v->desc_uaddr,
		.used = v->used_uaddr,
		.avail = v->avail_uaddr };
	uint64_t idx = index;
	int rc;

	rc = uvs_vhu_send(fd, UVS_VHU_SET_VRING_NUM, &st, sizeof(st), NULL, 0);
	st.num = 0;
	if (rc == 0)
		rc = uvs_vhu_send(fd, UVS_VHU_SET_VRING_BASE, &st, sizeof(st), NULL, 0);
	if (rc == 0)
		rc = uvs_vhu_send(fd, UVS_VHU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	if (rc == 0)
		rc = uvs_vhu_send(fd, UVS_VHU_SET_VRING_KICK, &idx, sizeof(idx), &v->kickfd, 1);
	if (rc == 0)
		rc = uvs_vhu_send(fd, UVS_VHU_SET_VRING_CALL, &idx, sizeof(idx), &v->callfd, 1);
	st.num = 1;
	if (rc == 0 && enable)
		rc = uvs_vhu_send(fd, UVS_VHU_SET_VRING_ENABLE, &st, sizeof(st), NULL, 0);
	return rc;
}
