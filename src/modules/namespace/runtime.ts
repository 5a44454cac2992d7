import type { Clock } from '../../kernel/clock.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { HostPort } from '../../ports/host.js'
import type { StoragePort } from '../../ports/storage.js'
import type { NamespaceCatalog } from './catalog.js'
import type { SingleFlight, TaskPool } from './concurrency.js'
import type { NamespaceEventLog } from './event-log.js'
import type { MirrorControl } from './mirror-control.js'
import type { MirrorStates } from './mirror-states.js'
import type { Prober } from './probe.js'
import type { NamespacePublisher } from './publisher.js'

/**
 * Everything the namespace module's parts share inside one coordinator: the catalog, the namespace publisher,
 * the event log, the workflow engine, the site adapters, the mirror control and what the running failovers know
 * about their mirrors, the prober, the clock and fence token, and the pools that bound concurrent probes and
 * failovers.
 *
 * @public
 */
export interface NamespaceRuntime {
  readonly catalog: NamespaceCatalog
  readonly publisher: NamespacePublisher
  readonly log: NamespaceEventLog
  readonly workflows: WorkflowEngine
  readonly storage: (site: string) => StoragePort
  readonly host: (site: string) => HostPort
  readonly mirrors: MirrorControl
  readonly mirrorStates: MirrorStates
  readonly prober: Prober
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly flights: SingleFlight
  readonly failovers: TaskPool
  readonly probeConcurrency: number
}
