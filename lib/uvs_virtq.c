/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue, device side: pop descriptor chains, push used elements.
 *
 * Implementation notes
 * --------------------
 * Trust. The guest owns the descriptor table, the avail ring and any indirect table, and may
 * rewrite them at any moment from another vCPU. Everything read from there is hostile:
 *  - every guest-shared field is loaded exactly once, with an __atomic load, into a local
 *    (desc_read(), the avail ring entry, avail->idx, avail->flags). All checks and all uses
 *    then work on the local copy, so the guest cannot change a value between its check and
 *    its use (TOCTOU), and the compiler may not re-load it from shared memory either;
 *  - indexes (avail entry, next, indirect entry) are range-checked against the table they
 *    index before the table is touched;
 *  - guest physical ranges are resolved by mem_resolve(), which refuses wrap-around of
 *    gpa + len and any byte outside the memory table; a region whose host range would wrap
 *    is ignored, so hva + offset cannot overflow either;
 *  - a walk is bounded: at most "table size" descriptors per table (a longer walk must
 *    revisit a descriptor, so it is a loop), UVS_CHAIN_MAX_DESCS descriptors in all,
 *    UVS_CHAIN_MAX_SEGS segments and UVS_CHAIN_MAX_BYTES bytes. An indirect table may not
 *    itself contain indirect descriptors, so a pop reads at most UVS_CHAIN_MAX_DESCS + 1
 *    descriptors whatever the guest writes, however large its ring or indirect table: the
 *    daemon's one polling thread serves every guest, and a chain's cost must not grow with
 *    what one guest chose.
 * The only inputs trusted are struct uvs_memtbl and the ring pointers and size in
 * struct uvs_virtq: whoever fills them (the daemon, from the vhost-user messages) validated
 * them against the mapped memory.
 *
 * A malformed chain still consumes its avail entry, so one bad chain does not wedge the
 * queue: the caller returns chain->head with used length 0. For UVS_CHAIN_BAD_HEAD the head
 * is the raw out-of-range value the guest wrote; returning it makes a Linux guest flag the
 * ring as broken, which is the honest answer to a corrupt ring.
 *
 * Zero-length descriptors produce no segment and their address is not checked (nothing is
 * dereferenced through it), but their WRITE flag still counts for the readable-before-writable
 * order rule. The WRITE flag of a descriptor that points to an indirect table is ignored, as
 * the spec requires of the device.
 *
 * Indirect tables must lie in one memory region (the table is read in place; we do not
 * allocate to copy a split one) and be aligned to the descriptor's natural alignment (8), in
 * guest physical and in host virtual address, so that each field can be loaded atomically.
 * Linux (kmalloc), DPDK and Windows drivers all satisfy both; a VMM whose regions map gpa and
 * hva at different offsets modulo 8 makes such tables unusable (refused as bad_indirect).
 *
 * Memory ordering (virtio 1.x split ring, no EVENT_IDX):
 *  - avail->idx is loaded with acquire: the ring entries and descriptors the guest wrote
 *    before its (write-barrier + ) idx store are then visible to the loads that follow;
 *  - used ring entries are stored before used->idx, which is stored with release, so the
 *    guest never sees an index covering an entry it cannot read yet;
 *  - after storing used->idx and before loading avail->flags there is a full fence (see
 *    uvs_virtq_publish()), and after clearing VRING_USED_F_NO_NOTIFY there is a full fence
 *    (see uvs_virtq_set_notify()): both are store-then-load (Dekker) patterns against the
 *    guest doing the mirror image, and store->load is the one reordering even x86 performs.
 * The host is little-endian (uvs_proto.h checks), so ring fields are used as they are.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "uvs_virtq.h"

/* Bytes of one descriptor, in an indirect table. */
#define DESC_BYTES ((uint32_t)sizeof(struct uvs_vring_desc))
/* Alignment we require of an indirect table, so that its fields can be loaded atomically. */
#define DESC_ALIGN ((uint64_t) _Alignof(struct uvs_vring_desc))

/* True if the region's host range [hva, hva + size) neither wraps nor leaves the pointer range. */
static bool
region_host_ok(const struct uvs_mem_region *r)
{
	uint64_t hend;

	if (__builtin_add_overflow(r->hva, r->size, &hend))
		return false;
	return (uint64_t)(uintptr_t)hend == hend;
}

static uint32_t
mem_nregions(const struct uvs_memtbl *mem)
{
	return mem->nregions < UVS_MEM_MAX_REGIONS ? mem->nregions : UVS_MEM_MAX_REGIONS;
}

