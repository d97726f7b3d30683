/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzz target: the split-virtqueue walker (uvs_virtq_pop and the rest of lib/uvs_virtq.c) over
 * a guest memory table the input describes.
 *
 * The input first gives the queue size (1 to 1024) and 1 to 8 memory regions: guest physical
 * start (contiguous with the previous region, at a multiple of 64 KiB, anything, or near
 * 2^64), size (up to 64 KiB), whether its host address is 8-aligned, and whether its host range
 * wraps around (such a region must be ignored). Region 0 holds the three rings (descriptor table, avail ring, used ring) at its
 * start, as a guest's RAM does, so descriptors may point into the rings. Each region is a
 * slice of a static arena whose other bytes are poisoned under ASan: a segment outside the
 * memory table is an ASan report, not only a failed check.
 *
 * Then, until the input ends, the guest acts (writes a descriptor, an indirect table entry,
 * raw bytes, or avail ring entries and index, the avail flags) and the device acts (pops
 * chains, pushes used elements, publishes, toggles notifications, gives a chain back,
 * translates an address); at the end the device pops until the ring is empty or refused.
 * Single-threaded, so the guest rewriting a descriptor during a walk is not covered here (the
 * walker loads every field once; see the notes in uvs_virtq.c).
 *
 * Checked for every pop: the return value matches the avail index; a chain comes back with its
 * head in range, at most UVS_CHAIN_MAX_SEGS segments and UVS_CHAIN_MAX_BYTES bytes, lengths
 * that add up, every segment non-empty and inside one region's host range; its readable bytes
 * are read and its writable bytes written (ASan checks both); a refused chain consumes exactly
 * its avail entry and leaves no segment; a corrupt avail index consumes nothing.
 */
#include <errno.h>
#include <sys/uio.h>

#include "fuzz.h"
#include "uvs_virtq.h"

/* Largest queue fuzzed: big enough for long loops and index wrap, small enough to stay fast. */
#define QSIZE_MAX_LOG2 10
#define REGION_MAX (64u * 1024u)
/* Bytes of the three rings of a queue of n entries (desc 16-aligned, used 4-aligned). */
#define DESC_BYTES(n) (16u * (n))
#define AVAIL_BYTES(n) (6u + 2u * (n))
#define USED_OFF(n) ((DESC_BYTES(n) + AVAIL_BYTES(n) + 3u) & ~3u)
#define RING_BYTES(n) (USED_OFF(n) + 6u + 8u * (n))
#define PAGE 4096u
/* Each region gets a page-aligned slice of the arena: the largest region, rings included, a
 * possible misalignment and a gap. */
#define SLICE ((REGION_MAX + RING_BYTES(1u << QSIZE_MAX_LOG2) + 64u + PAGE - 1) & ~(PAGE - 1))
/* How far a region's host address may be off its natural alignment: a VMM's mmap_offset need
 * not keep guest physical and host virtual addresses congruent. */
#define HVA_SKEW 4u

enum action {
	A_DESC,
	A_INDIRECT,
	A_WRITE,
	A_POST,
	A_AVAIL_IDX,
	A_AVAIL_FLAGS,
	A_POP,
	A_PUSH,
	A_PUBLISH,
	A_NOTIFY,
	A_UNPOP,
	A_TRANSLATE,
	A_MAX,
};

struct ctx {
	struct uvs_memtbl mem;
	bool usable[UVS_MEM_MAX_REGIONS]; /* host range real (not the wrapping kind) */
	uint8_t *host[UVS_MEM_MAX_REGIONS];
	struct uvs_virtq vq;
	bool indirect;
	bool can_unpop; /* the last pop returned a well-formed chain */
	uint16_t heads[UVS_VIRTQ_MAX_SIZE];
	unsigned int nheads; /* popped, not pushed */
	struct uvs_chain chain;
};

static _Alignas(PAGE) uint8_t arena[UVS_MEM_MAX_REGIONS * SLICE];
/* Where a chain's readable bytes are copied, and its writable ones come from. */
static uint8_t scratch[UVS_CHAIN_MAX_BYTES];

