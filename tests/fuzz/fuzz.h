/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every fuzz target shares: the libFuzzer entry point, a reader that turns the input
 * into values (past its end every value is 0, so any input is a complete program), and a
 * check that aborts, so that libFuzzer (and the replay driver) report a broken invariant as
 * a crash whatever NDEBUG says.
 */
#ifndef UVS_FUZZ_H
#define UVS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/uio.h>

#include <sanitizer/asan_interface.h>

/* libFuzzer's entry point; tests/fuzz/replay.c calls it for each corpus file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__,     \
					#cond);                                                    \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct fz {
	const uint8_t *p;
	size_t left;
};

static inline void
fz_init(struct fz *f, const uint8_t *data, size_t size)
{
	f->p = data;
	f->left = size;
}

static inline bool
fz_empty(const struct fz *f)
{
	return f->left == 0;
}

/* Copy n bytes (zeros past the end of the input). */
static inline void
fz_bytes(struct fz *f, void *dst, size_t n)
{
	size_t k = n < f->left ? n : f->left;

	if (k > 0)
		memcpy(dst, f->p, k);
	memset((uint8_t *)dst + k, 0, n - k);
	f->p += k;
	f->left -= k;
}

static inline uint8_t
fz_u8(struct fz *f)
{
	uint8_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

/* Little-endian, like everything on the wire. */
static inline uint16_t
fz_u16(struct fz *f)
{
	uint16_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

static inline uint32_t
fz_u32(struct fz *f)
{
	uint32_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

static inline uint64_t
fz_u64(struct fz *f)
{
	uint64_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

/* A counter-like value (a credit field, a buffer size): the usual one, a little below it, a
 * small multiple of 512, or anything. */
static inline uint32_t
fz_u32_near(struct fz *f, uint32_t usual)
{
	uint8_t b = fz_u8(f);

	switch (b & 3) {
	case 0:
		return usual;
	case 1:
		return usual - (uint32_t)(b >> 2) * 64u;
	case 2:
		return fz_u32(f);
	default:
		return (uint32_t)(b >> 2) * 512u;
	}
}

/* Segments a buffer is cut into (descriptor chains have up to 64; 4 reach every boundary case
 * of the iovec helpers). */
#define FZ_MAX_SEGS 4

/* How to cut buffers into segments, read from the input once and applied to any length. */
struct fz_shape {
	unsigned int n;
	uint16_t cut[FZ_MAX_SEGS - 1];
};

static inline void
fz_shape(struct fz *f, struct fz_shape *s)
{
	s->n = 1 + fz_u8(f) % FZ_MAX_SEGS;
	for (unsigned int i = 0; i + 1 < s->n; i++)
		s->cut[i] = fz_u16(f);
}

/* Cut buf (len bytes) into s->n segments, empty ones allowed. @return the segment count. */
static inline unsigned int
fz_split(const struct fz_shape *s, uint8_t *buf, uint32_t len, struct iovec *iov)
{
	uint32_t at = 0;

	for (unsigned int i = 0; i < s->n; i++) {
		uint32_t k = i + 1 == s->n ? len - at : s->cut[i] % (len - at + 1);

		iov[i].iov_base = buf + at;
		iov[i].iov_len = k;
		at += k;
	}
	return s->n;
}

/*
 * A buffer of exactly len bytes at the start of a static arena of cap bytes (8-aligned). Under
 * ASan the rest of the arena is poisoned, so a read or write past len is caught as it would be
 * past a malloc'd block, without allocating up to 64 KiB per packet (that cost a fifth of the
 * run time in page faults). Without ASan the macros do nothing.
 */
static inline uint8_t *
fz_arena(uint8_t *arena, size_t cap, size_t len)
{
	FZ_CHECK(len <= cap);
	ASAN_UNPOISON_MEMORY_REGION(arena, cap);
	ASAN_POISON_MEMORY_REGION(arena + len, cap - len);
	return arena;
}

#endif /* UVS_FUZZ_H */
