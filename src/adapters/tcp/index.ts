/**
 * The tcp NetworkPort adapter: channels between sites over TCP with checked frames, back-pressure, bandwidth
 * limits, reconnect and mutual TLS, plus a resumable chunk transfer layered on a channel.
 */
export { tcpNetwork } from './tcp-network.js'
export type { TcpNetwork } from './tcp-network.js'
export { TcpNetworkOptionsCodec } from './tcp-options.js'
export type { TcpNetworkOptions, TcpAddress } from './tcp-options.js'
export { isLoopbackHost } from './tls.js'
export type { TcpTlsMaterial } from './tls.js'
export type { TcpWindow } from './tcp-channel.js'
export { ResumableSender, sendResumable } from './resumable-sender.js'
export type { ResumableSenderOptions, SendAttempt, SendOutcome, SendResumableOptions } from './resumable-sender.js'
export { ResumableReceiver } from './resumable-receiver.js'
export type { ResumableReceiverOptions, ReceivedChunk, ReceiveOutcome, ResumeStore } from './resumable-receiver.js'
