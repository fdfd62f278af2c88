import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fault tests run in network namespaces: scripts/fault-tests.mjs (part of npm test).
    exclude: ['test/fault/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind fixed loopback ports and spawn SIPp: run files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
