/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The front-end (driver, "master") side of the vhost-user protocol, as QEMU speaks it to a
 * vhost-user-vsock back-end: what uvsock-guest uses to attach to uvsockd without a VM, and
 * what tests use to send the back-end messages of their choosing.
 *
 * Messages are a 12-byte header (request, flags, size) and a payload, with descriptors as
 * SCM_RIGHTS. Calls block (the back-end answers at once); every function returns 0 or a
 * negative errno, and validates what the back-end sends back.
 */
#ifndef UVS_VHU_H
#define UVS_VHU_H

#include <stdbool.h>
#include <stdint.h>

/* Requests (vhost-user spec numbering). */
enum uvs_vhu_req {
	UVS_VHU_GET_FEATURES = 1,
	UVS_VHU_SET_FEATURES = 2,
	UVS_VHU_SET_OWNER = 3,
	UVS_VHU_SET_MEM_TABLE = 5,
	UVS_VHU_SET_VRING_NUM = 8,
	UVS_VHU_SET_VRING_ADDR = 9,
	UVS_VHU_SET_VRING_BASE = 10,
	UVS_VHU_GET_VRING_BASE = 11,
	UVS_VHU_SET_VRING_KICK = 12,
	UVS_VHU_SET_VRING_CALL = 13,
	UVS_VHU_GET_PROTOCOL_FEATURES = 15,
	UVS_VHU_SET_PROTOCOL_FEATURES = 16,
	UVS_VHU_SET_VRING_ENABLE = 18,
	UVS_VHU_GET_CONFIG = 24,
};

#define UVS_VHU_VERSION 0x1u
#define UVS_VHU_FLAG_REPLY 0x4u
#define UVS_VHU_F_PROTOCOL_FEATURES 30
#define UVS_VHU_PROTOCOL_F_CONFIG 9
/* Memory regions one SET_MEM_TABLE carries (VHOST_MEMORY_BASELINE_NREGIONS). */
#define UVS_VHU_MAX_REGIONS 8
/* Largest payload we send or accept: SET_MEM_TABLE with 8 regions is 8 + 8 * 32 bytes; a
 * config space is at most 256 bytes plus 12. */
#define UVS_VHU_MAX_PAYLOAD 512u

struct uvs_vhu_region {
	uint64_t gpa;	 /* guest physical address */
	uint64_t size;	 /* bytes */
	uint64_t uaddr;	 /* where the front-end (we) mapped it */
	uint64_t offset; /* in the file */
	int fd;		 /* the file (memfd) */
};

struct uvs_vhu_vring {
	uint16_t num;
	uint64_t desc_uaddr, avail_uaddr, used_uaddr; /* front-end addresses */
	int kickfd, callfd;			      /* eventfds */
};

/** Connect to a back-end's unix socket. @return the fd, or -errno. */
int uvs_vhu_connect(const char *path);

/**
 * Send one message: request, payload of size bytes, up to nfds descriptors.
 * @return 0 or -errno.
 */
int uvs_vhu_send(int fd, uint32_t req, const void *payload, uint32_t size, const int *fds,
		unsigned int nfds);

/**
 * Receive the reply to req into payload (at most cap bytes). The reply must carry the
 * request number and the reply flag. @return the payload size, or -errno (-EPROTO for a
 * malformed reply).
 */
int uvs_vhu_recv(int fd, uint32_t req, void *payload, uint32_t cap);

/** A request answered with a u64 (GET_FEATURES, GET_PROTOCOL_FEATURES). */
int uvs_vhu_get_u64(int fd, uint32_t req, uint64_t *val);

/** A request carrying a u64 (SET_FEATURES, SET_PROTOCOL_FEATURES). */
int uvs_vhu_set_u64(int fd, uint32_t req, uint64_t val);

/** GET_CONFIG: size bytes of the device config space from offset. */
int uvs_vhu_get_config(int fd, uint32_t offset, void *buf, uint32_t size);

/** SET_MEM_TABLE with n regions. */
int uvs_vhu_set_mem_table(int fd, const struct uvs_vhu_region *r, unsigned int n);

/** The SET_VRING_* sequence for vring index: NUM, BASE 0, ADDR, KICK, CALL, then ENABLE if
 * enable (the protocol-features feature was acked). */
int uvs_vhu_set_vring(int fd, unsigned int index, const struct uvs_vhu_vring *v, bool enable);

#endif /* UVS_VHU_H */
