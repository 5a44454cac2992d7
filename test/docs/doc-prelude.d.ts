/**
 * The reader's own objects the guides' code blocks refer to without creating them: a running system, adapters,
 * certificates, data. Declared here so that every block type-checks (test/docs/code-blocks.test.ts).
 */
import type { DrSystem, HostPort, NetworkPort, StoragePort } from 'drkit'

declare global {
  /** A running system, as `createDrSystem` returns it. */
  const dr: DrSystem
  const eastStorage: StoragePort
  const westStorage: StoragePort
  const eastNetwork: NetworkPort
  const westNetwork: NetworkPort
  const westHost: HostPort
  const caPem: string
  const eastKeyPem: string
  const eastCertPem: string
  const westCaPem: string
  /** Some data to write. */
  const bytes: Uint8Array
}