void *
uvs_mem_translate(const struct uvs_memtbl *mem, uint64_t gpa, uint64_t len)
{
	uint32_t i, n = mem_nregions(mem);

	if (len > UINT64_MAX - gpa)
		return NULL;
	for (i = 0; i < n; i++) {
		const struct uvs_mem_region *r = &mem->regions[i];
		uint64_t off;

		if (gpa < r->gpa || !region_host_ok(r))
			continue;
		off = gpa - r->gpa;
		/* Written as two comparisons so that off + len cannot overflow. */
		if (off > r->size || len > r->size - off)
			continue;
		return (void *)(uintptr_t)(r->hva + off);
	}
	return NULL;
}

/* The region holding the byte at gpa, or NULL. */
static const struct uvs_mem_region *
mem_find(const struct uvs_memtbl *mem, uint64_t gpa)
{
	uint32_t i, n = mem_nregions(mem);

	for (i = 0; i < n; i++) {
		const struct uvs_mem_region *r = &mem->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && region_host_ok(r))
			return r;
	}
	return NULL;
}

/*
 * Resolve [gpa, gpa + len) into host segments appended at iov[*n], never past iov[max - 1].
 * A range crossing from one region into another that starts right where it ends (contiguous
 * in guest physical space, usually not in host virtual space) becomes one segment per region.
 */
static enum uvs_chain_err
mem_resolve(const struct uvs_memtbl *mem, uint64_t gpa, uint32_t len, struct iovec *iov,
		unsigned int max, unsigned int *n)
{
	if (len > UINT64_MAX - gpa)
		return UVS_CHAIN_BAD_ADDR;
	while (len > 0) {
		const struct uvs_mem_region *r = mem_find(mem, gpa);
		uint64_t off, chunk;

		if (r == NULL)
			return UVS_CHAIN_BAD_ADDR;
		if (*n >= max)
			return UVS_CHAIN_TOO_MANY_SEGS;
		off = gpa - r->gpa;
		chunk = r->size - off;
		if (chunk > len)
			chunk = len;
		iov[*n].iov_base = (void *)(uintptr_t)(r->hva + off);
		iov[*n].iov_len = (size_t)chunk;
		(*n)++;
		/* chunk >= 1 (gpa is inside r), so the loop ends after at most len rounds; the
		 * segment limit ends it much sooner. */
		gpa += chunk;
		len -= (uint32_t)chunk;
	}
	return UVS_CHAIN_OK;
}

/* Copy one guest descriptor into host memory, loading each field exactly once. */
static void
desc_read(const struct uvs_vring_desc *src, struct uvs_vring_desc *dst)
{
	dst->addr = __atomic_load_n(&src->addr, __ATOMIC_RELAXED);
	dst->len = __atomic_load_n(&src->len, __ATOMIC_RELAXED);
	dst->flags = __atomic_load_n(&src->flags, __ATOMIC_RELAXED);
	dst->next = __atomic_load_n(&src->next, __ATOMIC_RELAXED);
}

/* Check an indirect descriptor (already copied) and return its table, or an error in *e. */
static const struct uvs_vring_desc *
indirect_table(const struct uvs_memtbl *mem, const struct uvs_vring_desc *d, uint32_t *entries,
		enum uvs_chain_err *e)
{
	const struct uvs_vring_desc *table;

	/* The spec forbids INDIRECT with NEXT: where would the chain continue afterwards? */
	if ((d->flags & UVS_VRING_DESC_F_NEXT) != 0 || d->len == 0 || d->len % DESC_BYTES != 0 ||
			d->len / DESC_BYTES > UVS_VIRTQ_MAX_SIZE || d->addr % DESC_ALIGN != 0) {
		*e = UVS_CHAIN_BAD_INDIRECT;
		return NULL;
	}
	table = uvs_mem_translate(mem, d->addr, d->len);
	if (table == NULL) {
		*e = UVS_CHAIN_BAD_ADDR;
		return NULL;
	}
	/* An aligned gpa is not enough: the VMM's regions need not map gpa and hva at the same
	 * offset modulo 8, and the fields are loaded atomically in place (found by fuzzing). */
	if ((uintptr_t)table % DESC_ALIGN != 0) {
		*e = UVS_CHAIN_BAD_INDIRECT;
		return NULL;
	}
	*entries = d->len / DESC_BYTES;
	return table;
}

