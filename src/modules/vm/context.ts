import { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import type { EventSink } from '../../kernel/events.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { Decision, JournaledStore } from '../../kernel/store.js'
import type { WorkflowEngine } from '../../kernel/workflow.js'
import type { HostPort } from '../../ports/host.js'
import type { StoragePort } from '../../ports/storage.js'
import type { MirrorFacade } from '../mirror/index.js'
import type { VmEvents } from './events.js'
import type { DrPlan } from './inputs.js'
import type { VmJournalEvent, VmState } from './state.js'

/**
 * What a site offers the VM module: its storage and its hosts.
 *
 * @public
 */
export interface VmSite {
  readonly storage: StoragePort
  readonly host: HostPort
}

/**
 * What the VM module's facade and workflows share: the catalog, the site ports, the mirror facade (replication
 * of backup volumes), events, clock, fence tokens and the workflow engine.
 *
 * @public
 */
export interface VmContext {
  readonly store: JournaledStore<VmState, VmJournalEvent>
  readonly sites: (name: string) => VmSite
  readonly mirrors: MirrorFacade
  readonly events: EventSink<VmEvents>
  readonly clock: Clock
  readonly token: () => FenceToken
  readonly workflows: WorkflowEngine
}

/**
 * The ports of `site`; `E_NOT_FOUND` for a site that is not configured.
 *
 * @public
 */
export function siteOf(ctx: VmContext, name: string): VmSite {
  try {
    return ctx.sites(name)
  } catch (error) {
    if (error instanceof DrError) throw error
    throw new DrError('E_NOT_FOUND', `site "${name}" is not configured`, { site: name }, { cause: error })
  }
}

/**
 * The plan `id`; `E_NOT_FOUND` when there is none.
 *
 * @public
 */
export function planOf(ctx: VmContext, id: string): DrPlan {
  const plan = ctx.store.state.plans[id]
  if (plan === undefined) throw new DrError('E_NOT_FOUND', `DR plan "${id}" does not exist`, { plan: id })
  return plan
}

/**
 * Runs a pure decision against the catalog and journals its events.
 *
 * @public
 */
export async function commit(ctx: VmContext, decide: Decision<VmState, VmJournalEvent>): Promise<readonly VmJournalEvent[]> {
  return ctx.store.execute(decide)
}
