import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind fixed loopback ports and spawn SIPp: run files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});
