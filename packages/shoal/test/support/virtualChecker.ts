/**
 * The offline checker of `npm run chaos:virtual` (and its short run in `npm test`): from the log
 * lines of every process of a run (test/fixtures/virtual-node.ts) it rebuilds every activation's
 * interval and every served call, and proves one activation per id:
 *
 * - every successful call was answered by an activation that was logged, at a moment (`at`, the
 *   serving process's clock) inside that activation's interval;
 * - no two activations of one id served calls in overlapping time ranges;
 * - no two activation intervals of one id overlap.
 *
 * An activation's interval runs from its "tally activated" line to the first of: its "tally
 * deactivated" line, its node fencing itself ("not confirmed by a side that stays", after which
 * its guard refuses every call), its process's exit, the end of the run. A process frozen with
 * SIGSTOP cannot serve: if an activation served nothing after its process woke, its interval ends
 * when the freeze began, or at its last call if that came later (the harness stamps a freeze just
 * before it sends SIGSTOP, and a call may be answered in between). Pure: the harness gives it
 * lines, exits and freezes.
 * @module
 */

/** One log line (pino JSON, `time` in ms). */
export type Line = Readonly<Record<string, unknown>> & { readonly msg?: unknown; readonly time: number }

/** One process incarnation of a run. */
export interface ProcessLog {
  /** A name for reports (address and incarnation). */
  readonly name: string
  readonly lines: readonly Line[]
  /** When the harness saw it exit, if it did. */
  readonly exitedAt?: number
  /** SIGSTOP … SIGCONT spans (SIGCONT undefined: still frozen at its exit or at the end). */
  readonly frozen: ReadonlyArray<readonly [number, number | undefined]>
}

export interface ActivationInterval {
  readonly id: string
  readonly act: string
  readonly proc: string
  readonly from: number
  readonly to: number
  readonly table: number | undefined
}

export interface VirtualCheck {
  readonly activations: readonly ActivationInterval[]
  readonly calls: { readonly ok: number; readonly failed: number; readonly failedBy: Readonly<Record<string, number>> }
  /** Every broken invariant, one line each: empty when the run proves one activation per id. */
  readonly violations: readonly string[]
}

const FENCED = 'not confirmed by a side that stays'

interface Served {
  readonly id: string
  readonly act: string
  readonly at: number
  readonly caller: string
}

export function checkVirtualRun(procs: readonly ProcessLog[], end: number): VirtualCheck {
  const served: Served[] = []
  let ok = 0
  let failed = 0
  const failedBy: Record<string, number> = {}
  for (const p of procs)
    for (const l of p.lines) {
      if (l.msg !== 'call') continue
      if (l.ok === true) {
        ok++
        served.push({ id: String(l.id), act: String(l.act), at: Number(l.at), caller: p.name })
      } else {
        failed++
        const code = String(l.code ?? 'error')
        failedBy[code] = (failedBy[code] ?? 0) + 1
      }
    }
  const lastServed = new Map<string, number>()
  for (const s of served) lastServed.set(s.act, Math.max(lastServed.get(s.act) ?? -Infinity, s.at))
  const activations = procs.flatMap((p) => intervalsOf(p, end, lastServed))
  const violations = [...answeredInside(served, activations), ...servingOverlaps(served), ...intervalOverlaps(activations)]
  return { activations, calls: { ok, failed, failedBy }, violations }
}

function intervalsOf(p: ProcessLog, end: number, lastServed: ReadonlyMap<string, number>): ActivationInterval[] {
  const fences = p.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(FENCED)).map((l) => l.time)
  const stops = new Map<string, number>()
  for (const l of p.lines) if (l.msg === 'tally deactivated') stops.set(String(l.act), l.time)
  const out: ActivationInterval[] = []
  for (const l of p.lines) {
    if (l.msg !== 'tally activated') continue
    const act = String(l.act)
    const from = l.time
    let to = Math.min(stops.get(act) ?? Infinity, fences.find((f) => f >= from) ?? Infinity, p.exitedAt ?? Infinity, end)
    const last = lastServed.get(act) ?? -Infinity
    const freeze = p.frozen.find(([a, b]) => a >= from && a < to && (b === undefined || last < b))
    if (freeze) to = Math.min(to, Math.max(freeze[0], last))
    out.push({ id: String(l.id), act, proc: p.name, from, to, table: typeof l.table === 'number' ? l.table : undefined })
  }
  return out
}

function answeredInside(served: readonly Served[], activations: readonly ActivationInterval[]): string[] {
  const byAct = new Map(activations.map((a) => [a.act, a]))
  const out: string[] = []
  for (const s of served) {
    const a = byAct.get(s.act)
    if (!a) out.push(`${s.id}: a call from ${s.caller} was answered by activation ${s.act}, never logged`)
    else if (s.at < a.from || s.at > a.to) out.push(`${s.id}: activation ${s.act} on ${a.proc} answered at ${s.at}, outside its interval [${a.from}, ${a.to}]`)
  }
  return out
}

function servingOverlaps(served: readonly Served[]): string[] {
  const ranges = new Map<string, { id: string; act: string; first: number; last: number }>()
  for (const s of served) {
    const r = ranges.get(s.act)
    if (!r) ranges.set(s.act, { id: s.id, act: s.act, first: s.at, last: s.at })
    else {
      r.first = Math.min(r.first, s.at)
      r.last = Math.max(r.last, s.at)
    }
  }
  return pairsOverlapping([...ranges.values()].map((r) => ({ id: r.id, act: r.act, from: r.first, to: r.last, proc: '' }))).map(
    ([a, b]) => `${a.id}: activations ${a.act} and ${b.act} both served calls between ${Math.max(a.from, b.from)} and ${Math.min(a.to, b.to)}`,
  )
}

function intervalOverlaps(activations: readonly ActivationInterval[]): string[] {
  return pairsOverlapping(activations).map(
    ([a, b]) =>
      `${a.id}: activations ${a.act} on ${a.proc} and ${b.act} on ${b.proc} were active together for ${Math.min(a.to, b.to) - Math.max(a.from, b.from)} ms`,
  )
}

/** Pairs of one id's spans that share a moment (touching ends do not count). */
function pairsOverlapping<T extends { id: string; from: number; to: number }>(spans: readonly T[]): Array<[T, T]> {
  const byId = new Map<string, T[]>()
  for (const s of spans) {
    const list = byId.get(s.id)
    if (list) list.push(s)
    else byId.set(s.id, [s])
  }
  const out: Array<[T, T]> = []
  for (const list of byId.values()) {
    list.sort((x, y) => x.from - y.from)
    for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length && list[j]!.from < list[i]!.to; j++) if (list[i]!.to > list[j]!.from) out.push([list[i]!, list[j]!])
  }
  return out
}
