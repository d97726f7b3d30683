/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Indexes are free-running u32 byte counts; the position in data is index & (size - 1).
 * The producer stores payload, then store-releases prod; the consumer load-acquires prod
 * before reading payload, and store-releases cons after reading, which the producer
 * load-acquires before reusing the space. That is the whole synchronisation: no locks, no
 * system calls. Wake-ups are a separate protocol (uvs_ipc.h) built on top.
 *
 * The other side of the ring is another process and may be hostile or buggy: its index is
 * read once per call and checked against the size before any use.
 */
#include <errno.h>
#include <string.h>

#include "uvs_ring.h"
#include "uvs_virtq.h"

void
uvs_ring_attach(struct uvs_ring *r, struct uvs_ring_idx *idx, void *data, uint32_t size,
		bool producer)
{
	r->idx = idx;
	r->data = data;
	r->size = size;
	r->own = __atomic_load_n(producer ? &idx->prod : &idx->cons, __ATOMIC_RELAXED);
}

void
uvs_ring_resync(struct uvs_ring *r, bool producer)
{
	r->own = __atomic_load_n(producer ? &r->idx->prod : &r->idx->cons, __ATOMIC_ACQUIRE);
}

int
uvs_ring_used(const struct uvs_ring *r, uint32_t *used)
{
	uint32_t n = __atomic_load_n(&r->idx->prod, __ATOMIC_ACQUIRE) - r->own;

	if (n > r->size)
		return -EIO;
	*used = n;
	return 0;
}

int
uvs_ring_space(const struct uvs_ring *r, uint32_t *space)
{
	uint32_t n = r->own - __atomic_load_n(&r->idx->cons, __ATOMIC_ACQUIRE);

	if (n > r->size)
		return -EIO;
	*space = r->size - n;
	return 0;
}

void
uvs_ring_put(struct uvs_ring *r, uint32_t off, const void *buf, uint32_t len)
{
	uint32_t pos = (r->own + off) & (r->size - 1);
	uint32_t first = r->size - pos;

	if (first > len)
		first = len;
	memcpy(r->data + pos, buf, first);
	memcpy(r->data, (const uint8_t *)buf + first, len - first);
}

void
uvs_ring_get(const struct uvs_ring *r, uint32_t off, void *buf, uint32_t len)
{
	uint32_t pos = (r->own + off) & (r->size - 1);
	uint32_t first = r->size - pos;

	if (first > len)
		first = len;
	memcpy(buf, r->data + pos, first);
	memcpy((uint8_t *)buf + first, r->data, len - first);
}

void
uvs_ring_put_iov(struct uvs_ring *r, uint32_t off, const struct iovec *iov, unsigned int n,
		uint32_t iov_off, uint32_t len)
{
	uint32_t pos = (r->own + off) & (r->size - 1);
	uint32_t first = r->size - pos;

	if (first > len)
		first = len;
	uvs_iov_to_buf(iov, n, iov_off, r->data + pos, first);
	uvs_iov_to_buf(iov, n, iov_off + first, r->data, len - first);
}

void
uvs_ring_get_iov(const struct uvs_ring *r, uint32_t off, const struct iovec *iov, unsigned int n,
		uint32_t iov_off, uint32_t len)
{
	uint32_t pos = (r->own + off) & (r->size - 1);
	uint32_t first = r->size - pos;

	if (first > len)
		first = len;
	uvs_iov_from_buf(iov, n, iov_off, r->data + pos, first);
	uvs_iov_from_buf(iov, n, iov_off + first, r->data, len - first);
}

void
uvs_ring_produce(struct uvs_ring *r, uint32_t len)
{
	r->own += len;
	__atomic_store_n(&r->idx->prod, r->own, __ATOMIC_RELEASE);
}

void
uvs_ring_consume(struct uvs_ring *r, uint32_t len)
{
	r->own += len;
	__atomic_store_n(&r->idx->cons, r->own, __ATOMIC_RELEASE);
}
