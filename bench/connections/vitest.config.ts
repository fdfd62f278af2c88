import { defineConfig } from 'vitest/config';

/** bench/connections: run by `npm run bench:connections` inside the fault-test namespaces (scripts/fault-tests.mjs). */
export default defineConfig({
  test: {
    include: ['bench/connections/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
