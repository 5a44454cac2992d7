import type { Channel, NetworkPort } from '../../ports/network.js'
import type { AgentContext } from './agent-context.js'
import { refuse, type RefusalCode } from './refusal.js'

/**
 * A connection a network port refused because the other end did not prove who it claimed to be (the shape the
 * tcp adapter reports through `onPeerRejected`).
 *
 * @public
 */
export interface RejectedPeer {
  readonly reason: string
  readonly remoteAddress: string | undefined
  readonly claimedSite: string | undefined
}

type Subscribe = (listener: (rejection: RejectedPeer) => void) => () => void

/**
 * The port's `onPeerRejected(listener)` when it has one (an authenticating transport such as the tcp adapter), so
 * the agent can report refused peers; undefined for ports that do not authenticate peers.
 *
 * @public
 */
export function peerRejections(network: NetworkPort): Subscribe | undefined {
  const subscribe: unknown = (network as { readonly onPeerRejected?: unknown }).onPeerRejected
  if (typeof subscribe !== 'function') return undefined
  return (listener) => (subscribe as Subscribe).call(network, listener)
}

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
