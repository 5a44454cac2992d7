import * as t from 'io-ts'
import { Name } from '../../kernel/codecs.js'
import { LogicalPath, PathSegment } from './paths.js'

const ShareName = Name
const TargetState = t.union([t.literal('active'), t.literal('standby')])
const InputTarget = t.intersection([t.type({ site: Name, share: ShareName }), t.partial({ state: TargetState })], 'TargetOptions')

/**
 * Options naming a managed namespace (a DFS-like root on the namespace server).
 *
 * @public
 */
export const NamespaceInput = t.type({ namespace: Name }, 'NamespaceOptions')

/**
 * Options naming a folder or link point of a namespace by its logical path.
 *
 * @public
 */
export const NodeInput = t.type({ namespace: Name, path: LogicalPath }, 'NodeOptions')

/**
 * Options of `namespace.resolve`: the logical path, and optionally the client (principal) asking, whose rights
 * the namespace server checks.
 *
 * @public
 */
export const ResolveInput = t.intersection([NodeInput, t.partial({ principal: Name })], 'ResolveOptions')

/**
 * What `namespace.resolve` takes.
 *
 * @public
 */
export type ResolveOptions = t.OutputOf<typeof ResolveInput>

/**
 * Options of `namespace.createLink`: where, and one or more targets (shares on sites); the first target, or the
 * one marked `active`, is where clients are referred.
 *
 * @public
 */
export const CreateLinkInput = t.type(
  { namespace: Name, path: LogicalPath, targets: t.refinement(t.array(InputTarget), (list) => list.length > 0 && list.length <= 64, 'Targets (1..64)') },
  'CreateLinkOptions',
)

/**
 * Options of `namespace.rename`: the node and its new last segment.
 *
 * @public
 */
export const RenameInput = t.type({ namespace: Name, path: LogicalPath, name: PathSegment }, 'RenameOptions')

/**
 * Options of `namespace.move`: the node and its new path (a folder moves with everything below it).
 *
 * @public
 */
export const MoveInput = t.type({ namespace: Name, from: LogicalPath, to: LogicalPath }, 'MoveOptions')

/**
 * Options of `namespace.addTarget`: the link and the share to add (`active` makes clients go there).
 *
 * @public
 */
export const AddTargetInput = t.intersection(
  [t.type({ namespace: Name, path: LogicalPath, site: Name, share: ShareName }), t.partial({ state: TargetState })],
  'AddTargetOptions',
)

/**
 * Options of `namespace.removeTarget`: the link and the share to remove.
 *
 * @public
 */
export const RemoveTargetInput = t.type({ namespace: Name, path: LogicalPath, site: Name, share: ShareName }, 'RemoveTargetOptions')

/**
 * Options of `namespace.protect` (the seed's Table 2): the link, the policy by name, the mirror whose source
 * volume holds the primary share, and the name of the destination share on the mirror's destination volume.
 * The primary share defaults to the link's active target.
 *
 * @public
 */
export const ProtectInput = t.intersection(
  [
    t.type({ namespace: Name, path: LogicalPath, policy: Name, mirrorId: Name, destinationShare: ShareName }),
    t.partial({ primary: t.type({ site: Name, share: ShareName }) }),
  ],
  'ProtectOptions',
)

/**
 * An `AbortSignal`, as long operations accept it in their options.
 *
 * @public
 */
export const AbortSignalInput = new t.Type<AbortSignal, AbortSignal, unknown>(
  'AbortSignal',
  (u): u is AbortSignal => u instanceof AbortSignal,
  (u, c) => (u instanceof AbortSignal ? t.success(u) : t.failure(u, c)),
  t.identity,
)

/**
 * Options of `namespace.failover` and `namespace.failback`: the link, and optionally a signal that stops the
 * workflow before its next step (completed steps are then compensated).
 *
 * @public
 */
export const SwitchInput = t.intersection([NodeInput, t.partial({ signal: AbortSignalInput })], 'SwitchOptions')

/**
 * What `namespace.failover` and `namespace.failback` take.
 *
 * @public
 */
export type SwitchOptions = t.OutputOf<typeof SwitchInput>

/**
 * Options naming a policy.
 *
 * @public
 */
export const PolicyNameInput = t.type({ name: Name }, 'PolicyNameOptions')

/**
 * Options naming a primary share as a status report does (`namespace.reportInaccessible`).
 *
 * @public
 */
export const ShareReportInput = t.type({ site: Name, share: ShareName }, 'ShareReportOptions')

/**
 * Options of `namespace.probeNow`: `all` probes every watched share now (default), otherwise only the due ones.
 *
 * @public
 */
export const ProbeNowInput = t.partial({ all: t.boolean }, 'ProbeNowOptions')

/**
 * Options of `namespace.history`: which recorded events to return.
 *
 * @public
 */
export const HistoryInput = t.partial(
  {
    name: t.string,
    since: t.refinement(t.number, (n) => Number.isFinite(n) && n >= 0, 'Since (a time in ms since the epoch, finite and at least 0)'),
    namespace: Name,
    path: LogicalPath,
    minSeverity: t.union([t.literal('info'), t.literal('warning'), t.literal('error'), t.literal('critical')]),
    limit: t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0 && n <= 100_000, 'Limit (1..100000)'),
  },
  'HistoryOptions',
)

/**
 * Options naming a threshold monitor.
 *
 * @public
 */
export const ThresholdNameInput = t.type({ name: Name }, 'ThresholdNameOptions')

/**
 * What `namespace.createLink` takes.
 *
 * @public
 */
export type CreateLinkOptions = t.OutputOf<typeof CreateLinkInput>

/**
 * What `namespace.protect` takes.
 *
 * @public
 */
export type ProtectOptions = t.OutputOf<typeof ProtectInput>

/**
 * What `namespace.history` takes.
 *
 * @public
 */
export type HistoryOptions = t.OutputOf<typeof HistoryInput>