/* Walk the chain starting at chain->head and fill chain's segments. */
static enum uvs_chain_err
chain_walk(const struct uvs_virtq *vq, const struct uvs_memtbl *mem, bool indirect,
		struct uvs_chain *chain)
{
	const struct uvs_vring_desc *table = vq->desc;
	uint32_t entries = vq->size;
	uint32_t idx = chain->head;
	uint32_t visited = 0; /* in the current table */
	uint32_t walked = 0;  /* in all: the indirect table's and the ring's */
	uint32_t total = 0;
	unsigned int nseg = 0;
	bool in_indirect = false;
	bool seen_write = false;
	enum uvs_chain_err e;

	if (idx >= entries)
		return UVS_CHAIN_BAD_HEAD;
	for (;;) {
		struct uvs_vring_desc d;
		unsigned int before = nseg;
		bool writable;

		/* Every index is < entries, so a walk longer than the table revisits a
		 * descriptor: that is a loop, whatever its shape. A walk longer than
		 * UVS_CHAIN_MAX_DESCS is one too, or something no driver makes. */
		if (++visited > entries || ++walked > UVS_CHAIN_MAX_DESCS)
			return UVS_CHAIN_LOOP;
		desc_read(&table[idx], &d);

		if ((d.flags & UVS_VRING_DESC_F_INDIRECT) != 0) {
			/* One level only: the spec forbids INDIRECT inside an indirect table. */
			if (!indirect || in_indirect)
				return UVS_CHAIN_BAD_INDIRECT;
			table = indirect_table(mem, &d, &entries, &e);
			if (table == NULL)
				return e;
			in_indirect = true;
			idx = 0;
			visited = 0;
			continue;
		}

		writable = (d.flags & UVS_VRING_DESC_F_WRITE) != 0;
		if (writable)
			seen_write = true;
		else if (seen_write)
			return UVS_CHAIN_ORDER;

		if (d.len > UVS_CHAIN_MAX_BYTES - total)
			return UVS_CHAIN_TOO_LONG;
		total += d.len;
		e = mem_resolve(mem, d.addr, d.len, chain->iov, UVS_CHAIN_MAX_SEGS, &nseg);
		if (e != UVS_CHAIN_OK)
			return e;
		/* Both counts are <= UVS_CHAIN_MAX_SEGS and both lengths <= UVS_CHAIN_MAX_BYTES. */
		if (writable) {
			chain->nin += (uint16_t)(nseg - before);
			chain->in_len += d.len;
		} else {
			chain->nout += (uint16_t)(nseg - before);
			chain->out_len += d.len;
		}

		if ((d.flags & UVS_VRING_DESC_F_NEXT) == 0)
			return UVS_CHAIN_OK;
		if (d.next >= entries)
			return UVS_CHAIN_BAD_NEXT;
		idx = d.next;
	}
}

uint16_t
uvs_virtq_avail_count(const struct uvs_virtq *vq)
{
	uint16_t avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);

	return (uint16_t)(avail_idx - vq->last_avail_idx);
}

const char *
uvs_chain_err_str(enum uvs_chain_err err)
{
	static const char *const names[UVS_CHAIN_ERR_MAX] = {
		[UVS_CHAIN_OK] = "ok",
		[UVS_CHAIN_BAD_HEAD] = "bad_head",
		[UVS_CHAIN_BAD_NEXT] = "bad_next",
		[UVS_CHAIN_LOOP] = "loop",
		[UVS_CHAIN_BAD_ADDR] = "bad_addr",
		[UVS_CHAIN_TOO_MANY_SEGS] = "too_many_segs",
		[UVS_CHAIN_TOO_LONG] = "too_long",
		[UVS_CHAIN_ORDER] = "order",
		[UVS_CHAIN_BAD_INDIRECT] = "bad_indirect",
	};

	return (unsigned int)err < UVS_CHAIN_ERR_MAX ? names[err] : "?";
}

int
uvs_virtq_pop(struct uvs_virtq *vq, const struct uvs_memtbl *mem, bool indirect,
		struct uvs_chain *chain, enum uvs_chain_err *err)
{
	uint16_t pending, head;
	enum uvs_chain_err e;

	if (err != NULL)
		*err = UVS_CHAIN_OK;
	/* Acquire: the avail entry and descriptors are read after the index that covers them. */
	pending = uvs_virtq_avail_count(vq);
	if (pending == 0)
		return 0;
	/* The guest can have at most size chains outstanding; more means its index is garbage
	 * and the entries we would read are not chains it made available. */
	if (pending > vq->size)
		return -EIO;

