import type { Channel } from '../../ports/network.js'
import { encodeControl } from './protocol.js'

/**
 * The codes a mirror agent refuses a channel with.
 *
 * @public
 */
export type RefusalCode = 'E_FENCED' | 'E_NOT_FOUND' | 'E_PRECONDITION' | 'E_INVALID_INPUT' | 'E_CORRUPT'

/**
 * Sends a `refused` frame with a stable code (and the epoch this side is at) and closes the channel.
 *
 * @public
 */
export async function refuse(channel: Channel, code: RefusalCode, message: string, epoch: number | null): Promise<void> {
  await channel.send(encodeControl({ t: 'refused', code, message, epoch })).catch(() => undefined)
  await channel.close().catch(() => undefined)
}