/* A guest physical address: inside a region at an input-chosen offset, or anything. */
static uint64_t
gpa_sel(const struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);
	const struct uvs_mem_region *r = &t->mem.regions[(b >> 2) % t->mem.nregions];

	switch (b & 3) {
	case 0:
		return r->gpa + (r->size > 0 ? fz_u16(f) % r->size : 0);
	case 1:
		return r->gpa + r->size - (b >> 4); /* at or just before its end */
	case 2:
		return r->gpa + ((uint64_t)fz_u16(f) << 4); /* 16-aligned, maybe past it */
	default:
		return fz_u64(f);
	}
}

/* A descriptor length: small, up to a region, or anything. */
static uint32_t
len_sel(struct fz *f)
{
	uint8_t b = fz_u8(f);

	switch (b & 3) {
	case 0:
		return b >> 2;
	case 1:
		return fz_u16(f);
	case 2:
		return 16u * (b >> 2); /* an indirect table of b/4 entries */
	default:
		return fz_u32(f);
	}
}

static void
desc_sel(const struct ctx *t, struct fz *f, struct uvs_vring_desc *d)
{
	d->addr = gpa_sel(t, f);
	d->len = len_sel(f);
	d->flags = fz_u8(f) & 7u; /* NEXT, WRITE, INDIRECT */
	if (d->flags & UVS_VRING_DESC_F_INDIRECT && fz_u8(f) & 1)
		d->flags = fz_u16(f);
	d->next = fz_u16(f);
}

/* Whether [p, p+len) lies inside the host range of a usable region. */
static bool
in_memory(const struct ctx *t, const uint8_t *p, size_t len)
{
	for (uint32_t i = 0; i < t->mem.nregions; i++) {
		const uint8_t *h = t->host[i];

		if (t->usable[i] && p >= h && len <= t->mem.regions[i].size &&
				p - h <= (ptrdiff_t)(t->mem.regions[i].size - len))
			return true;
	}
	return false;
}

static void
check_chain(const struct ctx *t, const struct uvs_chain *c)
{
	uint64_t out = 0, in = 0;

	FZ_CHECK(c->head < t->vq.size);
	FZ_CHECK((uint32_t)c->nout + c->nin <= UVS_CHAIN_MAX_SEGS);
	for (unsigned int i = 0; i < (unsigned int)c->nout + c->nin; i++) {
		FZ_CHECK(c->iov[i].iov_len > 0);
		FZ_CHECK(in_memory(t, c->iov[i].iov_base, c->iov[i].iov_len));
		if (i < c->nout)
			out += c->iov[i].iov_len;
		else
			in += c->iov[i].iov_len;
	}
	FZ_CHECK(out == c->out_len && in == c->in_len);
	FZ_CHECK(out + in <= UVS_CHAIN_MAX_BYTES);
	/* read what the guest gave us, fill what it lets us write */
	FZ_CHECK(uvs_iov_to_buf(c->iov, c->nout, 0, scratch, c->out_len) == c->out_len);
	FZ_CHECK(uvs_iov_from_buf(c->iov + c->nout, c->nin, 0, scratch, c->in_len) == c->in_len);
}

static void
pop_one(struct ctx *t)
{
	uint16_t before = t->vq.last_avail_idx, pending = uvs_virtq_avail_count(&t->vq);
	enum uvs_chain_err err = UVS_CHAIN_ERR_MAX;
	int rc;

	memset(&t->chain, 0xa5, sizeof(t->chain)); /* fields pop forgets to set look wrong */
	rc = uvs_virtq_pop(&t->vq, &t->mem, t->indirect, &t->chain, &err);
	t->can_unpop = rc == 1;
	FZ_CHECK(rc == 0 || rc == 1 || rc == -EBADMSG || rc == -EIO);
	switch (rc) {
	case 0:
		FZ_CHECK(pending == 0 && err == UVS_CHAIN_OK);
		FZ_CHECK(t->vq.last_avail_idx == before);
		return;
	case -EIO:
		FZ_CHECK(pending > t->vq.size && err == UVS_CHAIN_OK);
		FZ_CHECK(t->vq.last_avail_idx == before);
		return;
	case 1:
		FZ_CHECK(err == UVS_CHAIN_OK);
		check_chain(t, &t->chain);
		break;
	case -EBADMSG:
		FZ_CHECK(err > UVS_CHAIN_OK && err < UVS_CHAIN_ERR_MAX);
		FZ_CHECK(t->chain.nout == 0 && t->chain.nin == 0);
		FZ_CHECK(t->chain.out_len == 0 && t->chain.in_len == 0);
		FZ_CHECK(err == UVS_CHAIN_BAD_HEAD ? t->chain.head >= t->vq.size
						   : t->chain.head < t->vq.size);
		FZ_CHECK(strcmp(uvs_chain_err_str(err), "?") != 0);
		break;
	}
	FZ_CHECK(pending > 0 && pending <= t->vq.size);
	FZ_CHECK(t->vq.last_avail_idx == (uint16_t)(before + 1));
	if (t->nheads < UVS_VIRTQ_MAX_SIZE)
		t->heads[t->nheads++] = t->chain.head;
}

