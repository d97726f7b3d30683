/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue access from the device side over a guest memory table.
 *
 * Pure code: no DPDK, no system calls, no allocation. The daemon fills struct uvs_memtbl
 * and struct uvs_virtq from rte_vhost, and the unit tests fill them from
 * plain buffers. Every address read from the guest (descriptor addresses, lengths, next
 * indexes, the avail index) is validated here before anything is dereferenced.
 */
#ifndef UVS_VIRTQ_H
#define UVS_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

/* Regions in one guest memory table: vhost-user's VHOST_MEMORY_BASELINE_NREGIONS is 8, and
 * CONFIGURE_MEM_SLOTS (which we do not offer) would allow up to 509. */
#define UVS_MEM_MAX_REGIONS 8
/* Segments one descriptor chain may resolve to. Linux uses 2 (<= 6.16) or up to 18 (6.17 nonlinear
 * tx of 64 KiB in 4 KiB pages); a region boundary can split one descriptor in two. */
#define UVS_CHAIN_MAX_SEGS 64
/* Bytes one chain may describe: one 64 KiB payload plus its header, with slack for guests
 * that post larger rx buffers. Anything longer is refused as malformed. */
#define UVS_CHAIN_MAX_BYTES (1u << 20)
/* Descriptors one chain may have, an indirect one and its table's included: twice the
 * segment limit, so a chain of non-empty descriptors meets that limit first, and only loops
 * and runs of empty descriptors (which no driver makes) reach this one. Without it a walk was
 * bounded by the table size alone: a loop in a 32768-entry ring cost 32768 descriptor reads
 * per chain, and a burst of such chains held the daemon's one polling thread for
 * milliseconds, starving every other guest (tests/hostile, attack "loop" with --txq 32768). */
#define UVS_CHAIN_MAX_DESCS (2u * UVS_CHAIN_MAX_SEGS)
/* Largest split ring the virtio spec allows. */
#define UVS_VIRTQ_MAX_SIZE 32768u

/* Split-ring layout (virtio 1.x, little-endian). */
#define UVS_VRING_DESC_F_NEXT 1
#define UVS_VRING_DESC_F_WRITE 2
#define UVS_VRING_DESC_F_INDIRECT 4
#define UVS_VRING_AVAIL_F_NO_INTERRUPT 1
#define UVS_VRING_USED_F_NO_NOTIFY 1

struct uvs_vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct uvs_vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct uvs_vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct uvs_vring_used {
	uint16_t flags;
	uint16_t idx;
	struct uvs_vring_used_elem ring[];
};

struct uvs_mem_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint64_t hva;  /* where this process mapped it */
};

struct uvs_memtbl {
	uint32_t nregions;
	struct uvs_mem_region regions[UVS_MEM_MAX_REGIONS];
};

/* One split virtqueue as seen by the device. The ring pointers are host virtual addresses
 * already validated by whoever filled the struct (ring fully inside guest memory). */
struct uvs_virtq {
	struct uvs_vring_desc *desc;
	struct uvs_vring_avail *avail;
	struct uvs_vring_used *used;
	uint16_t size;		 /* power of two, <= UVS_VIRTQ_MAX_SIZE */
	uint16_t last_avail_idx; /* next avail entry to take */
	uint16_t used_idx;	 /* next used entry to write (not yet published) */
	uint16_t signalled_used; /* used->idx value at the last publication */
};

/* A popped descriptor chain as byte segments: first all device-readable (out) segments, then
 * all device-writable (in) segments, as the spec requires. */
struct uvs_chain {
	uint16_t head;	  /* id to return in the used ring */
	uint16_t nout;	  /* readable segments: iov[0 .. nout-1] */
	uint16_t nin;	  /* writable segments: iov[nout .. nout+nin-1] */
	uint32_t out_len; /* bytes in readable segments */
	uint32_t in_len;  /* bytes in writable segments */
	struct iovec iov[UVS_CHAIN_MAX_SEGS];
};

