import * as t from 'io-ts'
import { PolicyRecordCodec } from './policy.js'
import { ThresholdRecordCodec } from './thresholds.js'
import { ancestorsOf, isWithin, nodeKey } from './paths.js'

const Access = t.union([t.literal('read'), t.literal('write')])

/**
 * One target of a link point as drkit records it: a share on a site, `active` (clients are referred to it) or
 * `standby`.
 *
 * @public
 */
export const TargetCodec = t.type({ site: t.string, share: t.string, state: t.union([t.literal('active'), t.literal('standby')]) }, 'Target')

/**
 * A link target.
 *
 * @public
 */
export type Target = t.TypeOf<typeof TargetCodec>

/**
 * Where a protected link point stands: `protected` (primary probed, secondary healthy), `protectionDisabled`
 * (the secondary is inaccessible: no automatic failover), `failoverRequired` (the primary failed and an
 * operator must fail over), `failingOver`, `failedOver` (the link refers to the secondary), `failoverError`
 * (a failover stopped; the link still refers to the primary), `failingBack`.
 *
 * @public
 */
export const DpStateCodec = t.union(
  [
    t.literal('protected'),
    t.literal('protectionDisabled'),
    t.literal('failoverRequired'),
    t.literal('failingOver'),
    t.literal('failedOver'),
    t.literal('failoverError'),
    t.literal('failingBack'),
  ],
  'DpState',
)

/**
 * One data-protection state of a link point.
 *
 * @public
 */
export type DpState = t.TypeOf<typeof DpStateCodec>

/**
 * The primary (source) share of a protected link as recorded when it was protected: where it is and how it is
 * exported, so that the destination share is exported the same way.
 *
 * @public
 */
export const PrimaryShareCodec = t.type({
  site: t.string,
  share: t.string,
  volume: t.string,
  path: t.string,
  protocol: t.union([t.literal('smb'), t.literal('nfs')]),
  access: t.array(Access),
})

/**
 * The protection of a link point (the seed's Table 2 plus its state): the policy (by id), the mirror, the
 * primary share, the destination share on the mirror's destination volume, the DP state, since when, the
 * workflow running for it and the last error.
 *
 * @public
 */
export const ProtectionCodec = t.type(
  {
    policy: t.string,
    mirrorId: t.string,
    primary: PrimaryShareCodec,
    destination: t.type({ site: t.string, share: t.string, volume: t.string }),
    state: DpStateCodec,
    since: t.number,
    workflowId: t.union([t.string, t.null]),
    lastError: t.union([t.string, t.null]),
  },
  'Protection',
)

/**
 * A link point's protection record.
 *
 * @public
 */
export type Protection = t.TypeOf<typeof ProtectionCodec>

/**
 * A node of a logical namespace: a folder (structure only) or a link point (with one or more targets and
 * optionally a protection).
 *
 * @public
 */
export const NodeCodec = t.type(
  {
    namespace: t.string,
    path: t.string,
    kind: t.union([t.literal('folder'), t.literal('link')]),
    targets: t.array(TargetCodec),
    protection: t.union([ProtectionCodec, t.null]),
    createdAt: t.number,
  },
  'NamespaceNode',
)

/**
 * A folder or link point.
 *
 * @public
 */
export type NamespaceNode = t.TypeOf<typeof NodeCodec>

/**
 * drkit's copy of every managed namespace: namespaces by name, nodes by bucket (see {@link nodeBucket}) and then
 * by `namespace:path`, policies by id, threshold monitors by name, and the counter that numbers policies. Plain,
 * serialisable data. Nodes are bucketed so that a change to one link copies a bucket, not every link.
 *
 * @public
 */
export const NamespaceStateCodec = t.type(
  {
    namespaces: t.record(t.string, t.type({ name: t.string, createdAt: t.number })),
    nodes: t.record(t.string, t.record(t.string, NodeCodec)),
    policies: t.record(t.string, PolicyRecordCodec),
    policySeq: t.number,
    thresholds: t.record(t.string, ThresholdRecordCodec),
  },
  'NamespaceState',
)

/**
 * The namespace module's state.
 *
 * @public
 */
export type NamespaceState = t.TypeOf<typeof NamespaceStateCodec>

/**
 * The empty state.
 *
 * @public
 */
export const emptyNamespaceState: NamespaceState = { namespaces: {}, nodes: {}, policies: {}, policySeq: 0, thresholds: {} }

const LinkRef = { namespace: t.string, path: t.string }
const ImportedLink = t.type({ path: t.string, targets: t.array(TargetCodec) })

/**
 * The journal events of the namespace module.
 *
 * @public
 */
export const NamespaceJournalEventCodec = t.union([
  t.type({ type: t.literal('namespace.created'), data: t.type({ namespace: t.string, at: t.number, links: t.array(ImportedLink) }) }),
  t.type({ type: t.literal('node.created'), data: t.type({ ...LinkRef, kind: t.union([t.literal('folder'), t.literal('link')]), targets: t.array(TargetCodec), at: t.number }) }),
  t.type({ type: t.literal('node.moved'), data: t.type({ namespace: t.string, from: t.string, to: t.string }) }),
  t.type({ type: t.literal('node.deleted'), data: t.type(LinkRef) }),
  t.type({ type: t.literal('link.targetsSet'), data: t.type({ ...LinkRef, targets: t.array(TargetCodec) }) }),
  t.type({ type: t.literal('policy.saved'), data: t.type({ policy: PolicyRecordCodec }) }),
  t.type({ type: t.literal('policy.deleted'), data: t.type({ id: t.string }) }),
  t.type({ type: t.literal('link.protected'), data: t.type({ ...LinkRef, protection: ProtectionCodec }) }),
  t.type({ type: t.literal('link.unprotected'), data: t.type(LinkRef) }),
  t.type({
    type: t.literal('link.dpChanged'),
    data: t.type({ ...LinkRef, state: DpStateCodec, at: t.number, workflowId: t.union([t.string, t.null]), lastError: t.union([t.string, t.null]) }),
  }),
  t.type({ type: t.literal('link.switched'), data: t.type({ ...LinkRef, targets: t.array(TargetCodec), state: DpStateCodec, at: t.number }) }),
  t.type({ type: t.literal('threshold.saved'), data: t.type({ threshold: ThresholdRecordCodec }) }),
  t.type({ type: t.literal('threshold.removed'), data: t.type({ name: t.string }) }),
])

