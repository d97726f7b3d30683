/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * The driver writes descriptors and the avail ring, the device writes the used ring; each
 * side publishes its index with a store-release and reads the other's with a load-acquire.
 * Since every chain is one descriptor with a fixed buffer, the used id is the buffer id and
 * the number of buffers the device holds bounds how many used entries may appear: a device
 * that writes more, or ids or lengths outside what was posted, is reported, never followed.
 */
#include <errno.h>
#include <string.h>

#include "uvs_drvq.h"

static size_t
align_up(size_t v)
{
	return (v + UVS_DRVQ_ALIGN - 1) & ~(size_t)(UVS_DRVQ_ALIGN - 1);
}

static size_t
avail_off(uint16_t size)
{
	return align_up((size_t)size * sizeof(struct uvs_vring_desc));
}

static size_t
used_off(uint16_t size)
{
	/* flags, idx, ring[size], used_event */
	return avail_off(size) + align_up(4 + (size_t)size * 2 + 2);
}

size_t
uvs_drvq_bytes(uint16_t size)
{
	/* flags, idx, ring[size], avail_event */
	return used_off(size) + align_up(4 + (size_t)size * sizeof(struct uvs_vring_used_elem) + 2);
}

int
uvs_drvq_init(struct uvs_drvq *q, void *mem, uint64_t gpa, uint16_t size)
{
	uint8_t *m = mem;

	if (size == 0 || (size & (size - 1)) != 0 || size > UVS_VIRTQ_MAX_SIZE || mem == NULL)
		return -EINVAL;
	memset(mem, 0, uvs_drvq_bytes(size));
	*q = (struct uvs_drvq){
		.desc = (struct uvs_vring_desc *)m,
		.avail = (struct uvs_vring_avail *)(m + avail_off(size)),
		.used = (struct uvs_vring_used *)(m + used_off(size)),
		.desc_gpa = gpa,
		.avail_gpa = gpa + avail_off(size),
		.used_gpa = gpa + used_off(size),
		.size = size,
	};
	return 0;
}

void
uvs_drvq_set_buf(struct uvs_drvq *q, uint16_t id, uint64_t gpa, uint32_t len, bool write)
{
	q->desc[id & (q->size - 1)] = (struct uvs_vring_desc){
		.addr = gpa,
		.len = len,
		.flags = write ? UVS_VRING_DESC_F_WRITE : 0,
	};
}

void
uvs_drvq_set_len(struct uvs_drvq *q, uint16_t id, uint32_t len)
{
	q->desc[id & (q->size - 1)].len = len;
}

int
uvs_drvq_post(struct uvs_drvq *q, uint16_t id)
{
	if (q->posted >= q->size)
		return -ENOSPC;
	q->avail->ring[q->avail_idx & (q->size - 1)] = id & (q->size - 1);
	q->avail_idx++;
	q->posted++;
	return 0;
}

bool
uvs_drvq_publish(struct uvs_drvq *q)
{
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
	/* pairs with the device's fence between clearing NO_NOTIFY and re-reading avail */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & UVS_VRING_USED_F_NO_NOTIFY);
}

int
uvs_drvq_take(struct uvs_drvq *q, uint16_t *id, uint32_t *len)
{
	uint16_t used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(used_idx - q->last_used);
	struct uvs_vring_used_elem e;

	if (pending == 0)
		return 0;
	if (pending > q->posted)
		return -EIO;
	e = q->used->ring[q->last_used & (q->size - 1)];
	if (e.id >= q->size || e.len > q->desc[e.id].len)
		return -EIO;
	q->last_used++;
	q->posted--;
	*id = (uint16_t)e.id;
	*len = e.len;
	return 1;
}

void
uvs_drvq_set_interrupts(struct uvs_drvq *q, bool on)
{
	__atomic_store_n(&q->avail->flags, on ? 0 : UVS_VRING_AVAIL_F_NO_INTERRUPT,
			__ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
