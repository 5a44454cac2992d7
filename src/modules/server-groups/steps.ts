import type { RetryPolicy } from '../../kernel/retry.js'
import type { StepOptions, WorkflowContext } from '../../kernel/workflow.js'
import type { GroupContext } from './context.js'
import { PLACEMENT_PARTS, applyPart, restore, type Footprint } from './footprint.js'

/** A step that calls the host or network ports is retried on a transient adapter error (`E_ADAPTER`, `E_UNAVAILABLE`, `E_TIMEOUT`). */
export const PORT_RETRY: RetryPolicy = { attempts: 4, initialDelayMs: 10, maxDelayMs: 100 }

/**
 * The options of the survey step of a group workflow (the step that journals a footprint before anything is
 * changed): retried like any port step, and compensated by putting back what the survey found.
 */
export function surveyOptions<R extends { readonly footprint: Footprint }>(cx: GroupContext, name: string): StepOptions<R> {
  return { retry: PORT_RETRY, compensate: (result) => restore(cx, name, result.footprint) }
}

/**
 * One step per part of the footprint's change (dismount, release, mount, claim, names), in that order: each makes
 * its part true touching only what differs, so a step repeated after a crash repeats no side effect.
 */
export async function placementSteps(cx: GroupContext, wf: WorkflowContext, name: string, footprint: Footprint): Promise<void> {
  for (const part of PLACEMENT_PARTS) {
    await wf.step(
      part,
      async () => {
        await applyPart(cx, name, footprint.registry, footprint.wanted, part)
        return null
      },
      { retry: PORT_RETRY },
    )
  }
}