/**
 * One decoded namespace journal event.
 *
 * @public
 */
export type NamespaceJournalEvent = t.TypeOf<typeof NamespaceJournalEventCodec>

const BUCKETS = 128

/**
 * The bucket of the node with state key `key` (see {@link nodeKey}): a stable hash of the key modulo 128.
 *
 * @public
 */
export function nodeBucket(key: string): string {
  let hash = 0
  for (let i = 0; i < key.length; i++) hash = (Math.imul(hash, 31) + key.charCodeAt(i)) | 0
  return String((hash >>> 0) % BUCKETS)
}

/**
 * The node at `path` of `namespace`, if any.
 *
 * @public
 */
export function nodeAt(state: NamespaceState, namespace: string, path: string): NamespaceNode | undefined {
  const key = nodeKey(namespace, path)
  return state.nodes[nodeBucket(key)]?.[key]
}

/**
 * Every node of every namespace, in no particular order.
 *
 * @public
 */
export function allNodes(state: NamespaceState): NamespaceNode[] {
  const result: NamespaceNode[] = []
  for (const bucket of Object.values(state.nodes)) for (const node of Object.values(bucket)) result.push(node)
  return result
}

function putNode(draft: NamespaceState, node: NamespaceNode): void {
  const key = nodeKey(node.namespace, node.path)
  const bucket = nodeBucket(key)
  const nodes = draft.nodes[bucket] ?? (draft.nodes[bucket] = {})
  nodes[key] = node
}

function removeNode(draft: NamespaceState, namespace: string, path: string): void {
  const key = nodeKey(namespace, path)
  const nodes = draft.nodes[nodeBucket(key)]
  if (nodes !== undefined) delete nodes[key]
}

function ensureFolders(draft: NamespaceState, namespace: string, path: string, at: number): void {
  for (const folder of ancestorsOf(path)) {
    if (nodeAt(draft, namespace, folder) === undefined) putNode(draft, { namespace, path: folder, kind: 'folder', targets: [], protection: null, createdAt: at })
  }
}

function withProtection(draft: NamespaceState, namespace: string, path: string, change: (protection: Protection) => void): void {
  const protection = nodeAt(draft, namespace, path)?.protection
  if (protection !== null && protection !== undefined) change(protection)
}

/**
 * Folds one journal event into the state (used with immer).
 *
 * @public
 */
export function reduceNamespaceState(draft: NamespaceState, event: NamespaceJournalEvent): void {
  switch (event.type) {
    case 'namespace.created': {
      const { namespace, at } = event.data
      draft.namespaces[namespace] = { name: namespace, createdAt: at }
      for (const link of event.data.links) {
        ensureFolders(draft, namespace, link.path, at)
        putNode(draft, { namespace, path: link.path, kind: 'link', targets: link.targets, protection: null, createdAt: at })
      }
      return
    }
    case 'node.created': {
      const { namespace, path, kind, targets, at } = event.data
      putNode(draft, { namespace, path, kind, targets, protection: null, createdAt: at })
      return
    }
    case 'node.moved': {
      const { namespace, from, to } = event.data
      const moving = allNodes(draft).filter((n) => n.namespace === namespace && isWithin(n.path, from))
      for (const node of moving) removeNode(draft, namespace, node.path)
      for (const node of moving) putNode(draft, { ...node, path: `${to}${node.path.slice(from.length)}` })
      return
    }
    case 'node.deleted':
      removeNode(draft, event.data.namespace, event.data.path)
      return
    case 'link.targetsSet': {
      const node = nodeAt(draft, event.data.namespace, event.data.path)
      if (node !== undefined) node.targets = event.data.targets
      return
    }
    case 'policy.saved': {
      const isNew = draft.policies[event.data.policy.id] === undefined
      draft.policies[event.data.policy.id] = event.data.policy
      if (isNew) draft.policySeq += 1
      return
    }
    case 'policy.deleted':
      delete draft.policies[event.data.id]
      return
    case 'link.protected': {
      const node = nodeAt(draft, event.data.namespace, event.data.path)
      if (node !== undefined) node.protection = event.data.protection
      return
    }
    case 'link.unprotected': {
      const node = nodeAt(draft, event.data.namespace, event.data.path)
      if (node !== undefined) node.protection = null
      return
    }
    case 'link.dpChanged':
      withProtection(draft, event.data.namespace, event.data.path, (protection) => {
        protection.state = event.data.state
        protection.since = event.data.at
        protection.workflowId = event.data.workflowId
        protection.lastError = event.data.lastError
      })
      return
    case 'link.switched': {
      const node = nodeAt(draft, event.data.namespace, event.data.path)
      if (node === undefined) return
      node.targets = event.data.targets
      if (node.protection !== null) {
        node.protection.state = event.data.state
        node.protection.since = event.data.at
      }
      return
    }
    case 'threshold.saved':
      draft.thresholds[event.data.threshold.name] = event.data.threshold
      return
    case 'threshold.removed':
      delete draft.thresholds[event.data.name]
      return
  }
}