/* Why a chain was refused; the daemon counts each reason. */
enum uvs_chain_err {
	UVS_CHAIN_OK = 0,
	UVS_CHAIN_BAD_HEAD,	 /* avail ring entry >= size */
	UVS_CHAIN_BAD_NEXT,	 /* next index >= table size */
	UVS_CHAIN_LOOP,		 /* more descriptors than the table holds, or than
				    UVS_CHAIN_MAX_DESCS */
	UVS_CHAIN_BAD_ADDR,	 /* [addr, addr+len) not inside guest memory */
	UVS_CHAIN_TOO_MANY_SEGS, /* more than UVS_CHAIN_MAX_SEGS segments */
	UVS_CHAIN_TOO_LONG,	 /* more than UVS_CHAIN_MAX_BYTES */
	UVS_CHAIN_ORDER,	 /* readable descriptor after a writable one */
	UVS_CHAIN_BAD_INDIRECT,	 /* nested indirect, indirect with NEXT, bad table length */
	UVS_CHAIN_ERR_MAX,
};

/** A short name of a chain error ("bad_addr", ...), for counter listings. */
const char *uvs_chain_err_str(enum uvs_chain_err err);

/**
 * Translate a guest physical range to a host pointer. The range must lie in one region.
 * @return the host address, or NULL if [gpa, gpa+len) is not entirely inside one region
 *   (len 0 is allowed inside a region; overflow of gpa+len is refused).
 */
void *uvs_mem_translate(const struct uvs_memtbl *mem, uint64_t gpa, uint64_t len);

/**
 * Number of avail entries not taken yet (avail->idx - last_avail_idx, modulo 2^16).
 * A value above vq->size means the guest's index is corrupt: the caller treats it as broken.
 */
uint16_t uvs_virtq_avail_count(const struct uvs_virtq *vq);

/**
 * Take the next available chain and resolve it into segments.
 * Ranges may cross region boundaries when the regions are contiguous in guest physical
 * address space; they are split into several segments. Indirect tables are followed
 * (one level, as the spec allows) when `indirect` is true, refused otherwise.
 * @return 1 with *chain filled; 0 if the ring is empty; -EBADMSG if the chain is malformed
 *   (the head is still consumed: chain->head is valid and must be returned with used
 *   length 0, and *err says why); -EIO if the avail index is corrupt (more than size
 *   entries pending; nothing is consumed).
 */
int uvs_virtq_pop(struct uvs_virtq *vq, const struct uvs_memtbl *mem, bool indirect,
		struct uvs_chain *chain, enum uvs_chain_err *err);

/** Give back the chain just popped, untouched: the next pop returns it again. Only valid
 * right after a successful uvs_virtq_pop() of a well-formed chain. */
void uvs_virtq_unpop(struct uvs_virtq *vq);

/** Queue a used element; it becomes visible to the guest at the next uvs_virtq_publish(). */
void uvs_virtq_push(struct uvs_virtq *vq, uint16_t head, uint32_t len);

/**
 * Make queued used elements visible (store-release of used->idx).
 * @return true if the guest wants an interrupt for them (VRING_AVAIL_F_NO_INTERRUPT clear
 *   and something new was published since the last call).
 */
bool uvs_virtq_publish(struct uvs_virtq *vq);

/** Ask the guest not to kick (busy polling) or to kick again (before sleeping). */
void uvs_virtq_set_notify(struct uvs_virtq *vq, bool enable);

/* Byte-stream helpers over chain segments: copy `len` bytes starting `off` bytes into the
 * segments [iov, iov+n). Return the bytes copied (less than len if the segments end). */
uint32_t uvs_iov_to_buf(
		const struct iovec *iov, unsigned int n, uint32_t off, void *buf, uint32_t len);
uint32_t uvs_iov_from_buf(const struct iovec *iov, unsigned int n, uint32_t off, const void *buf,
		uint32_t len);

#endif /* UVS_VIRTQ_H */
