import type { FenceToken } from '../kernel/fencing.js'

/**
 * An ordered, reliable, framed byte channel between two sites. Frames arrive whole and in order, or the
 * channel fails. `send` applies back-pressure: it resolves once the transport has accepted the frame and waits
 * while the send window is full, so a sender never buffers a whole volume in memory.
 *
 * @public
 */
export interface Channel {
  readonly id: string
  readonly localSite: string
  readonly remoteSite: string
  /**
   * Sends one frame. Rejects with `E_UNAVAILABLE` when the channel is closed, broken or partitioned. The channel
   * is done with `frame` once the promise settles (its bytes are on their way or copied): the caller may then
   * reuse the buffer, as the replication engine does with its send buffers.
   */
  send(frame: Uint8Array): Promise<void>
  /** Received frames in order. Ends when the peer closes; throws `E_UNAVAILABLE` if the channel breaks. */
  frames(): AsyncIterable<Uint8Array>
  /**
   * Optional. Gives a frame `frames()` yielded back once the consumer reads neither it nor any view of it any
   * more, so the channel may reuse its memory for a later frame (the tcp adapter does, for large frames). A
   * channel that never reuses memory leaves it out; a consumer that never calls it leaves its frames to the
   * garbage collector. The mirror gives each chunk back once it is written.
   */
  release?(frame: Uint8Array): void
  /** Limits this channel's send rate (bytes per second); `undefined` removes the limit. */
  setBandwidthLimit(bytesPerSecond: number | undefined): void
  /** Closes both directions; pending `send`s reject, the peer's `frames()` ends. */
  close(): Promise<void>
}

/**
 * What a reachability probe found.
 *
 * @public
 */
export interface ProbeResult {
  readonly site: string
  readonly reachable: boolean
  readonly rttMs?: number
}

/**
 * One target of a link point: a share on a site, `active` (clients are referred to it) or `standby`.
 *
 * @public
 */
export interface LinkTarget {
  readonly site: string
  readonly share: string
  readonly state: 'active' | 'standby'
}

/**
 * A link point in a namespace server: a logical path and the shares it refers clients to.
 *
 * @public
 */
export interface NamespaceLink {
  readonly path: string
  readonly targets: readonly LinkTarget[]
}

/**
 * The namespace server's copy of one namespace (DFS-like root), versioned for optimistic concurrency.
 *
 * @public
 */
export interface NamespaceDocument {
  readonly namespace: string
  readonly version: number
  readonly links: readonly NamespaceLink[]
}

/**
 * Where a logical path leads: the link that matched, the active target, and the rest of the path under the share.
 *
 * @public
 */
export interface Referral {
  readonly link: string
  readonly target: LinkTarget
  readonly remainder: string
}

/**
 * A DFS-like referral service: holds namespaces (link points → targets) and refers clients to a target.
 * drkit keeps its own copy in the state store and pushes changes here.
 *
 * @public
 */
export interface NamespaceServer {
  /** The server's copy of `namespace` (an empty document at version 0 if it has none). */
  readNamespace(namespace: string): Promise<NamespaceDocument>
  /**
   * Replaces the server's copy if it is still at `document.version - 1`; `E_CONFLICT` otherwise. A document in
   * which some link has no target is refused with `E_PRECONDITION`.
   */
  writeNamespace(document: NamespaceDocument, token: FenceToken): Promise<void>
  /**
   * Changes some links of a namespace in one step, versioned like a whole document: each link of `patch.set` is
   * added or replaced with its targets, each path of `patch.remove` is deleted, and every other link stays as it
   * is, so a change costs what it touches rather than the size of the namespace. Applied only if the server's
   * copy is still at `patch.version - 1` (it is then at `patch.version`); `E_CONFLICT` otherwise. A patch that
   * sets a link with no target is refused with `E_PRECONDITION`; a refused patch changes nothing. Removing a link
   * the server does not have is no error.
   */
  patchNamespace(
    patch: { readonly namespace: string; readonly version: number; readonly set: readonly NamespaceLink[]; readonly remove: readonly string[] },
    token: FenceToken,
  ): Promise<void>
  /**
   * Refers a logical path to its active target by the longest matching link; `E_NOT_FOUND` if none. `principal`
   * is the client asking: a server that checks privileges (a domain controller behind a DFS server) refuses a
   * client without rights on the matched link with `E_PRECONDITION`.
   */
  resolve(namespace: string, logicalPath: string, principal?: string): Promise<Referral>
  /**
   * Raises this adapter's fence floor for `token.scope` to `token.value` and changes nothing else (durably, where
   * the adapter persists its tokens); a stale token rejects with `E_FENCED`. A coordinator that takes over a scope
   * presents its new token on every port at once, so a deposed coordinator is refused everywhere — not only on the
   * resources the new one happens to touch first.
   */
  presentToken(token: FenceToken): Promise<void>
}

