import { ManualClock } from '../../../src/kernel/index.js'
import { injectFaults, type FaultInjector } from '../../../src/testkit/faults.js'
import type { StoragePort } from '../../../src/ports/storage.js'
import { durable, type Durable } from '../../fixtures/mirror-system.js'

/** Durable parts of a 64-block mirror world on a manual clock; with `faults`, each site's storage gets a fault injector there. */
export function faultyDurable(faults?: Record<string, FaultInjector<StoragePort>>): Promise<Durable> {
  const clock = new ManualClock()
  return durable({
    clock,
    sizeBlocks: 64,
    ...(faults === undefined ? {} : { wrap: (site: string, storage: StoragePort) => (faults[site] = injectFaults(storage, { name: 'memory', clock })).port }),
  })
}
