import { DrError, callAdapter, toDrError } from '../../kernel/errors.js'
import type { HostPort, QuiesceResult } from '../../ports/host.js'
import type { VmContext } from './context.js'
import { withDeadline } from './deadline.js'

/** How long past its own timeout a host's quiesce may take before the backup stops waiting for it. */
const QUIESCE_GRACE_MS = 5_000
/** How many times an unquiesce is tried. */
const UNQUIESCE_ATTEMPTS = 3
/** How long one unquiesce may take. */
const UNQUIESCE_TIMEOUT_MS = 10_000
/** The wait before the first retry of an unquiesce; it doubles for the next. */
const UNQUIESCE_BACKOFF_MS = 1_000

/**
 * Asks the host to quiesce VM `vmId` within `timeoutMs`, and stops waiting on the kernel clock when the host has
 * not answered `QUIESCE_GRACE_MS` after that (`E_TIMEOUT`): a host that ignores its own timeout cannot hang a
 * backup.
 *
 * @public
 */
export function quiesceWithin(ctx: VmContext, host: HostPort, vmId: string, timeoutMs: number): Promise<QuiesceResult> {
  return withDeadline(callAdapter(host.kind, 'quiesce', () => host.quiesce(vmId, timeoutMs)), timeoutMs + QUIESCE_GRACE_MS, ctx.clock, () =>
    new DrError('E_TIMEOUT', `host did not answer the quiesce of VM "${vmId}" within ${timeoutMs + QUIESCE_GRACE_MS} ms`, { vm: vmId, timeoutMs }),
  )
}

/**
 * Releases the quiesce of VM `vmId`: up to `UNQUIESCE_ATTEMPTS` tries (each bounded in time, with a doubling wait
 * between them on the kernel clock). When every try fails the VM may still hold its writes, so
 * `vm.unquiesceFailed` is emitted; this never throws (the backup itself is sound).
 *
 * @public
 */
export async function releaseQuiesce(ctx: VmContext, host: HostPort, vmId: string): Promise<void> {
  let reason = ''
  for (let attempt = 1; attempt <= UNQUIESCE_ATTEMPTS; attempt++) {
    try {
      await withDeadline(callAdapter(host.kind, 'unquiesce', () => host.unquiesce(vmId)), UNQUIESCE_TIMEOUT_MS, ctx.clock, () =>
        new DrError('E_TIMEOUT', `host did not answer the unquiesce of VM "${vmId}" within ${UNQUIESCE_TIMEOUT_MS} ms`, { vm: vmId }),
      )
      return
    } catch (error) {
      reason = toDrError(error).message
      if (attempt < UNQUIESCE_ATTEMPTS) await ctx.clock.sleep(UNQUIESCE_BACKOFF_MS * 2 ** (attempt - 1))
    }
  }
  ctx.events.emit('vm.unquiesceFailed', 'error', { vmId, attempts: UNQUIESCE_ATTEMPTS, reason })
}