	head = __atomic_load_n(
			&vq->avail->ring[vq->last_avail_idx & (vq->size - 1)], __ATOMIC_RELAXED);
	vq->last_avail_idx = (uint16_t)(vq->last_avail_idx + 1); /* wraps mod 2^16 */

	chain->head = head;
	chain->nout = 0;
	chain->nin = 0;
	chain->out_len = 0;
	chain->in_len = 0;
	e = chain_walk(vq, mem, indirect, chain);
	if (e != UVS_CHAIN_OK) {
		/* Leave no half-resolved segments for a careless caller to use. */
		chain->nout = 0;
		chain->nin = 0;
		chain->out_len = 0;
		chain->in_len = 0;
		if (err != NULL)
			*err = e;
		return -EBADMSG;
	}
	return 1;
}

void
uvs_virtq_unpop(struct uvs_virtq *vq)
{
	vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - 1);
}

void
uvs_virtq_push(struct uvs_virtq *vq, uint16_t head, uint32_t len)
{
	struct uvs_vring_used_elem *elem = &vq->used->ring[vq->used_idx & (vq->size - 1)];

	/* Ordered before the guest can look at them by the release store in publish. */
	__atomic_store_n(&elem->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&elem->len, len, __ATOMIC_RELAXED);
	vq->used_idx = (uint16_t)(vq->used_idx + 1); /* wraps mod 2^16 */
}

bool
uvs_virtq_publish(struct uvs_virtq *vq)
{
	uint16_t flags;

	if (vq->used_idx == vq->signalled_used)
		return false;
	/* Release: the used entries written by push are visible before the index covering
	 * them (this store-release is the release fence the split ring needs). */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	vq->signalled_used = vq->used_idx;
	/*
	 * Full fence between the used->idx store above and the avail->flags load below. The
	 * guest, when re-enabling interrupts, does the mirror image: it clears
	 * VRING_AVAIL_F_NO_INTERRUPT, fences, then loads used->idx to see what it missed.
	 * Without our fence the store may still sit in our store buffer while we load the
	 * old flags (NO_INTERRUPT set: no interrupt), and the guest loads the old used->idx
	 * (nothing new: it sleeps). Both sides miss each other and the completion is lost. A
	 * release or acquire alone does not order an earlier store with a later load.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	flags = __atomic_load_n(&vq->avail->flags, __ATOMIC_ACQUIRE);
	return (flags & UVS_VRING_AVAIL_F_NO_INTERRUPT) == 0;
}

void
uvs_virtq_set_notify(struct uvs_virtq *vq, bool enable)
{
	/* used->flags is written only by us; the guest only reads it. */
	uint16_t flags = __atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED);

	if (!enable) {
		__atomic_store_n(&vq->used->flags, (uint16_t)(flags | UVS_VRING_USED_F_NO_NOTIFY),
				__ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&vq->used->flags, (uint16_t)(flags & ~UVS_VRING_USED_F_NO_NOTIFY),
			__ATOMIC_RELAXED);
	/*
	 * The caller MUST re-check avail (uvs_virtq_avail_count()) after enabling and before
	 * sleeping: a chain made available while kicks were off produced no kick. This full
	 * fence orders that re-check's load of avail->idx after the flag store above; the guest
	 * does the mirror image (store avail->idx, fence, load used->flags). Without it either
	 * side may see the other's old value: the guest skips the kick and we sleep on a
	 * non-empty ring.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Copy between a byte stream over segments and a flat buffer, in either direction. */
static uint32_t
iov_copy(const struct iovec *iov, unsigned int n, uint32_t off, uint8_t *buf, uint32_t len,
		bool to_iov)
{
	uint32_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t chunk;
		uint8_t *seg;

		if (off >= iov[i].iov_len) {
			off -= (uint32_t)iov[i].iov_len;
			continue;
		}
		chunk = iov[i].iov_len - off;
		if (chunk > len - done)
			chunk = len - done;
		seg = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(seg, buf + done, chunk);
		else
			memcpy(buf + done, seg, chunk);
		done += (uint32_t)chunk;
		off = 0;
	}
	return done;
}

uint32_t
uvs_iov_to_buf(const struct iovec *iov, unsigned int n, uint32_t off, void *buf, uint32_t len)
{
	return iov_copy(iov, n, off, buf, len, false);
}

uint32_t
uvs_iov_from_buf(const struct iovec *iov, unsigned int n, uint32_t off, const void *buf,
		uint32_t len)
{
	/* the buffer is only read in this direction */
	return iov_copy(iov, n, off, (uint8_t *)(uintptr_t)buf, len, true);
}
