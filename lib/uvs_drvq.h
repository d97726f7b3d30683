/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue from the driver side (a guest's view), over memory this process owns and
 * shares with the device: what uvsock-guest uses to be a virtio-vsock driver without a VM.
 *
 * Fixed mapping: descriptor i always describes buffer i (one descriptor per chain, no
 * indirect tables), so posting a buffer is writing its id into the avail ring. The device
 * is another process: the used ring's ids and lengths are checked before use.
 *
 * Pure code: no system calls, no allocation.
 */
#ifndef UVS_DRVQ_H
#define UVS_DRVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvs_virtq.h"

/* Ring parts are placed on this boundary (the spec asks 16 for descriptors, 2 for avail, 4
 * for used; a cache line keeps driver- and device-written parts apart). */
#define UVS_DRVQ_ALIGN 64u

struct uvs_drvq {
	struct uvs_vring_desc *desc;
	struct uvs_vring_avail *avail;
	struct uvs_vring_used *used;
	uint64_t desc_gpa, avail_gpa, used_gpa; /* for the device (vhost-user addresses) */
	uint16_t size;				/* power of two */
	uint16_t avail_idx;			/* next avail entry to fill (published or not) */
	uint16_t last_used;			/* next used entry to take */
	uint16_t posted;			/* buffers the device holds */
};

/** Bytes a ring of size entries needs (descriptors, avail, used, each aligned). */
size_t uvs_drvq_bytes(uint16_t size);

/**
 * Lay out a ring of size entries (power of two, <= UVS_VIRTQ_MAX_SIZE) at mem, which the
 * device sees at guest physical address gpa. Zeroes it. @return 0 or -EINVAL.
 */
int uvs_drvq_init(struct uvs_drvq *q, void *mem, uint64_t gpa, uint16_t size);

/** Descriptor id describes len bytes at gpa, device-writable if write (an rx buffer). */
void uvs_drvq_set_buf(struct uvs_drvq *q, uint16_t id, uint64_t gpa, uint32_t len, bool write);

/** Change the length of buffer id before posting it (a tx packet's size). */
void uvs_drvq_set_len(struct uvs_drvq *q, uint16_t id, uint32_t len);

/** Offer buffer id to the device; visible at the next uvs_drvq_publish(). -ENOSPC if the
 * device already holds size buffers. */
int uvs_drvq_post(struct uvs_drvq *q, uint16_t id);

/**
 * Make posted buffers visible (store-release of avail->idx).
 * @return true if the device asked to be kicked (VRING_USED_F_NO_NOTIFY clear), read after
 *   a full fence, so a device about to sleep is never left unkicked.
 */
bool uvs_drvq_publish(struct uvs_drvq *q);

/**
 * Take the next buffer the device returned.
 * @return 1 with *id and *len (bytes the device wrote, 0 for a tx buffer); 0 if none;
 *   -EIO if the device wrote an impossible entry (id out of range, len above the buffer's,
 *   or more entries than it held): the queue is unusable.
 */
int uvs_drvq_take(struct uvs_drvq *q, uint16_t *id, uint32_t *len);

/** Ask the device for interrupts (before sleeping) or not (while polling). */
void uvs_drvq_set_interrupts(struct uvs_drvq *q, bool on);

#endif /* UVS_DRVQ_H */
