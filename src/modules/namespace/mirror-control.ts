/**
 * A volume on a site, as a mirror relationship names its two sides.
 *
 * @public
 */
export interface MirrorSide {
  readonly site: string
  readonly volume: string
}

/**
 * What the namespace module needs to know about a mirror relationship: its id, its current source (the side
 * clients write to) and destination, its state, its epoch, and the newest delta set played back at the
 * destination (`null` until the initial copy has completed: the destination then holds no complete copy to fail
 * over to). After a failover the source is the former destination.
 *
 * @public
 */
export interface MirrorDescription {
  readonly id: string
  readonly source: MirrorSide
  readonly destination: MirrorSide
  readonly state: string
  readonly epoch: number
  readonly lastPlayedBack: number | null
}

/**
 * The narrow view of the mirror module the namespace module works through (the system wires `dr.mirrors` to
 * it). `describe` rejects with `E_NOT_FOUND` for an unknown mirror. `failover` promotes the destination
 * (makes it writable, raises the epoch); calling it for a relationship whose failover is already running must
 * join or resume that failover.
 *
 * @public
 */
export interface MirrorControl {
  describe(mirrorId: string): Promise<MirrorDescription>
  failover(mirrorId: string, options: { mode: 'sync' | 'default' | 'now' }): Promise<unknown>
}

/**
 * Mirror states in which the destination has already been promoted, whatever the implementation's direction
 * bookkeeping says.
 *
 * @public
 */
export const PROMOTED_MIRROR_STATES: readonly string[] = ['failedOver', 'broken']

function same(a: MirrorSide, b: MirrorSide): boolean {
  return a.site === b.site && a.volume === b.volume
}

/**
 * True when the mirror has already failed over to `destination` (the side a link fails over to): its state says
 * so, or its current source already is that side. A failover step that finds this skips the mirror call, so a
 * mirror shared by many links, or a step re-run after a crash, fails over once.
 *
 * @public
 */
export function mirrorPromoted(mirror: MirrorDescription, destination: MirrorSide): boolean {
  return same(mirror.source, destination) || (same(mirror.destination, destination) && PROMOTED_MIRROR_STATES.includes(mirror.state))
}

/**
 * True when the mirror replicates from `primary` (again, after a resync and failback): the condition for moving a
 * failed-over link back to its original share, and for calling a link whose primary answers again protected.
 *
 * @public
 */
export function mirrorReturnedTo(mirror: MirrorDescription, primary: MirrorSide): boolean {
  return same(mirror.source, primary) && !PROMOTED_MIRROR_STATES.includes(mirror.state)
}

/**
 * The part of a mirror facade (`dr.mirrors`) that {@link mirrorControlFrom} needs: a status with the current
 * source and destination, state, epoch and newest delta set played back, and a failover with a mode.
 *
 * @public
 */
export interface MirrorFacadeLike {
  status(id: string): Promise<{
    readonly id: string
    readonly state: string
    readonly epoch: number
    readonly source: MirrorSide
    readonly destination: MirrorSide
    readonly lastPlayedBack: number | null
  }>
  failover(id: string, options: { mode: 'sync' | 'default' | 'now' }): Promise<unknown>
}

/**
 * Adapts the mirror module's facade to the {@link MirrorControl} the namespace module works through: `describe`
 * is the mirror's status (its source is the side clients write to, the destination after a failover), and
 * `failover` is the mirror's failover with the policy's mode.
 *
 * @public
 */
export function mirrorControlFrom(facade: MirrorFacadeLike): MirrorControl {
  return {
    async describe(mirrorId) {
      const status = await facade.status(mirrorId)
      return {
        id: status.id,
        state: status.state,
        epoch: status.epoch,
        lastPlayedBack: status.lastPlayedBack,
        source: { site: status.source.site, volume: status.source.volume },
        destination: { site: status.destination.site, volume: status.destination.volume },
      }
    },
    failover: (mirrorId, options) => facade.failover(mirrorId, { mode: options.mode }),
  }
}
