/**
 * vitest globalSetup: when `DRKIT_ETCD_ENDPOINTS` is not set and `/usr/bin/etcd` exists, starts one etcd for the
 * whole run and sets `DRKIT_ETCD_ENDPOINTS` before the test workers are forked (they inherit the environment), and
 * stops it again at the end. With neither, it does nothing and the etcd tests fail with a message saying how to
 * provide etcd. Register it in vitest.config.ts: `globalSetup: ['test/global-setup-etcd.ts']`.
 */
import { existsSync } from 'node:fs'
import { ETCD_BINARY, startEtcd, type EtcdServer } from '../bench/etcd-server.mjs'

let server: EtcdServer | undefined

/** Starts etcd unless one was given through `DRKIT_ETCD_ENDPOINTS` or there is no etcd binary. */
export async function setup(): Promise<void> {
  const given = process.env['DRKIT_ETCD_ENDPOINTS']
  if (given !== undefined && given !== '') return
  if (!existsSync(ETCD_BINARY)) return
  server = await startEtcd()
  process.env['DRKIT_ETCD_ENDPOINTS'] = server.endpoints
}

/** Stops the etcd that {@link setup} started, if any. */
export async function teardown(): Promise<void> {
  const started = server
  server = undefined
  if (started === undefined) return
  delete process.env['DRKIT_ETCD_ENDPOINTS']
  await started.stop()
}
