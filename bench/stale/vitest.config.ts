import { defineConfig } from 'vitest/config';

/** bench/stale: run by `npm run bench:stale` inside the fault-test namespaces (scripts/fault-tests.mjs). */
export default defineConfig({
  test: {
    include: ['bench/stale/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
