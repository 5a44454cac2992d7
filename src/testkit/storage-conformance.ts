import type { StoragePort } from '../ports/storage.js'
import type { AdapterFactory, ConformanceCase } from './conformance.js'
import { changedBlockCases } from './storage-conformance-changed.js'
import { fenceCases } from './storage-conformance-fences.js'
import { ioCases } from './storage-conformance-io.js'
import { rangeRuleCases } from './storage-conformance-ranges-rules.js'
import { rangeCases } from './storage-conformance-ranges.js'
import { shareAndConfigCases } from './storage-conformance-shares.js'
import { snapshotCases } from './storage-conformance-snapshots.js'
import { storageCases } from './storage-conformance-support.js'
import { tokenCases } from './storage-conformance-tokens.js'
import { volumeCases } from './storage-conformance-volumes.js'

/**
 * The conformance suite of {@link StoragePort}: every behaviour of the port contract that drkit relies on
 * (volumes, block I/O single and vectored, snapshots, clones, changed blocks, I/O fences, shares, configuration
 * records, fence tokens and close), as runner-agnostic cases that each get a fresh adapter from `factory`. Run it
 * against any adapter: `for (const c of storageConformance(factory)) it(c.name, c.run)`. The cases use 4 KiB
 * blocks and the fence-token scopes `conformance`, `scope-a`, `scope-b` and `scope-c`; one case closes the adapter
 * itself, so `factory.dispose` must accept an adapter that is already closed.
 *
 * @public
 */
export function storageConformance(factory: AdapterFactory<StoragePort>): ConformanceCase[] {
  const test = storageCases(factory)
  return [
    ...volumeCases(test),
    ...ioCases(test),
    ...rangeCases(test),
    ...rangeRuleCases(test),
    ...snapshotCases(test),
    ...changedBlockCases(test),
    ...fenceCases(test),
    ...shareAndConfigCases(test),
    ...tokenCases(test),
  ]
}
