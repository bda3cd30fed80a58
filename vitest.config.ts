import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The e2e files run in name order: 1-stages builds what 2-vms and 3-reproduce boot (each also works alone). */
class ByName extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId));
  }
}

// Two projects: fast unit tests (no VMs, no network) and slow end-to-end tests with real QEMU guests.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // bin/kflex-lab.mjs runs dist/ when it is current: build it first, so the tests run the compiled CLI.
          globalSetup: ['test/e2e/setup.ts'],
          // The VM tests share one cache and boot guests: run files one after another.
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          sequence: { sequencer: ByName },
          // A cold kernel build takes ~8-15 min on 2 cores; no single test may eat CI's 90 minutes.
          testTimeout: 30 * 60_000,
          hookTimeout: 10 * 60_000,
        },
      },
    ],
  },
});