static void
act(struct ctx *t, struct fz *f, enum action a)
{
	uint16_t qmask = t->vq.size - 1;

	/* unpop is valid only right after a good pop: the guest may write meanwhile, but the
	 * device may not have done anything else */
	if (a == A_PUSH || a == A_PUBLISH || a == A_NOTIFY)
		t->can_unpop = false;
	switch (a) {
	case A_DESC: {
		struct uvs_vring_desc d;

		desc_sel(t, f, &d);
		t->vq.desc[fz_u16(f) & qmask] = d;
		break;
	}
	case A_INDIRECT: {
		/* an entry of a would-be indirect table somewhere in guest memory */
		uint64_t gpa = gpa_sel(t, f) & ~(uint64_t)15;
		struct uvs_vring_desc d, *p;

		desc_sel(t, f, &d);
		p = uvs_mem_translate(&t->mem, gpa, sizeof(d));
		if (p != NULL && in_memory(t, (const uint8_t *)p, sizeof(d)))
			memcpy(p, &d, sizeof(d));
		break;
	}
	case A_WRITE: {
		uint32_t i = fz_u8(f) % t->mem.nregions, len = fz_u8(f);
		uint64_t off = t->mem.regions[i].size > 0 ? fz_u16(f) % t->mem.regions[i].size : 0;

		if (!t->usable[i])
			break;
		if (len > t->mem.regions[i].size - off)
			len = (uint32_t)(t->mem.regions[i].size - off);
		fz_bytes(f, t->host[i] + off, len);
		break;
	}
	case A_POST: {
		/* n chains made available, as a driver does: entry, then index */
		unsigned int n = 1 + fz_u8(f) % 4;

		for (unsigned int i = 0; i < n; i++) {
			uint16_t idx = t->vq.avail->idx;

			t->vq.avail->ring[idx & qmask] =
					fz_u8(f) & 1 ? fz_u16(f) : fz_u8(f) & qmask;
			t->vq.avail->idx = (uint16_t)(idx + 1);
		}
		break;
	}
	case A_AVAIL_IDX:
		t->vq.avail->idx = fz_u16(f); /* anything, including a jump past size */
		break;
	case A_AVAIL_FLAGS:
		t->vq.avail->flags = fz_u16(f);
		break;
	case A_POP: {
		unsigned int n = 1 + fz_u8(f) % 8;

		for (unsigned int i = 0; i < n; i++)
			pop_one(t);
		break;
	}
	case A_PUSH: {
		uint32_t len = fz_u8(f) & 1 ? fz_u32(f) : 0;

		if (t->nheads > 0) {
			uint16_t used = t->vq.used_idx;

			uvs_virtq_push(&t->vq, t->heads[--t->nheads], len);
			FZ_CHECK(t->vq.used_idx == (uint16_t)(used + 1));
		}
		break;
	}
	case A_PUBLISH: {
		uint16_t pending = (uint16_t)(t->vq.used_idx - t->vq.signalled_used);
		bool irq = uvs_virtq_publish(&t->vq);

		/* (the guest may scribble on used->idx; only a publication sets it) */
		FZ_CHECK(pending == 0 || t->vq.used->idx == t->vq.used_idx);
		FZ_CHECK(!irq || (pending != 0 && !(t->vq.avail->flags &
								  UVS_VRING_AVAIL_F_NO_INTERRUPT)));
		break;
	}
	case A_NOTIFY: {
		bool on = fz_u8(f) & 1;

		uvs_virtq_set_notify(&t->vq, on);
		FZ_CHECK(!(t->vq.used->flags & UVS_VRING_USED_F_NO_NOTIFY) == on);
		break;
	}
	case A_UNPOP:
		/* only right after a well-formed pop, as the API says */
		if (t->can_unpop) {
			uvs_virtq_unpop(&t->vq);
			t->nheads--;
			t->can_unpop = false;
		}
		break;
	case A_TRANSLATE: {
		uint64_t gpa = gpa_sel(t, f), len = len_sel(f);
		const uint8_t *p = uvs_mem_translate(&t->mem, gpa, len);

		/* a translation lies inside one real region */
		if (p != NULL && len > 0)
			FZ_CHECK(in_memory(t, p, len));
		break;
	}
	default:
		break;
	}
}

