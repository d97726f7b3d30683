/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Proves that a sanitized build's checks are live and fatal (tests/sanitizers/selftest.sh):
 * each case commits one deliberate error, then prints "continued". In a build with the
 * sanitizer for it, the program must stop at the error with a report and a failing status;
 * "continued" on its output means the error went unseen or was only warned about (UBSan
 * recovers unless built with -fno-sanitize-recover).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes allocated for the overflow: any heap block has a redzone just past its end. */
#define SELFTEST_BUF_LEN 16
/* How long the racing thread waits, so that both accesses surely happen (a sleep orders
 * nothing for ThreadSanitizer, which is the point). */
#define SELFTEST_RACE_DELAY_US 100000

/* volatile: the compiler must not fold the errors away */
static volatile int shared_counter;
static void *volatile lost;

static void *
race_writer(void *arg)
{
	(void)arg;
	usleep(SELFTEST_RACE_DELAY_US);
	shared_counter++;
	return NULL;
}

/* Not inlined: where the block comes from stays unknown here, so that UBSan's object-size
 * check cannot see the overflow first and ASan's shadow memory is what finds it. */
__attribute__((noinline)) static int
byte_at(const char *p, size_t at)
{
	return p[at];
}

static int
heap_overflow(void)
{
	char *buf = malloc(SELFTEST_BUF_LEN);
	int v;

	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0, SELFTEST_BUF_LEN);
	v = byte_at(buf, SELFTEST_BUF_LEN); /* one byte past the end */
	free(buf);
	return v;
}

static int
signed_overflow(void)
{
	volatile int big = 0x7fffffff;

	return big + 1;
}

static int
leak(void)
{
	lost = malloc(SELFTEST_BUF_LEN);
	lost = NULL; /* the only pointer to the block is gone */
	return 0;
}

static int
race(void)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, race_writer, NULL);

	if (rc != 0)
		return -rc;
	shared_counter++;
	usleep(2 * SELFTEST_RACE_DELAY_US);
	pthread_join(t, NULL);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	int v;

	if (strcmp(what, "heap-overflow") == 0)
		v = heap_overflow();
	else if (strcmp(what, "signed-overflow") == 0)
		v = signed_overflow();
	else if (strcmp(what, "leak") == 0)
		v = leak();
	else if (strcmp(what, "race") == 0)
		v = race();
	else {
		fprintf(stderr, "usage: %s heap-overflow|signed-overflow|leak|race\n", argv[0]);
		return 2;
	}
	printf("continued (%d)\n", v);
	return 0;
}
