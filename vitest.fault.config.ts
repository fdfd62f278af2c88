import { defineConfig } from 'vitest/config';

/**
 * The fault tests (test/fault): run by scripts/fault-tests.mjs inside the endpoints' network
 * namespace it builds; not runnable on their own.
 */
export default defineConfig({
  test: {
    include: ['test/fault/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
