import type { Channel } from '../../ports/network.js'
import type { AgentContext } from './agent-context.js'
import { refuse, type RefusalCode } from './refusal.js'

/**
 * Emits `mirror.peerRejected` for `session` at this site: `peer` sent something this side refused.
 *
 * @public
 */
export function reportPeerRejected(ctx: AgentContext, session: string, peer: string, code: RefusalCode, message: string): void {
  ctx.events.emit('mirror.peerRejected', 'error', { id: session, site: ctx.site, peer, code, message })
}

/**
 * Refuses a channel from a site that is not the session's peer (`E_PRECONDITION`) and reports it: only the
 * session's other side may send it data or fetch from it. Returns true when it refused.
 *
 * @public
 */
export async function refuseStranger(ctx: AgentContext, channel: Channel, session: string, peer: string, epoch: number): Promise<boolean> {
  if (channel.remoteSite === peer) return false
  const message = `${channel.remoteSite} is not the peer of mirror session ${session} at ${ctx.site} (${peer} is)`
  reportPeerRejected(ctx, session, channel.remoteSite, 'E_PRECONDITION', message)
  await refuse(channel, 'E_PRECONDITION', message, epoch)
  return true
}
