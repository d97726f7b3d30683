/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Single-producer single-consumer byte ring in memory shared between a host program and
 * the daemon. The shared part holds only two free-running u32 indexes on their own cache
 * lines; sizes and addresses live in each process's private struct uvs_ring, and each side
 * keeps a private copy of the index it writes, so the other process can corrupt the
 * shared indexes only into a detected error (-EIO), never into an out-of-bounds access.
 */
#ifndef UVS_RING_H
#define UVS_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define UVS_CACHE_LINE 64

struct uvs_ring_idx {
	_Alignas(UVS_CACHE_LINE) uint32_t prod; /* written by the producer only */
	_Alignas(UVS_CACHE_LINE) uint32_t cons; /* written by the consumer only */
};

struct uvs_ring {
	struct uvs_ring_idx *idx; /* shared */
	uint8_t *data;		  /* shared, size bytes */
	uint32_t size;		  /* power of two */
	uint32_t own;		  /* private copy of the index this side writes */
};

/** Attach to a ring; own starts at the current shared value of the index we write. */
void uvs_ring_attach(struct uvs_ring *r, struct uvs_ring_idx *idx, void *data, uint32_t size,
		bool producer);
/** Take own back from the shared index: for a side shared by several processes (fork),
 * which take turns under a lock; never for a side that does not trust the other. */
void uvs_ring_resync(struct uvs_ring *r, bool producer);
/** Consumer: bytes readable, or -EIO if the producer's index is impossible. */
int uvs_ring_used(const struct uvs_ring *r, uint32_t *used);
/** Producer: bytes writable, or -EIO if the consumer's index is impossible. */
int uvs_ring_space(const struct uvs_ring *r, uint32_t *space);
/** Copy len bytes to the ring at own + off (producer, not yet visible). */
void uvs_ring_put(struct uvs_ring *r, uint32_t off, const void *buf, uint32_t len);
/** Copy len bytes from the ring at own + off (consumer, not consumed). */
void uvs_ring_get(const struct uvs_ring *r, uint32_t off, void *buf, uint32_t len);
/** Copy between an iovec (byte offset iov_off) and the ring at own + off. */
void uvs_ring_put_iov(struct uvs_ring *r, uint32_t off, const struct iovec *iov, unsigned int n,
		uint32_t iov_off, uint32_t len);
void uvs_ring_get_iov(const struct uvs_ring *r, uint32_t off, const struct iovec *iov,
		unsigned int n, uint32_t iov_off, uint32_t len);
/** Publish len bytes (store-release of prod). */
void uvs_ring_produce(struct uvs_ring *r, uint32_t len);
/** Release len bytes (store-release of cons). */
void uvs_ring_consume(struct uvs_ring *r, uint32_t len);

#endif /* UVS_RING_H */
