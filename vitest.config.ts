import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Starts one throw-away etcd on loopback for the run (from /usr/bin/etcd) unless DRKIT_ETCD_ENDPOINTS is set.
    globalSetup: ['./test/global-setup-etcd.ts'],
  },
})
