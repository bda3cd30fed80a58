/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KFlex's key distributions (bench/BenchRandomUtil.hpp at rs3lab/KFlex 567387b), made reproducible:
 * - Uniform: absl::Uniform<uint64_t>(absl::IntervalClosed, bitgen, 0, size), i.e. uniform on [0, size];
 * - Zipfian: absl::Zipf<uint64_t>(bitgen, size, q = 1.00001, v = 0.99999), i.e. P(x) proportional to
 *   (v + x)^-q on [0, size], sampled here by inverting its exact CDF.
 * absl::BitGen is seeded from the OS on every run; this one is seeded with --seed (splitmix64).
 */
#ifndef KFLEX_LAB_ARENA_WORKLOAD_H
#define KFLEX_LAB_ARENA_WORKLOAD_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define ZIPF_Q 1.00001
#define ZIPF_V 0.99999

static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform on [0, bound] without modulo bias (Lemire's multiply-shift with rejection). */
static inline uint64_t uniform_closed(uint64_t *s, uint64_t bound)
{
	uint64_t range = bound + 1;
	unsigned __int128 m = (unsigned __int128)splitmix64(s) * range;
	uint64_t low = (uint64_t)m;

	if (low < range) {
		uint64_t t = -range % range;

		while (low < t) {
			m = (unsigned __int128)splitmix64(s) * range;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

static inline double unit_double(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline void gen_uniform(uint64_t *out, size_t n, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < n; i++)
		out[i] = uniform_closed(&s, n);
}

/* n draws of Zipf(k = n, q, v) on [0, n]; returns -1 if the CDF table cannot be allocated. */
static inline int gen_zipf(uint64_t *out, size_t n, uint64_t seed, double q, double v)
{
	double *cdf = malloc((n + 1) * sizeof(double)), sum = 0;
	uint64_t s = seed;

	if (!cdf)
		return -1;
	for (size_t x = 0; x <= n; x++) {
		sum += pow(v + (double)x, -q);
		cdf[x] = sum;
	}
	for (size_t i = 0; i < n; i++) {
		double u = unit_double(&s) * sum;
		size_t lo = 0, hi = n;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (cdf[mid] > u)
				hi = mid;
			else
				lo = mid + 1;
		}
		out[i] = lo;
	}
	free(cdf);
	return 0;
}

#endif
