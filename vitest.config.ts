import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (no VMs, no network) and slow end-to-end tests with real QEMU guests.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // The VM tests share one cache and boot guests: run files one after another.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 60 * 60_000,
          hookTimeout: 60 * 60_000,
        },
      },
    ],
  },
});