/* The memory table and the queue, from the input's first bytes. */
static void
setup(struct ctx *t, struct fz *f)
{
	uint8_t b = fz_u8(f);
	uint16_t size = (uint16_t)(1u << ((b & 0x7f) % (QSIZE_MAX_LOG2 + 1)));
	uint64_t next_gpa = 0;

	t->indirect = b & 0x80;
	t->mem.nregions = 1 + (fz_u8(f) % UVS_MEM_MAX_REGIONS);
	for (uint32_t i = 0; i < t->mem.nregions; i++) {
		struct uvs_mem_region *r = &t->mem.regions[i];
		uint8_t sel = fz_u8(f), k = (sel >> 2) & 0xf;
		uint64_t size_i = fz_u16(f);

		if (i == 0)
			size_i += RING_BYTES(size); /* the rings live at the start of region 0 */
		switch (sel & 3) {
		case 0:
			r->gpa = next_gpa; /* contiguous with the previous region */
			break;
		case 1:
			r->gpa = (uint64_t)k * 16u * PAGE;
			break;
		case 2:
			r->gpa = fz_u64(f);
			break;
		default:
			r->gpa = UINT64_MAX - k * PAGE; /* where gpa + len wraps */
			break;
		}
		r->size = size_i;
		t->host[i] = arena + i * SLICE + (i > 0 && (sel & 0x40) ? HVA_SKEW : 0);
		t->usable[i] = i == 0 || !(sel & 0x80) || size_i < 2;
		/* a mapping that wraps around the host address space: never to be used */
		r->hva = t->usable[i] ? (uint64_t)(uintptr_t)t->host[i] : UINT64_MAX - size_i / 2;
		next_gpa = r->gpa + r->size;
		ASAN_UNPOISON_MEMORY_REGION(t->host[i], r->size);
		memset(t->host[i], 0, r->size);
	}
	t->vq.size = size;
	t->vq.desc = (struct uvs_vring_desc *)(void *)t->host[0];
	t->vq.avail = (struct uvs_vring_avail *)(void *)(t->host[0] + DESC_BYTES(size));
	t->vq.used = (struct uvs_vring_used *)(void *)(t->host[0] + USED_OFF(size));
	/* the device's indexes pick up where a previous run of the guest left them */
	t->vq.last_avail_idx = t->vq.avail->idx = fz_u16(f);
	t->vq.used_idx = t->vq.signalled_used = t->vq.used->idx = fz_u16(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctx ctx;
	struct ctx *t = &ctx;
	struct fz f;

	memset(t, 0, sizeof(*t));
	fz_init(&f, data, size);
	ASAN_POISON_MEMORY_REGION(arena, sizeof(arena));
	setup(t, &f);
	while (!fz_empty(&f))
		act(t, &f, (enum action)(fz_u8(&f) % A_MAX));
	/* the device drains what is left: at most size chains, then empty or refused */
	for (unsigned int i = 0; i <= t->vq.size; i++) {
		uint16_t pending = uvs_virtq_avail_count(&t->vq);

		if (pending == 0 || pending > t->vq.size)
			break;
		pop_one(t);
	}
	ASAN_UNPOISON_MEMORY_REGION(arena, sizeof(arena));
	return 0;
}