/**
 * Network identity that moves between sites on failover: virtual addresses and name records (DNS-like).
 *
 * @public
 */
export interface IdentityRegistry {
  /** Moves virtual `address` to `site` (idempotent if it is already there). */
  claimAddress(address: string, site: string, token: FenceToken): Promise<void>
  /** Releases `address` if `site` holds it (idempotent). */
  releaseAddress(address: string, site: string, token: FenceToken): Promise<void>
  /** The site that holds `address`, if any. */
  addressOwner(address: string): Promise<string | undefined>
  /** Points name record `name` at `address`. */
  setNameRecord(name: string, address: string, token: FenceToken): Promise<void>
  /** The address `name` points to, if any. */
  getNameRecord(name: string): Promise<string | undefined>
  /** Deletes a name record (idempotent). */
  deleteNameRecord(name: string, token: FenceToken): Promise<void>
  /**
   * Raises this adapter's fence floor for `token.scope` to `token.value` and changes nothing else (durably, where
   * the adapter persists its tokens); a stale token rejects with `E_FENCED`. A coordinator that takes over a scope
   * presents its new token on every port at once, so a deposed coordinator is refused everywhere — not only on the
   * resources the new one happens to touch first.
   */
  presentToken(token: FenceToken): Promise<void>
}

/**
 * A connection a network port refused because the other end did not prove who it claimed to be (or did not speak
 * the protocol): why, from where, and the site it claimed, if it got that far. `direction` says whether the other
 * end connected to this site (`inbound`) or this site connected to it (`outbound`).
 *
 * @public
 */
export interface PeerRejection {
  readonly reason: string
  readonly remoteAddress: string | undefined
  readonly claimedSite: string | undefined
  readonly direction: 'inbound' | 'outbound'
}

/**
 * The network port of a site: channels to other sites, reachability probes, and access to the shared
 * namespace server and identity registry.
 *
 * @public
 */
export interface NetworkPort {
  /** Adapter name for errors (`memory`, `tcp`…). */
  readonly kind: string
  /** The site this port belongs to. */
  readonly site: string
  /** The namespace server this site talks to. */
  readonly namespaceServer: NamespaceServer
  /** The identity registry (addresses, name records) this site talks to. */
  readonly identity: IdentityRegistry
  /**
   * Accepts channels opened to `service` on this site. Returns a function that stops listening. `E_CONFLICT`
   * if the service already has a listener.
   */
  listen(service: string, onChannel: (channel: Channel) => void): Promise<() => Promise<void>>
  /** Opens a channel to `service` on `site`. `E_UNAVAILABLE` if the site cannot be reached or nothing listens. */
  connect(site: string, service: string): Promise<Channel>
  /** Checks whether `site` answers within `timeoutMs` (default adapter-specific). Never rejects for unreachability. */
  probe(site: string, timeoutMs?: number): Promise<ProbeResult>
  /**
   * Presents a new coordinator's token to this site's namespace server and identity registry (see
   * `NamespaceServer.presentToken`); a stale token rejects with `E_FENCED`.
   */
  presentToken(token: FenceToken): Promise<void>
  /**
   * For a port that authenticates its peers (the tcp adapter): calls `listener` for every connection it refused,
   * and returns a function that stops the calls. The mirror reports each as `mirror.peerRejected`. A port whose
   * peers cannot fail authentication (the memory adapter) leaves it out.
   */
  onPeerRejected?(listener: (rejection: PeerRejection) => void): () => void
  /** Closes every channel and listener. Later calls reject with `E_CLOSED`; a second `close()` does nothing. */
  close(): Promise<void>
}
